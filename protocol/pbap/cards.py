"""What a PSE does to the cards it serves: PropertySelector filtering, the VERSION line,
listing names, and version counters derived from the book (sans-I/O, pure).

Theory of operation: a card is cut into *properties*, each its first line plus every
line that continues it (a folded line starting with a space or tab, a quoted-printable
soft break ending in ``=``, a vCard 2.1 base64 body without indentation, a blank line).
Filtering keeps or drops whole properties, so a PHOTO never leaves half a base64 body
behind. The cards are served as stored: the requested Format only rewrites the VERSION
line (a documented simplification; a book written in 3.0 is sent in 3.0 syntax labelled
2.1 when a PCE asks for 2.1, which every importer we know reads).

Counters (PBAP 1.2 section 5.1.4.10/11): ``next_counters`` compares two digests of the
book with those it last saw: the primary counter goes up when any byte of any card
changes, the secondary when a name, number, e-mail or address (N, FN, TEL, EMAIL, ADR)
does. Both are 128-bit big-endian counters, as the PSE sends them.
"""

from __future__ import annotations

import hashlib
import quopri
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from protocol.pbap.changes import LINE
from protocol.pbap.params import Format, Property

__all__ = [
    "MANDATORY",
    "CounterState",
    "card_name",
    "card_numbers",
    "filter_card",
    "next_counters",
    "properties",
    "property_bits",
]

# Property names the selector bits stand for (PBAP 1.2 section 5.1.4.1).
_BITS: Final[dict[bytes, int]] = {
    name.replace("_", "-").encode(): int(bit)
    for name, bit in Property.__members__.items()
    if name != "PROPRIETARY_FILTER"
}
# What a PSE sends whatever the selector (PBAP 1.2 section 5.1.4.1: VERSION, N, TEL for
# 2.1; VERSION, N, FN, TEL for 3.0), plus the card's own BEGIN/END.
MANDATORY: Final[dict[int, int]] = {
    Format.VCARD_21: int(Property.VERSION | Property.N | Property.TEL),
    Format.VCARD_30: int(Property.VERSION | Property.N | Property.FN | Property.TEL),
}
_IDENTITY: Final = frozenset({b"N", b"FN", b"TEL", b"EMAIL", b"ADR"})
_START = re.compile(rb"(?:[A-Za-z0-9-]+\.)?([A-Za-z0-9-]+)[;:]")
_GROUP = re.compile(rb"([A-Za-z0-9-]+)\.[A-Za-z0-9-]+[;:]")
_VERSIONS: Final = {Format.VCARD_21: b"2.1", Format.VCARD_30: b"3.0"}
_COUNTER_MAX: Final = (1 << 128) - 1


def _lines(card: bytes) -> list[bytes]:
    return [m.group() for m in LINE.finditer(card) if m.group()]


def properties(card: bytes) -> list[tuple[bytes, bytes]]:
    """Cut a card into ``(NAME, raw bytes)`` properties, lines kept byte for byte.

    Args:
        card: one vCard block (``BEGIN:VCARD`` ... ``END:VCARD``).

    Returns:
        Each property's upper-case name (group prefix removed; ``b""`` for stray bytes
        before the first property) and its lines, continuations included. Never raises.
    """
    props: list[tuple[bytes, bytearray]] = []
    soft_break = False
    for line in _lines(card):
        body = line.rstrip(b"\r\n")
        m = None if soft_break or body[:1] in (b" ", b"\t") else _START.match(body)
        if m is None and props:
            props[-1][1].extend(line)
        else:
            props.append((m.group(1).upper() if m else b"", bytearray(line)))
        soft_break = body.endswith(b"=") and b"QUOTED-PRINTABLE" in props[-1][1][:200].upper()
    return [(name, bytes(raw)) for name, raw in props]


def filter_card(card: bytes, selector: int | None, fmt: Format, *, always: int = 0) -> bytes:
    """The card as the PSE sends it for a PropertySelector and a Format.

    Args:
        card: the stored card.
        selector: the PropertySelector; ``None`` or 0 means every property.
        fmt: the requested vCard version; the VERSION line says it (see module doc).
        always: bits kept whatever the selector (the call history keeps its
            X-IRMC-CALL-DATETIME, as AOSP's PSE does).

    Returns:
        The card with only the selected and mandatory properties (and BEGIN/END, and a
        nested card inside a kept AGENT), its VERSION line rewritten. Properties no bit
        names (X-... extensions) are dropped when a selector is given, as the spec says,
        except those grouped (``item1.X-ABLabel``) with a kept property: they label it.
    """
    keep = None if not selector else (selector | MANDATORY[fmt] | always)
    props = properties(card)
    kept_groups = set() if keep is None else {
        m.group(1).upper() for name, raw in props
        if (m := _GROUP.match(raw)) and keep & _BITS.get(name, 0)
    }
    out = bytearray()
    depth = 0
    kept_outer = True
    for name, raw in props:
        if name in (b"BEGIN", b"END"):
            depth += 1 if name == b"BEGIN" else -1
            if depth == 0 or (name == b"BEGIN" and depth == 1) or kept_outer:
                out += raw
            continue
        if depth > 1:  # inside a nested card: goes with its AGENT
            if kept_outer:
                out += raw
            continue
        if name == b"VERSION":
            ending = raw[len(raw.rstrip(b"\r\n")):] or b"\r\n"
            out += b"VERSION:" + _VERSIONS[fmt] + ending
            continue
        kept_outer = _kept(name, raw, keep, kept_groups)
        if kept_outer:
            out += raw
    return bytes(out)


