"""The engine's Classic (PBAP) bookkeeping (``ClassicEvents``), driven as ``carhub.pbap`` drives it.

The Classic side is ``FakeClassicSide`` (tests/carhub/classic_api_double.py); the engine, its
SQLite store and its event hub are real.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from carhub.classic import CallEntry
from carhub.classic_phones import ClassicNotReady
from carhub.engine import CarConfig, Engine
from carhub.events import Subscription
from carhub.store import Store, StoreError
from protocol.contacts import Contact
from protocol.identity import Identity
from tests.carhub.apple_api_double import FakeAppleHandle
from tests.carhub.classic_api_double import (
    FakeClassicHandle,
    FakeClassicSide,
    book_of,
    photo_of,
    state_of,
)

PID = "a1b2c3d4e5f6"
ADDR = "A1:B2:C3:D4:E5:F6"


def make_engine(tmp_path: Path) -> Engine:
    return Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(),
                  Store(tmp_path / "carhub.sqlite3"))  # fmt: skip


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = make_engine(tmp_path)
    yield eng
    await eng.shutdown()
    eng.store.close()


@pytest.fixture
def side(engine: Engine) -> FakeClassicSide:
    side = FakeClassicSide(engine, page_size=40)
    engine.classic_attach(ADDR.lower(), side.connect)
    return side


def bond(engine: Engine, pid: str = PID) -> FakeClassicHandle:
    engine.classic_bonded(pid, "Pixel 9")
    handle = FakeClassicHandle(pid)
    engine.classic_connected(pid, handle)
    return handle


def drain(sub: Subscription) -> list[dict[str, Any]]:
    out = []
    while not sub.empty():
        out.append(sub.get_nowait())
    return out


def names(engine: Engine, pid: str = PID) -> list[str]:
    return [c.fn for c in engine.store.contacts(pid, limit=1000)[1]]


def rowids(engine: Engine, pid: str = PID) -> dict[str, int]:
    rows = engine.store._query("SELECT uid, rowid FROM contacts WHERE phone_id = ?", (pid,))
    return {str(u): int(r) for u, r in rows}


class CountingStore(Store):
    """A store that records every contact row it writes."""

    written: list[str]

    def _apply(self, phone_id: str, rows: Any, *args: Any, **kw: Any) -> None:
        self.written = getattr(self, "written", []) + [r[1] for r in rows]
        super()._apply(phone_id, rows, *args, **kw)


# -- bonding, links, status --------------------------------------------------------------
async def test_a_bonded_phone_is_listed_with_pbap_and_its_link(engine: Engine) -> None:
    sub = engine.hub.subscribe()
    engine.classic_bonded(PID, "Pixel 9")
    assert engine.classic_is_bonded(PID) and not engine.classic_is_bonded("0a0b0c0d0e0f")
    [phone] = engine.phones()
    assert phone.model_dump() == {
        "id": PID, "name": "Pixel 9", "fingerprint": ADDR, "connected": False,
        "transport": None, "contacts": 0, "last_sync": None, "profiles": ["pbap"], "owner": None,
    }  # fmt: skip
    assert drain(sub)[-1]["data"][0]["id"] == PID
    handle = FakeClassicHandle(ADDR)
    engine.classic_connected(PID, handle)
    assert [(p.connected, p.transport) for p in engine.phones()] == [(True, "classic")]
    assert drain(sub)[-1]["data"][0]["transport"] == "classic"
    engine.classic_disconnected(PID, handle)
    assert [(p.connected, p.transport) for p in engine.phones()] == [(False, None)]
    assert drain(sub)[-1]["data"][0]["connected"] is False
    # The store's CarHub view never sees it: no key to authenticate with.
    assert engine.store.phones() == [] and engine.store.pinned_key(PID) is None


async def test_a_link_of_an_unbonded_phone_is_ignored(engine: Engine) -> None:
    engine.classic_connected(PID, FakeClassicHandle(ADDR))
    assert engine.phones() == []


async def test_status_shows_the_classic_address_between_attach_and_detach(
    engine: Engine,
) -> None:
    assert engine.status().classic is None
    with pytest.raises(ClassicNotReady):
        engine.classic_connect(ADDR)
    side = FakeClassicSide(engine)
    engine.classic_attach("00:11:22:aa:bb:cc", side.connect)
    assert engine.status().classic == "00:11:22:AA:BB:CC"
    assert engine.classic_connect("a1:b2:c3:d4:e5:f6") == ADDR and side.connects == [ADDR]
    engine.classic_detach()
    assert engine.status().classic is None
    with pytest.raises(ClassicNotReady):
        engine.classic_connect(ADDR)


async def test_an_ssp_code_is_a_pairing_request_answered_as_any_other(engine: Engine) -> None:
    answers: list[bool] = []
    withdraw = engine.classic_pairing_requested(PID, "Pixel 9", "123456", 9e9, answers.append)
    [req] = engine.pairing_requests()
    assert (req.method, req.phone_fingerprint, req.code) == ("ssp", ADDR, "123456")
    assert engine.decide(req.id, accepted=True) and answers == [True]
    withdraw()  # already answered: nothing left to withdraw
    engine.classic_pairing_requested(PID, "Pixel 9", "654321", 9e9, answers.append)
    sub = engine.hub.subscribe()
    engine.classic_pairing_failed(PID, "wrong code")
    assert engine.pairing_requests() == [] and answers == [True]
    assert {"type": "pairing_failed", "data": {"phone_id": PID, "reason": "wrong code"}} in drain(
        sub
    )


async def test_a_classic_phone_may_bond_only_while_pairing_is_open(engine: Engine) -> None:
    assert not engine.classic_may_bond()
    engine.open_pairing(60)
    assert engine.classic_may_bond()


# -- the pull ----------------------------------------------------------------------------
async def test_pages_are_stored_and_listed_and_the_owner_is_not_a_contact(
    engine: Engine, side: FakeClassicSide
) -> None:
    bond(engine)
    sub = engine.hub.subscribe()
    book = book_of(100, photos=3)
    assert side.pull(PID, book, state_of(1, size=101), owner="Ann Owner") == "done"
    assert names(engine) == [c.fn for c in book]
    assert "Ann Owner" not in names(engine)
    [phone] = engine.phones()
    assert (phone.contacts, phone.owner) == (100, "Ann Owner") and phone.last_sync is not None
    # Photos arrived in the second stage, and are served by hash.
    stored = engine.store.contacts(PID, limit=3)[1]
    assert [c.photo for c in stored] == [c.photo for c in book[:3]]
    assert engine.store.photo(PID, book[0].photo) is not None
    syncs = [e["data"] for e in drain(sub) if e["type"] == "sync"]
    assert syncs[-1] == {"phone_id": PID, "done": 100, "total": 100, "stage": "done"}
    assert engine.classic_book_state(PID) == state_of(1, size=101)


async def test_sync_events_are_coalesced_per_phone(engine: Engine, side: FakeClassicSide) -> None:
    bond(engine)
    sub = engine.hub.subscribe()
    side.pull(PID, book_of(200), state_of(1))
    syncs = [e["data"] for e in drain(sub) if e["type"] == "sync"]
    assert syncs == [{"phone_id": PID, "done": 200, "total": 200, "stage": "done"}]


async def test_a_re_pull_rewrites_only_what_changed(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "carhub.sqlite3")
    engine = Engine(CarConfig(state_dir=tmp_path), Identity.generate(), store)
    side = FakeClassicSide(engine, page_size=40)
    bond(engine)
    book = book_of(100, photos=10)
    side.pull(PID, book, state_of(1))
    before = rowids(engine)
    store.written = []
    book[5] = msgspec.structs.replace(book[5], fn="Renamed 0005")
    book[7] = msgspec.structs.replace(book[7], photo=photo_of(b"a new photo"))
    book[50] = msgspec.structs.replace(book[50], photo=photo_of(b"a first photo"))
    assert side.pull(PID, book, state_of(2)) == "done"
    assert sorted(store.written) == ["u0005", "u0007", "u0050"]
    after = rowids(engine)
    assert {u for u in before if before[u] != after[u]} == {"u0005", "u0007", "u0050"}
    assert engine.store.contacts(PID, q="renamed")[0] == 1
    [c7] = [c for c in engine.store.contacts(PID, limit=200)[1] if c.uid == "u0007"]
    assert c7.photo == photo_of(b"a new photo")
    # The replaced photo is gone from the store; the new ones are there.
    assert engine.store.photo(PID, book_of(10, photos=10)[7].photo) is None
    assert engine.store.photo(PID, photo_of(b"a first photo")) is not None
    store.close()


async def test_a_pull_with_unchanged_counters_is_skipped_and_writes_nothing(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "carhub.sqlite3")
    engine = Engine(CarConfig(state_dir=tmp_path), Identity.generate(), store)
    side = FakeClassicSide(engine)
    bond(engine)
    side.pull(PID, book_of(30), state_of(1))
    store.written = []
    sub = engine.hub.subscribe()
    assert side.pull(PID, book_of(30), state_of(1)) == "skipped"
    assert store.written == []
    syncs = [e["data"] for e in drain(sub) if e["type"] == "sync"]
    assert syncs == [{"phone_id": PID, "done": 30, "total": 30, "stage": "skipped"}]
    store.close()


async def test_a_phone_without_counters_is_pulled_every_time(
    engine: Engine, side: FakeClassicSide
) -> None:
    bond(engine)
    assert side.pull(PID, book_of(5), None) == "done"
    assert engine.classic_book_state(PID) is None
    assert side.pull(PID, book_of(5), None) == "done"


async def test_a_failed_pull_keeps_the_contacts_and_voids_the_state(
    engine: Engine, side: FakeClassicSide
) -> None:
    bond(engine)
    side.pull(PID, book_of(100), state_of(1))
    newer = book_of(120, prefix="New")
    sub = engine.hub.subscribe()
    assert side.pull(PID, newer, state_of(2), fail_at=1) == "failed"
    # Page 1 of the newer book is in (whole); nothing was deleted.
    assert engine.store.contacts(PID, limit=0)[0] == 100
    assert engine.store.contacts(PID, q="new")[0] == 40
    assert engine.classic_book_state(PID) is None  # the next connection must not skip
    assert [e["data"]["stage"] for e in drain(sub) if e["type"] == "sync"] == ["failed"]
    assert side.pull(PID, newer, state_of(2)) == "done"
    assert names(engine) == [c.fn for c in newer]


async def test_a_pull_that_fails_before_any_page_keeps_the_state(
    engine: Engine, side: FakeClassicSide
) -> None:
    bond(engine)
    side.pull(PID, book_of(10), state_of(1))
    assert side.pull(PID, book_of(10), state_of(2), fail_at=0) == "failed"
    assert engine.classic_book_state(PID) == state_of(1)
    assert engine.store.contacts(PID, limit=0)[0] == 10


async def test_pull_done_deletes_what_the_book_no_longer_has(
    engine: Engine, side: FakeClassicSide
) -> None:
    bond(engine)
    book = book_of(50)
    side.pull(PID, book, state_of(1))
    del book[10:20]
    side.pull(PID, book, state_of(2))
    assert names(engine) == [c.fn for c in book]


async def test_calls_are_kept_newest_100(engine: Engine, side: FakeClassicSide) -> None:
    bond(engine)
    calls = [CallEntry(f"Caller {i}", f"+44{i}", "missed", f"2026-01-01T00:{i % 60:02d}:00")
             for i in range(130)]  # fmt: skip
    sub = engine.hub.subscribe()
    side.pull(PID, book_of(1), state_of(1), calls=calls)
    assert engine.classic.store.calls(PID) == calls[:100]
    assert {"type": "calls", "data": {"phone_id": PID, "total": 100}} in drain(sub)
    side.pull(PID, book_of(1), state_of(1), calls=calls[:2])  # skipped: calls still pulled
    assert engine.classic.store.calls(PID) == calls[:2]


async def test_a_page_that_cannot_be_stored_raises_and_stores_nothing_of_it(
    engine: Engine, side: FakeClassicSide
) -> None:
    bond(engine)
    side.pull(PID, book_of(10), state_of(1))
    db = engine.store._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full now
    big = [Contact(uid=f"b{i}", fn="x" * 900, note="y" * 4000) for i in range(200)]
    with pytest.raises(StoreError):
        side.pull(PID, big, state_of(2))
    db.execute("PRAGMA max_page_count = 1073741823")
    assert engine.store.contacts(PID, limit=0)[0] == 10
    assert engine.classic_book_state(PID) == state_of(1)  # the page's mark was rolled back too


async def test_a_page_of_an_unbonded_phone_is_dropped(
    engine: Engine, side: FakeClassicSide
) -> None:
    side.pull(PID, book_of(3), state_of(1))
    assert engine.phones() == [] and engine.store.contacts(PID, limit=0)[0] == 0


# -- one phone over LE and Classic, unpair, restart ---------------------------------------
async def test_an_apple_phone_with_the_same_address_is_one_entry(
    engine: Engine, side: FakeClassicSide
) -> None:
    engine.apple_bonded(PID, "Ann's iPhone")
    engine.apple_connected(PID, FakeAppleHandle())
    engine.classic_bonded(PID, "Ann's iPhone")
    side.pull(PID, book_of(4), state_of(1), owner="Ann")
    [phone] = engine.phones()
    assert phone.profiles == ["ams", "ancs", "pbap"]
    assert (phone.transport, phone.contacts, phone.owner) == ("ble", 4, "Ann")


async def test_unpair_erases_the_mirror_and_calls_and_the_link_key_once(
    engine: Engine, side: FakeClassicSide
) -> None:
    handle = bond(engine)
    side.pull(PID, book_of(5, photos=2), state_of(1), calls=[CallEntry("A", "1", "incoming", "")])
    erased: list[str] = []
    engine.on_unpair(erased.append)
    assert engine.unpair(PID)
    assert erased == [PID] and handle.closed == "unpaired"
    assert engine.phones() == [] and not engine.classic_is_bonded(PID)
    for table in ("contacts", "photos", "classic_calls"):
        assert engine.store._query(f"SELECT COUNT(*) FROM {table}")[0][0] == 0, table
    assert not engine.unpair(PID)


async def test_unpair_of_a_phone_bonded_over_le_and_classic_calls_the_listeners_once(
    engine: Engine,
) -> None:
    engine.apple_bonded(PID, "iPhone")
    engine.classic_bonded(PID, "iPhone")
    erased: list[str] = []
    engine.on_unpair(erased.append)
    assert engine.unpair(PID) and erased == [PID] and engine.phones() == []


async def test_a_restarted_car_keeps_the_bond_mirror_state_and_calls(tmp_path: Path) -> None:
    first = make_engine(tmp_path)
    side = FakeClassicSide(first)
    bond(first)
    calls = [CallEntry("Bob", "+441", "outgoing", "2026-02-03T04:05:06")]
    side.pull(PID, book_of(25), state_of(7), owner="Ann", calls=calls)
    await first.shutdown()
    first.store.close()
    again = make_engine(tmp_path)
    try:
        [phone] = again.phones()
        assert (phone.id, phone.contacts, phone.owner, phone.connected) == (PID, 25, "Ann", False)
        assert again.classic_is_bonded(PID) and again.classic_book_state(PID) == state_of(7)
        assert again.classic.store.calls(PID) == calls
        assert FakeClassicSide(again).pull(PID, book_of(25), state_of(7)) == "skipped"
    finally:
        again.store.close()


# -- the store's guard and migration ------------------------------------------------------
async def test_a_carhub_phone_cannot_pair_over_a_classic_phone_id(engine: Engine) -> None:
    engine.classic_bonded(PID, "Pixel")
    with pytest.raises(StoreError):
        engine.store.add_phone(PID, "Impostor", b"k" * 32, "fp", 1.0)
    assert engine.store.pinned_key(PID) is None and engine.classic_is_bonded(PID)
    engine.store.rename_phone(PID, "Impostor")
    assert [p.name for p in engine.phones()] == ["Pixel"]


async def test_a_classic_bond_cannot_take_a_carhub_phone_id(engine: Engine) -> None:
    engine.store.add_phone(PID, "CarHub phone", b"k" * 32, "fp", 1.0)
    engine.classic_bonded(PID, "Pixel")
    assert not engine.classic_is_bonded(PID) and engine.store.pinned_key(PID) == b"k" * 32


def test_a_database_of_an_older_car_opens_and_keeps_its_phones(tmp_path: Path) -> None:
    path = tmp_path / "carhub.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE phones (id TEXT PRIMARY KEY, name TEXT NOT NULL, public_key BLOB NOT NULL,"
        " fingerprint TEXT NOT NULL, paired_at REAL NOT NULL, last_sync REAL,"
        " anchor BLOB NOT NULL DEFAULT x'00000000000000000000000000000000');"
        "INSERT INTO phones (id, name, public_key, fingerprint, paired_at)"
        " VALUES ('0123456789abcdef', 'Old phone', x'01', 'fp', 1.0);"
    )
    old.close()
    store = Store(path)
    engine = Engine(CarConfig(state_dir=tmp_path), Identity.generate(), store)
    assert [p.name for p in engine.phones()] == ["Old phone"]
    assert store.pinned_key("0123456789abcdef") == b"\x01"
    engine.classic_bonded(PID, "Pixel")
    assert [p.profiles for p in engine.phones()] == [["carhub"], ["pbap"]]
    store.close()
