"""The photo pass of a PBAP pull: all cards, or only those with a photo (sans-I/O, pure).

Theory of operation: after the text pages the car reads the photos. A phone whose SDP
PbapSupportedFeatures has vCard selecting (bit 4), and to which the car claimed it in its
CONNECT (``requests.car_features``), is first asked ``photo_probe``: ``telecom/pb.vcf``
with MaxListCount 0 and vCardSelector PHOTO (operator OR), whose PhonebookSize N counts
the cards that have a photo. ``photo_pass`` turns that answer into the pass to run:

- N == 0: no photo page at all (a book without photos costs one probe, not a second
  download of every card's names).
- 0 < N < the book's size: pages over those N cards only, with ``PHOTO_ONLY`` and the same
  vCardSelector. Index 0 is then the first card with a photo, not the owner card, so the
  owner split does not apply. The importer's repeat counts (``-2`` for the second card of
  a name) cannot be rebuilt from a subset, so a card whose identity the text pass saw more
  than once (``repeated_uids``) is left out: its photo could land on the wrong contact.
- N >= the size (every card has a photo, or the phone ignored the selector), no selecting,
  a refused probe (``None``) or one without PhonebookSize: the full pass over every card,
  as a phone without the feature gets.

The filtered pass sees no card without a photo, so it cannot clear a photo the phone
removed the way the full pass does (an empty photo hash). ``photo_clears`` gives those
cards: every text-pass contact that got no photo card, with an empty hash, for the
engine's mirror (``mirror.plan_page`` writes only those whose stored photo differs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocol.contacts import Contact
from protocol.pbap.changes import BookState
from protocol.pbap.params import AppParams, Feature, bad
from protocol.pbap.pull import PageReader, book_changed
from protocol.pbap.requests import PHOTO_SELECTOR, PbapGet, probe

__all__ = [
    "PhotoPass",
    "ambiguous_uids",
    "photo_clears",
    "photo_pass",
    "photo_probe",
    "photo_reader",
]


@dataclass(frozen=True)
class PhotoPass:
    """How the photo stage reads the book.

    Attributes:
        state: the probe's state with ``size`` the cards to page over (0: no pages).
        owner_first: index 0 is the owner card (the full pass).
        vcard_selector: the pages' vCardSelector, or None (every card).
    """

    state: BookState
    owner_first: bool = True
    vcard_selector: int | None = None

    @property
    def selected(self) -> bool:
        """Whether the pass reads only the cards with a photo."""
        return self.vcard_selector is not None


def photo_probe(shared_features: int) -> PbapGet | None:
    """The selector probe to send first, or None when the phone cannot select.

    Args:
        shared_features: what both the phone (SDP) and the car (CONNECT) claimed.

    Returns:
        ``telecom/pb.vcf``, MaxListCount 0, vCardSelector PHOTO, operator OR; or None.
    """
    if not shared_features & Feature.VCARD_SELECTING:
        return None
    return probe(vcard_selector=PHOTO_SELECTOR)


def photo_pass(state: BookState, answer: AppParams | None) -> PhotoPass:
    """The photo pass a selector probe's answer calls for.

    Args:
        state: the pull's first probe (PhonebookSize with the owner card).
        answer: the selector probe's Application Parameters; None when it was not sent
            (no vCard selecting) or the phone refused it.

    Returns:
        The pass (see the module docstring).

    Raises:
        PbapError: the answer's counters or identifier differ from the first probe's
            (the book changed during the pull).
    """
    full = PhotoPass(state)
    if answer is None or answer.phonebook_size is None:
        return full
    reason = book_changed(state, dataclasses.replace(answer, phonebook_size=None))
    if reason:
        raise bad(reason)
    if answer.phonebook_size >= state.size:
        return full
    sized = dataclasses.replace(state, size=answer.phonebook_size)
    return PhotoPass(sized, owner_first=False, vcard_selector=PHOTO_SELECTOR)


def photo_reader(plan: PhotoPass, text: PageReader) -> PageReader:
    """The reader of the photo pages ``plan`` calls for, after the text pass ``text``.

    Args:
        plan: what ``photo_pass`` returned.
        text: the reader of the text pages, all read.

    Returns:
        A full-pass reader (owner split, repeat counts as in the text pass), or for a
        filtered pass one without the owner split that leaves out repeated identities.
    """
    if not plan.selected:
        return PageReader("photos", plan.state)
    repeated = {uid: n for uid, n in text.uid_counts().items() if n > 1}
    return PageReader("photos", plan.state, owner_first=False, repeated=repeated)


def ambiguous_uids(counts: Mapping[str, int]) -> frozenset[str]:
    """Every uid the importer gave to a repeated identity: ``u``, ``u-2`` ... ``u-n``.

    Args:
        counts: the text pass's repeat count per identity (``PageReader.uid_counts``).

    Returns:
        The contact uids a filtered photo pass cannot tell apart.
    """
    out: set[str] = set()
    for uid, count in counts.items():
        if count > 1:
            out.add(uid)
            out.update(f"{uid}-{n}" for n in range(2, count + 1))
    return frozenset(out)


def photo_clears(text_uids: Iterable[str], photos: PageReader) -> list[Contact]:
    """The photo-stage cards that clear the photos a filtered pass did not see.

    Args:
        text_uids: every contact uid of the text pass.
        photos: the photo pass's reader, all read.

    Returns:
        For a filtered pass, one contact with no photo per text uid that no photo card
        named, repeated identities (``ambiguous_uids``) left as they are; sorted by uid.
        For a full pass none (its cards carry their empty hashes themselves).
    """
    if photos.owner_first:
        return []
    skip = photos.matched | ambiguous_uids(photos.repeated)
    return [Contact(uid=uid, fn="") for uid in sorted(set(text_uids) - skip)]
