"""The PBAP mirror plan (protocol.pbap.mirror): only what changed is written.

The car's store is modelled here as a dict ``uid -> (digest, Contact)``; applying each
page's plan to it, then the done plan's deletes, must leave exactly the pulled book.
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.contacts import Contact, Phone, contact_digest
from protocol.pbap.mirror import plan_done, plan_page

H1 = bytes([1]) * 32
H2 = bytes([2]) * 32


def stored_of(*contacts: Contact) -> dict[str, tuple[bytes, Contact]]:
    return {c.uid: (contact_digest(c), c) for c in contacts}


def text_card(c: Contact) -> Contact:
    """The card as a "contacts" page carries it: no photo."""
    return msgspec.structs.replace(c, photo=b"")


def photo_card(c: Contact) -> Contact:
    """The card as a "photos" page carries it: uid, names and the photo hash only."""
    return Contact(uid=c.uid, fn=c.fn, n=c.n, photo=c.photo)


def ann(**kw: object) -> Contact:
    base: dict[str, object] = {"uid": "u-ann", "fn": "Ann Lee", "n": ("Lee", "Ann"),
                               "phones": (Phone("+4411", "cell"),)}  # fmt: skip
    return Contact(**{**base, **kw})  # type: ignore[arg-type]


def test_an_unchanged_card_is_not_rewritten_and_keeps_its_stored_photo() -> None:
    old = ann(photo=H1)
    plan = plan_page(stored_of(old), "contacts", [text_card(old)])
    assert plan.upserts == [] and plan.unchanged == 1


def test_a_changed_card_is_written_with_the_stored_photo_kept() -> None:
    old = ann(photo=H1)
    new = ann(phones=(Phone("+4499", "cell"),))  # a text page: no photo
    [(written, digest)] = plan_page(stored_of(old), "contacts", [new]).upserts
    assert written == ann(phones=(Phone("+4499", "cell"),), photo=H1)
    assert digest == contact_digest(written)


def test_a_new_card_is_written_as_pulled() -> None:
    new = ann(uid="u-new")
    assert plan_page(stored_of(ann()), "contacts", [new]).upserts == [(new, contact_digest(new))]


def test_a_card_that_carries_a_photo_in_the_text_stage_is_taken_as_it_is() -> None:
    old = ann(photo=H1)
    [(written, _)] = plan_page(stored_of(old), "contacts", [ann(photo=H2)]).upserts
    assert written.photo == H2


def test_photos_stage_updates_a_changed_hash_only() -> None:
    same, changed = ann(photo=H1), ann(uid="u-bob", fn="Bob", photo=H1)
    stored = stored_of(same, changed)
    plan = plan_page(stored, "photos", [photo_card(same), photo_card(ann(uid="u-bob", photo=H2))])
    # The photo card's fn is "Ann Lee", but only the hash is taken from it.
    assert plan.upserts == [(ann(uid="u-bob", fn="Bob", photo=H2),
                             contact_digest(ann(uid="u-bob", fn="Bob", photo=H2)))]  # fmt: skip
    assert plan.unchanged == 1


def test_photos_stage_clears_the_photo_a_card_lost() -> None:
    [(written, _)] = plan_page(stored_of(ann(photo=H1)), "photos", [photo_card(ann())]).upserts
    assert written == ann() and written.photo == b""


def test_photos_stage_ignores_a_uid_the_car_does_not_store() -> None:
    plan = plan_page({}, "photos", [photo_card(ann(photo=H1))])
    assert plan.upserts == [] and plan.ignored == 1


def test_a_repeated_uid_is_planned_once_as_its_last_card() -> None:
    first, last = ann(fn="First"), ann(fn="Last")
    assert plan_page({}, "contacts", [first, last]).upserts == [(last, contact_digest(last))]
    # ...and not at all when the last card is what the car has.
    plan = plan_page(stored_of(ann()), "contacts", [first, ann()])
    assert plan.upserts == []


def test_done_deletes_the_stored_uids_the_book_no_longer_has() -> None:
    assert plan_done(["a", "c", "b"], frozenset({"b", "x"})) == ["a", "c"]
    assert plan_done([], frozenset({"b"})) == []


# -- the property: page by page, then done, the mirror is the pulled book -----------------
_names = st.text(alphabet="abcdefgh ", min_size=1, max_size=6)
_contacts = st.builds(
    Contact,
    uid=st.sampled_from([f"u{i}" for i in range(12)]),
    fn=_names,
    n=st.tuples(_names, _names),
    org=st.sampled_from(["", "ACME"]),
    photo=st.sampled_from([b"", H1, H2]),
)
_books = st.lists(_contacts, max_size=12, unique_by=lambda c: c.uid)


@settings(max_examples=300, deadline=None)
@given(before=_books, pulled=_books, page_size=st.integers(1, 5))
def test_applying_every_page_then_done_yields_exactly_the_pulled_book(
    before: list[Contact], pulled: list[Contact], page_size: int
) -> None:
    mirror = stored_of(*before)
    writes: list[str] = []
    chunks = [pulled[i : i + page_size] for i in range(0, len(pulled), page_size)]
    for stage, cut in (("contacts", text_card), ("photos", photo_card)):
        for chunk in chunks:
            plan = plan_page(mirror, stage, [cut(c) for c in chunk])  # type: ignore[arg-type]
            for contact, digest in plan.upserts:
                assert digest == contact_digest(contact)
                mirror[contact.uid] = (digest, contact)
                writes.append(contact.uid)
    for uid in plan_done(mirror, frozenset(c.uid for c in pulled)):
        del mirror[uid]
    assert {u: c for u, (_, c) in mirror.items()} == {c.uid: c for c in pulled}
    # A contact equal to what the car had is never written, in either stage.
    had = {c.uid: c for c in before}
    assert not [c.uid for c in pulled if had.get(c.uid) == c and c.uid in writes]
