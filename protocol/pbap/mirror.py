"""The car's mirror of a PBAP phone book: what one pulled page changes (sans-I/O, pure).

A pull comes in two stages (``carhub.classic``): text pages without photos, then the same
cards with only their photo hashes. ``plan_page`` compares one page against what the car
stored for those uids and returns the contacts to write, leaving out every contact that is
unchanged since the last pull, so a re-pull rewrites nothing it need not. ``plan_done``
says, once the book was read whole, which stored uids the phone no longer has.

- Stage "contacts": a card carries no photo (PropertySelector left PHOTO out), so a stored
  contact's photo hash is kept when comparing and merging; a card that does carry one (a
  phone that ignored the selector) is taken as it is. A new uid is written as pulled.
- Stage "photos": a card carries uid, names and its photo hash only. A stored contact whose
  hash differs gets the new hash (an empty hash clears a photo the card lost); a uid the
  car does not store is not a contact of this book and is left out.

Digests are ``protocol.contacts.contact_digest`` of the contact as the car stores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from protocol.contacts import Contact, contact_digest

__all__ = ["PagePlan", "Stored", "plan_done", "plan_page"]

# What the car stores for a uid: the digest of the stored contact, and the contact.
Stored = Mapping[str, tuple[bytes, Contact]]


@dataclass(frozen=True)
class PagePlan:
    """The writes one page needs.

    Attributes:
        upserts: ``(contact, digest)`` to store, in page order, one per uid.
        unchanged: cards of the page equal to what the car stores (not rewritten).
        ignored: photo-stage cards of uids the car does not store.
    """

    upserts: list[tuple[Contact, bytes]]
    unchanged: int = 0
    ignored: int = 0


def plan_page(
    stored: Stored, stage: Literal["contacts", "photos"], contacts: Sequence[Contact]
) -> PagePlan:
    """Plan the upserts of one pulled page.

    Args:
        stored: the stored contacts of the page's uids (others may be present too).
        stage: the page's stage.
        contacts: the page's contacts (the owner card left out).

    Returns:
        The contacts to write with their digests; a uid the page repeats is planned once,
        as its last card says.
    """
    planned: dict[str, tuple[Contact, bytes]] = {}
    unchanged = ignored = 0
    for card in contacts:
        kept = stored.get(card.uid)
        base = planned[card.uid][0] if card.uid in planned else (kept[1] if kept else None)
        if stage == "contacts":
            merged = card
            if not card.photo and base is not None and base.photo:
                merged = msgspec.structs.replace(card, photo=base.photo)
        elif base is None:
            ignored += 1
            continue
        else:
            merged = msgspec.structs.replace(base, photo=card.photo)
        digest = contact_digest(merged)
        planned.pop(card.uid, None)  # re-insert: page order is that of the last card
        if kept is not None and digest == kept[0]:
            unchanged += 1
        else:
            planned[card.uid] = (merged, digest)
    return PagePlan(upserts=list(planned.values()), unchanged=unchanged, ignored=ignored)


def plan_done(stored_uids: Iterable[str], seen_uids: frozenset[str]) -> list[str]:
    """The uids to delete once the whole book was read.

    Args:
        stored_uids: every uid the car stores for the phone.
        seen_uids: every uid the pull read (either stage).

    Returns:
        The stored uids the book no longer has, sorted.
    """
    return sorted(uid for uid in stored_uids if uid not in seen_uids)
