"""The pages of one PBAP pull, read into contacts (sans-I/O): the car's side of section 12.2.

Theory of operation: a pull reads ``telecom/pb.vcf`` twice in the same windows
(``changes.pages``): once without photos (``Stage "contacts"``), then with photos only
(``"photos"``). A ``PageReader`` per stage imports each page's body with
``protocol.vcard.import_vcards``, keeping the importer's UID repeat counts across pages, so
every contact gets the UID it would get from one import of the whole book (the owner card
left out: it is not a contact, so it takes no place among the repeats). The two stages
select the same identity properties (``requests.PHOTO_ONLY``), so they give the same UIDs.

A filtered photo pass (``photos.photo_pass``: only the cards with a photo) reads pages
without the owner split, imports each card on its own (its uid is then its identity with
no repeat suffix) and leaves out the cards whose identity the text pass saw more than once
(``left_out``), which ``photos`` explains.

The reader refuses (``PbapError``) a page that cannot be part of the book the probe
described: version counters, the database identifier or PhonebookSize in the page's answer
that differ from the probe's (the phone changed its book mid-pull), more cards than asked
for, fewer than asked for before the last page (cards were deleted), or a body that ends
inside a card. The caller then stops the pull; pages already stored stay whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from protocol.contacts import Contact, Photo
from protocol.errors import VCardError
from protocol.pbap.changes import BookState, split_cards, split_owner
from protocol.pbap.params import AppParams, bad
from protocol.vcard import import_vcards

__all__ = ["MAX_SKIPPED_LOGGED", "PageReader", "ReadPage", "book_changed"]

Stage = Literal["contacts", "photos"]
# Skipped cards are logged one line each; a book of broken cards must not flood the log.
MAX_SKIPPED_LOGGED: Final = 20


@dataclass(frozen=True)
class ReadPage:
    """One page, imported: its contacts, their photos, the owner's name, what was skipped."""

    stage: Stage
    contacts: list[Contact]
    photos: list[Photo] = field(default_factory=list)
    owner: str | None = None
    skipped: list[VCardError] = field(default_factory=list)
    done: int = 0
    total: int = 0
    left_out: int = 0


def book_changed(probe: BookState, answer: AppParams) -> str:
    """Why a page's answer shows another book than the probe did ("" if it does not).

    Args:
        probe: what the probe at the start of the pull said.
        answer: the Application Parameters of a page's answer.

    Returns:
        A one-line reason, or "" when every value both carry is equal.
    """
    pairs = (
        ("database identifier", probe.database_id, answer.database_identifier),
        ("primary version counter", probe.primary, answer.primary_version_counter),
        ("secondary version counter", probe.secondary, answer.secondary_version_counter),
    )
    for name, before, now in pairs:
        if before is not None and now is not None and before != now:
            return f"the phone book changed during the pull ({name})"
    if answer.phonebook_size is not None and answer.phonebook_size != probe.size:
        return (
            f"the phone book changed during the pull (size {probe.size} -> {answer.phonebook_size})"
        )
    return ""


class PageReader:
    """Imports the pages of one stage, in order.

    Args:
        stage: "contacts" or "photos".
        probe: the probe's answer at the start of the pull (PhonebookSize counts the owner);
            for a filtered photo pass, its size is the cards with a photo.
        owner_first: index 0 is the owner card (False in a filtered photo pass).
        repeated: in a filtered pass, the identities the text pass saw more than once,
            with their counts (``uid_counts`` over 1): such cards are left out.
    """

    def __init__(
        self,
        stage: Stage,
        probe: BookState,
        *,
        owner_first: bool = True,
        repeated: Mapping[str, int] | None = None,
    ) -> None:
        self.stage: Stage = stage
        self.probe = probe
        self.owner_first = owner_first
        self.repeated: Mapping[str, int] = repeated or {}
        self.done = 0
        self.left_out = 0
        self.matched: set[str] = set()
        self._seen: dict[str, int] = {}
        self._owner_uid: str | None = None

    @property
    def total(self) -> int:
        """The cards the phone announced, the owner card excluded."""
        return max(self.probe.size - 1, 0) if self.owner_first else self.probe.size

    def uid_counts(self) -> dict[str, int]:
        """How often each identity (uid before its repeat suffix) occurred so far, the
        owner card's included (a contact named as the owner is ambiguous too)."""
        counts = dict(self._seen)
        if self._owner_uid is not None:
            counts[self._owner_uid] = counts.get(self._owner_uid, 0) + 1
        return counts

    def read(
        self, body: bytes, answer: AppParams, *, offset: int, count: int, last: bool
    ) -> ReadPage:
        """Import one page.

        Args:
            body: the GET's body.
            answer: its Application Parameters.
            offset: the page's ListStartOffset (0 holds the owner card).
            count: the MaxListCount asked for.
            last: whether this is the last page of the stage.

        Returns:
            The page's contacts (owner excluded), photos, owner name and skipped cards.

        Raises:
            PbapError: the page cannot belong to the book the probe described (see the
                module docstring); nothing of it may be stored.
        """
        reason = book_changed(self.probe, answer)
        if reason:
            raise bad(reason)
        blocks = split_cards(body)
        if len(blocks) > count:
            raise bad(f"page at {offset} has {len(blocks)} cards, {count} asked for")
        if len(blocks) < count and not last:
            raise bad(
                f"the phone book changed during the pull (page at {offset} has "
                f"{len(blocks)} of {count} cards)"
            )
        if not self.owner_first:
            return self._read_selected(blocks, offset)
        owner_block, cards = split_owner(blocks, first_index=offset)
        result = import_vcards(_join(cards), seen=self._seen) if cards else None
        if result is not None and result.truncated:
            raise bad(f"page at {offset} ends inside a card")
        self.done += len(cards)
        owner = _owner(owner_block)
        if owner is not None:
            self._owner_uid = owner.uid
        return ReadPage(
            stage=self.stage,
            contacts=result.contacts if result else [],
            photos=list(result.photos.values()) if result else [],
            owner=owner.fn if owner else None,
            skipped=result.errors if result else [],
            done=self._progress(),
            total=self.total,
        )

    def _read_selected(self, blocks: list[bytes], offset: int) -> ReadPage:
        """A page of a filtered photo pass: each card alone, repeated identities left out."""
        contacts: list[Contact] = []
        photos: dict[bytes, Photo] = {}
        skipped: list[VCardError] = []
        left_out = 0
        for block in blocks:
            result = import_vcards(_join([block]))
            if result.truncated:
                raise bad(f"page at {offset} ends inside a card")
            skipped += result.errors
            for contact in result.contacts:
                if contact.uid in self.repeated:
                    left_out += 1
                    continue
                contacts.append(contact)
                self.matched.add(contact.uid)
                if contact.photo in result.photos:
                    photos.setdefault(contact.photo, result.photos[contact.photo])
        self.done += len(blocks)
        self.left_out += left_out
        return ReadPage(
            stage=self.stage,
            contacts=contacts,
            photos=list(photos.values()),
            skipped=skipped,
            done=self._progress(),
            total=self.total,
            left_out=left_out,
        )

    def _progress(self) -> int:
        return min(self.done, self.total) if self.total else self.done


def _join(blocks: list[bytes]) -> bytes:
    """Concatenate card blocks, each ending with a line break."""
    return b"".join(b if b.endswith((b"\n", b"\r")) else b + b"\r\n" for b in blocks)


def _owner(block: bytes | None) -> Contact | None:
    """The owner card as a contact (None when there is no owner card or no name)."""
    if block is None:
        return None
    result = import_vcards(block)
    return result.contacts[0] if result.contacts else None
