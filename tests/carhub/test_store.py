"""The car's SQLite store: pinning, atomic batches, full disk, search, cascading unpair."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from carhub.store import Store, StoreError
from protocol.contacts import Contact, Email, Phone, Photo, contact_digest, photo_hash

TABLES = ("phones", "contacts", "photos", "media", "artwork")
A1, A2 = b"\x01" * 16, b"\x02" * 16


def contact(uid: str, fn: str, **kw: object) -> Contact:
    return Contact(uid=uid, fn=fn, **kw)  # type: ignore[arg-type]


def upserts(*cs: Contact) -> list[tuple[Contact, bytes]]:
    return [(c, contact_digest(c)) for c in cs]


def photo(data: bytes, mime: str = "image/png") -> Photo:
    return Photo(hash=photo_hash(data), mime=mime, data=data)


def counts(path: Path) -> dict[str, int]:
    """Row counts read through a separate connection: what is really on disk."""
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        db.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "carhub.sqlite3"


@pytest.fixture
def store(path: Path) -> Store:
    s = Store(path)
    s.add_phone("p1", "Phone One", b"k" * 32, "fp1", now=100.0)
    yield s  # type: ignore[misc]
    s.close()


def test_pinning_and_phone_listing(store: Store) -> None:
    assert store.pinned_key("p1") == b"k" * 32
    assert store.pinned_key("nobody") is None
    store.add_phone("p2", "Phone Two", b"j" * 32, "fp2", now=200.0)
    assert [p.id for p in store.phones()] == ["p1", "p2"]  # in pairing order
    rec = store.phone("p1")
    assert rec is not None and (rec.name, rec.contacts, rec.last_sync) == ("Phone One", 0, None)
    store.rename_phone("p1", "Renamed")
    assert store.phone("p1").name == "Renamed"  # type: ignore[union-attr]


def test_batch_then_mirror_state(store: Store) -> None:
    a, b = contact("a", "Alice"), contact("b", "Bob")
    store.apply_batch(
        "p1", upserts=upserts(a, b), deletes=[], photos=[photo(b"x")], anchor=A1, now=5.0
    )
    st = store.mirror_state("p1")
    assert st.anchor == A1
    assert st.digests == {"a": contact_digest(a), "b": contact_digest(b)}
    assert st.photos == {photo_hash(b"x")}
    store.apply_batch("p1", upserts=[], deletes=["a"], photos=[], anchor=A2, now=6.0)
    total, items = store.contacts("p1")
    assert (total, [c.uid for c in items]) == (1, ["b"])
    assert store.phone("p1").last_sync == 6.0  # type: ignore[union-attr]
    assert store.mirror_state("unknown").anchor == bytes(16)


def test_redelivered_batch_changes_nothing(store: Store, path: Path) -> None:
    batch = upserts(contact("a", "Alice"))
    for _ in range(2):
        store.apply_batch(
            "p1", upserts=batch, deletes=[], photos=[photo(b"x")] * 2, anchor=A1, now=1.0
        )
    assert counts(path)["contacts"] == 1 and counts(path)["photos"] == 1


def test_failure_mid_transaction_applies_nothing(store: Store, path: Path) -> None:
    store.apply_batch(
        "p1", upserts=upserts(contact("a", "Alice")), deletes=[], photos=[], anchor=A1, now=1.0
    )
    # A trigger makes the photo insert (after the contact upserts and deletes ran) fail.
    side = sqlite3.connect(path)
    side.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON photos WHEN NEW.mime = 'boom'"
        " BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
    )
    side.commit()
    side.close()
    with pytest.raises(StoreError, match="simulated failure"):
        store.apply_batch(
            "p1",
            upserts=upserts(contact("b", "Bob"), contact("a", "Alice Changed")),
            deletes=["a"],
            photos=[photo(b"ok"), photo(b"bad", mime="boom")],
            anchor=A2,
            now=2.0,
        )
    st = store.mirror_state("p1")
    assert st.anchor == A1
    assert st.digests == {"a": contact_digest(contact("a", "Alice"))}
    assert st.photos == set()
    assert store.phone("p1").last_sync == 1.0  # type: ignore[union-attr]
    # The store is still usable after the failed transaction.
    store.apply_batch(
        "p1", upserts=upserts(contact("c", "Carol")), deletes=[], photos=[], anchor=A2, now=3.0
    )
    assert store.mirror_state("p1").anchor == A2


def test_full_disk_raises_store_error_and_keeps_data_consistent(store: Store) -> None:
    store.apply_batch(
        "p1", upserts=upserts(contact("a", "Alice")), deletes=[], photos=[], anchor=A1, now=1.0
    )
    pages = store._query("PRAGMA page_count")[0][0]
    # max_page_count is per connection, so it must be set on the store's own one.
    store._query(f"PRAGMA max_page_count = {pages}")
    big = [contact(f"u{i:05}", f"Person {i}", note="x" * 500) for i in range(500)]
    with pytest.raises(StoreError, match="full"):
        store.apply_batch(
            "p1",
            upserts=upserts(*big),
            deletes=["a"],
            photos=[photo(b"p" * 50_000)],
            anchor=A2,
            now=2.0,
        )
    st = store.mirror_state("p1")
    assert (st.anchor, list(st.digests), st.photos) == (A1, ["a"], set())
    assert store.contacts("p1")[0] == 1
    # Once space is back, the same batch (the phone re-sends it) goes through.
    store._query("PRAGMA max_page_count = 1073741823")
    store.apply_batch("p1", upserts=upserts(*big), deletes=["a"], photos=[], anchor=A2, now=3.0)
    assert store.contacts("p1", limit=0)[0] == 500


def test_contacts_sorted_paged_and_searched(store: Store) -> None:
    cs = [
        contact("1", "Zoë Öztürk", org="Globex"),
        contact("2", "anna Smith", phones=(Phone("+44 20 7946 0001", "CELL"),)),
        contact("3", "Bob 100% Real", emails=(Email("bob@example.com"),)),
        contact("4", "Carol_Underscore"),
        contact("5", "CarolXUnderscore"),
    ]
    store.apply_batch("p1", upserts=upserts(*cs), deletes=[], photos=[], anchor=A1, now=1.0)
    total, page = store.contacts("p1", limit=2, offset=1)
    assert total == 5 and [c.fn for c in page] == ["Bob 100% Real", "Carol_Underscore"]
    assert [c.uid for c in store.contacts("p1", q="ZOË")[1]] == ["1"]  # case-folded
    assert [c.uid for c in store.contacts("p1", q="globex")[1]] == ["1"]  # organisation
    assert [c.uid for c in store.contacts("p1", q="7946")[1]] == ["2"]  # number
    assert [c.uid for c in store.contacts("p1", q="@example")[1]] == ["3"]  # email
    assert [c.uid for c in store.contacts("p1", q="0%")[1]] == ["3"]  # % is literal
    assert [c.uid for c in store.contacts("p1", q="l_u")[1]] == ["4"]  # _ is literal
    assert store.contacts("p1", q="\\")[0] == 0
    assert store.contacts("p1", limit=0) == (5, [])


def test_delete_phone_erases_every_table(store: Store, path: Path) -> None:
    store.add_phone("p2", "Other", b"o" * 32, "fp2", now=1.0)
    for pid in ("p1", "p2"):
        store.apply_batch(
            pid,
            upserts=upserts(contact("a", "Alice")),
            deletes=[],
            photos=[photo(b"x")],
            anchor=A1,
            now=1.0,
        )
        store.set_media(pid, b"np", 1000)
        store.put_artwork(pid, b"h" * 32, "image/jpeg", b"jpg")
    assert counts(path) == dict.fromkeys(TABLES, 2)
    assert store.delete_phone("p1") is True
    assert counts(path) == dict.fromkeys(TABLES, 1)  # only p2's rows remain
    assert store.pinned_key("p1") is None and store.delete_phone("p1") is False
    assert store.media("p2") == (b"np", 1000)


def test_repairing_replaces_key_and_erases_old_data(store: Store) -> None:
    store.apply_batch(
        "p1", upserts=upserts(contact("a", "Alice")), deletes=[], photos=[], anchor=A1, now=1.0
    )
    store.add_phone("p1", "Phone One", b"n" * 32, "fp-new", now=300.0)
    assert store.pinned_key("p1") == b"n" * 32
    assert store.contacts("p1")[0] == 0 and store.mirror_state("p1").anchor == bytes(16)


def test_media_and_artwork(store: Store) -> None:
    assert store.media("p1") is None and store.artwork("p1", b"h" * 32) is None
    store.set_media("p1", b"one", 1)
    store.set_media("p1", b"two", 2)
    assert store.media("p1") == (b"two", 2)
    store.put_artwork("p1", b"h" * 32, "image/png", b"png")
    store.put_artwork("p1", b"h" * 32, "image/jpeg", b"other")  # content-addressed: kept
    assert store.artwork("p1", b"h" * 32) == ("image/png", b"png")
    assert store.has_artwork("p1", b"h" * 32) and not store.has_artwork("p2", b"h" * 32)


def test_rows_for_unknown_phone_are_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        store.set_media("ghost", b"np", 1)


def test_not_a_database_raises_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(bad)