def _kept(name: bytes, raw: bytes, keep: int | None, kept_groups: set[bytes]) -> bool:
    """Selected, or an Apple-style ``itemN.`` companion (X-ABLabel) of a selected one."""
    if keep is None or keep & _BITS.get(name, 0):
        return True
    m = _GROUP.match(raw)
    return m is not None and m.group(1).upper() in kept_groups


def _value(raw: bytes) -> str:
    """A property's value, unfolded and decoded (quoted-printable, charset)."""
    head, _, value = raw.partition(b":")
    value = re.sub(rb"\r\n[ \t]|\n[ \t]|\r[ \t]", b"", value).rstrip(b"\r\n")
    upper = head.upper()
    if b"QUOTED-PRINTABLE" in upper:
        value = quopri.decodestring(re.sub(rb"=\r?\n", b"", value))
    m = re.search(rb"CHARSET=([A-Za-z0-9_-]+)", head, re.IGNORECASE)
    charset = m.group(1).decode() if m else "utf-8"
    try:
        return value.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return value.decode("utf-8", errors="replace")


def card_name(card: bytes) -> str:
    """The name a vCard listing shows for a card: its N value, else FN, else "".

    Args:
        card: one vCard block.

    Returns:
        The decoded value (``"Doe;John;;;"`` style for N). Never raises.
    """
    found = {name: raw for name, raw in reversed(properties(card))}
    for name in (b"N", b"FN"):
        if name in found:
            value = _value(found[name])
            if value.strip(" ;"):
                return value
    return ""


def property_bits(card: bytes) -> int:
    """The selector bits of the properties a card has (for vCardSelector)."""
    bits = 0
    for name, _ in properties(card):
        bits |= _BITS.get(name, 0)
    return bits


def card_numbers(card: bytes) -> list[str]:
    """The TEL values of a card (for a listing's number search)."""
    return [_value(raw) for name, raw in properties(card) if name == b"TEL"]


@dataclass(frozen=True)
class CounterState:
    """The version counters of one phone book and the digests they were counted from.

    ``primary``/``secondary`` are the counters' integer values (0..2**128-1); the digests
    are hex SHA-256 of the whole book and of its identity properties.
    """

    primary: int = 0
    secondary: int = 0
    primary_digest: str = ""
    secondary_digest: str = ""

    def primary_bytes(self) -> bytes:
        """The PrimaryVersionCounter as sent (16 bytes, big-endian)."""
        return self.primary.to_bytes(16, "big")

    def secondary_bytes(self) -> bytes:
        """The SecondaryVersionCounter as sent (16 bytes, big-endian)."""
        return self.secondary.to_bytes(16, "big")


def _digest(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:  # length-prefixed, so moving bytes between cards is a change
        h.update(len(chunk).to_bytes(8, "big"))
        h.update(chunk)
    return h.hexdigest()


def _identity_lines(card: bytes) -> bytes:
    props = properties(card)
    return b"".join(raw.rstrip(b"\r\n") + b"\n" for n, raw in props if n in _IDENTITY)


def next_counters(previous: CounterState | None, cards: Sequence[bytes]) -> CounterState:
    """The counters for ``cards``, given those counted last time.

    Args:
        previous: the state stored after the last look at the book, or ``None`` (a fresh
            state dir: both counters start at 1).
        cards: every card of the book, owner card first.

    Returns:
        ``previous`` itself when nothing changed; else a state whose primary counter is
        one more (any change), and whose secondary is one more when a name, number,
        e-mail or address changed, or a card came or went. Counters wrap at 2**128.
    """
    primary_digest = _digest(cards)
    secondary_digest = _digest(_identity_lines(c) for c in cards)
    if previous is None:
        return CounterState(1, 1, primary_digest, secondary_digest)
    if previous.primary_digest == primary_digest:
        return previous
    secondary = previous.secondary
    if previous.secondary_digest != secondary_digest:
        secondary = (secondary + 1) & _COUNTER_MAX
    return CounterState(
        (previous.primary + 1) & _COUNTER_MAX, secondary, primary_digest, secondary_digest
    )
