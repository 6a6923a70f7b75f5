"""Pure decisions of a PBAP pull: skip or pull, the pages, and the owner card.

Change detection (PBAP 1.2 section 5.1.4.10/11): the phone's DatabaseIdentifier changes
when its database is rebuilt (handles no longer mean the same cards); the primary version
counter when any card changes, the secondary when a name, number, e-mail or address does.
The car skips a download only when the identifier and both counters are present and equal
to what it stored; anything missing (a PBAP 1.1 phone, or a 1.2 phone that did not get
the features in the CONNECT) means a pull.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from protocol.errors import LocalProtocolError, Reason
from protocol.pbap.params import AppParams

__all__ = [
    "LINE",
    "MAX_CARD_BLOCKS",
    "BookState",
    "decide",
    "pages",
    "split_cards",
    "split_owner",
]

# A phone book object holds at most 65,535 cards (MaxListCount and the offset are u16).
MAX_CARD_BLOCKS: Final = 0xFFFF
# One line with its ending (CRLF, CR or LF), or the unended last one.
LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n|\Z)")
_BEGIN = re.compile(rb"[ \t]*BEGIN[ \t]*:[ \t]*VCARD[ \t]*", re.IGNORECASE)
_END = re.compile(rb"[ \t]*END[ \t]*:[ \t]*VCARD[ \t]*", re.IGNORECASE)


@dataclass(frozen=True)
class BookState:
    """What the car stores about a phone book after a complete pull (or reads in a probe).

    ``database_id``, ``primary`` and ``secondary`` are the 16-byte values, ``None`` when
    the phone sent none; ``size`` is PhonebookSize (0 when absent).
    """

    database_id: bytes | None
    primary: bytes | None
    secondary: bytes | None
    size: int

    @property
    def counted(self) -> bool:
        """Whether the phone sent its identifier and both counters (what ``decide`` compares)."""
        return None not in (self.database_id, self.primary, self.secondary)

    @classmethod
    def from_probe(cls, probe: AppParams) -> BookState:
        """The state a probe response describes.

        Args:
            probe: the decoded Application Parameters of a MaxListCount = 0 answer.

        Returns:
            Its identifier, counters and size.
        """
        return cls(
            database_id=probe.database_identifier,
            primary=probe.primary_version_counter,
            secondary=probe.secondary_version_counter,
            size=probe.phonebook_size or 0,
        )


def decide(previous: BookState | None, probe: AppParams) -> Literal["skip", "pull"]:
    """Whether a reconnect needs a download.

    Args:
        previous: the state stored after the last complete pull, or ``None`` (never pulled,
            or the last pull did not finish).
        probe: the phone's answer to ``requests.probe()``.

    Returns:
        ``"skip"`` only when the database identifier and both counters are present in
        both and equal; ``"pull"`` otherwise. The size alone is never trusted: a card can
        change without the count changing.
    """
    if previous is None:
        return "pull"
    now = BookState.from_probe(probe)
    pairs = (
        (previous.database_id, now.database_id),
        (previous.primary, now.primary),
        (previous.secondary, now.secondary),
    )
    if all(old is not None and old == new for old, new in pairs):
        return "skip"
    return "pull"


def pages(total: int, page_size: int) -> list[tuple[int, int]]:
    """The (ListStartOffset, MaxListCount) windows that cover ``total`` cards.

    Args:
        total: PhonebookSize from the probe (>= 0; the owner card included).
        page_size: cards per GET, 1..65535.

    Returns:
        ``[(0, page_size), (page_size, page_size), ..., (offset, rest)]``; empty for 0.

    Raises:
        LocalProtocolError: a negative total, or a page size out of range.
    """
    if total < 0 or not 1 <= page_size <= 0xFFFF:
        raise LocalProtocolError(Reason.MALFORMED, f"pages({total}, {page_size})")
    total = min(total, MAX_CARD_BLOCKS + 1)  # ListStartOffset cannot go past 65535
    return [(at, min(page_size, total - at)) for at in range(0, total, page_size)]


def split_cards(body: bytes) -> list[bytes]:
    """Cut a phone book object into its top-level vCard byte blocks, without parsing them.

    Args:
        body: the concatenated cards of a PullPhoneBook answer (one page or the book).

    Returns:
        Each block from a top-level ``BEGIN:VCARD`` line to its ``END:VCARD`` line
        (nested cards stay inside their parent's block); an unterminated last card is
        returned as it is, so the importer reports it. Bytes between cards are dropped,
        and blocks past ``MAX_CARD_BLOCKS`` are not returned (no object holds more).
        Never raises.
    """
    blocks: list[bytes] = []
    depth = 0
    start = 0
    for m in LINE.finditer(body):
        line = m.group().rstrip(b"\r\n")
        if _BEGIN.fullmatch(line):
            if depth == 0:
                start = m.start()
            depth += 1
        elif depth and _END.fullmatch(line):
            depth -= 1
            if depth == 0:
                blocks.append(body[start : m.end()])
                if len(blocks) >= MAX_CARD_BLOCKS:
                    return blocks
        if m.end() >= len(body):
            break
    if depth:
        blocks.append(body[start:])
    return blocks


def split_owner(
    cards: Sequence[bytes], *, first_index: int = 0
) -> tuple[bytes | None, list[bytes]]:
    """Set the owner card apart: index 0 of ``telecom/pb.vcf`` (handle ``0.vcf``).

    PBAP 1.2 section 3.1.5.1: the first card of the main phone book is the phone's own
    card; the car keeps it as the owner's name, not as a contact.

    Args:
        cards: the vCard blocks of one page, in order (see ``split_cards``).
        first_index: the page's ListStartOffset; only the page that starts at 0 holds the
            owner card.

    Returns:
        ``(owner, contacts)``: the owner block or ``None``, and the other blocks.
    """
    if first_index == 0 and cards:
        return cards[0], list(cards[1:])
    return None, list(cards)
