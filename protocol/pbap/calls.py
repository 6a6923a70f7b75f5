"""The combined call history ``telecom/cch.vcf`` (PBAP 1.2 section 3.1.2), read into values.

Each entry is a vCard (2.1 or 3.0) whose ``X-IRMC-CALL-DATETIME`` property says how and when
the call was made: ``X-IRMC-CALL-DATETIME;MISSED:20261201T081500`` in 2.1, ``;TYPE=MISSED``
in 3.0, ``RECEIVED`` an incoming call, ``DIALED`` an outgoing one, the time local or with
``Z``. The name is ``FN`` (else built from ``N``; "" for a number the phone has no contact
for), the number the first ``TEL`` ("" for a withheld number).

The body comes from the phone, so this reader is bounded (``MAX_CALLS_BYTES`` read, at most
``MAX_CALLS`` entries, each text at most ``MAX_TEXT`` characters) and never raises: a card
it cannot read (no call type, a bad line, cut short) is skipped and counted.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Final, Literal

from protocol.errors import VCardError
from protocol.vcard import name_from_n, structured, unescape
from protocol.vcard_lex import Params, RawCard, decode_text, front_end, iter_cards, parse_params

__all__ = [
    "MAX_CALLS",
    "MAX_CALLS_BYTES",
    "MAX_TEXT",
    "Call",
    "CallHistory",
    "CallType",
    "call_kind",
    "parse_calls",
]

# The car asks for the last 100 entries (MaxListCount 100); a phone that sends more is cut.
MAX_CALLS: Final = 100
# 100 call stubs are a few kB; 1 MiB leaves room for a phone that sends whole cards.
MAX_CALLS_BYTES: Final = 1024 * 1024
# A name or number longer than this is noise (or an attack on the dashboard): cut.
MAX_TEXT: Final = 256

CallType = Literal["incoming", "outgoing", "missed"]
_TYPES: Final[dict[str, CallType]] = {
    "RECEIVED": "incoming",
    "DIALED": "outgoing",
    "MISSED": "missed",
}
_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?")


@dataclass(frozen=True)
class Call:
    """One call: ``date`` ISO 8601 as the phone wrote it (``Z`` kept), or ""."""

    name: str
    number: str
    type: CallType
    date: str


@dataclass(frozen=True)
class CallHistory:
    """The entries read, newest first as the phone sent them, and the cards skipped."""

    calls: list[Call]
    skipped: int


def parse_calls(body: bytes, *, limit: int = MAX_CALLS) -> CallHistory:
    """Read a ``telecom/cch.vcf`` body.

    Args:
        body: the PullPhoneBook answer's body (any split of cards, 2.1 or 3.0).
        limit: the most entries returned (the first ones: the phone sends newest first).

    Returns:
        The calls and the number of cards skipped. Never raises.
    """
    calls: list[Call] = []
    skipped = 0
    try:
        source = front_end(body[:MAX_CALLS_BYTES])
        for card in iter_cards(source.lines):
            if len(calls) >= limit:
                break
            call = None if isinstance(card, VCardError) else _call(card, source.transcoded)
            if call is None:
                skipped += 1
            else:
                calls.append(call)
    except Exception:  # the promise is "never raises": a bug costs the rest, not the car
        skipped += 1
    return CallHistory(calls, skipped)


def _call(card: RawCard, transcoded: bool) -> Call | None:
    """One card as a call, or None when it says no call type."""
    fn = n_name = number = ""
    kind: CallType | None = None
    date = ""
    for prop in card.props:
        try:
            params = parse_params(prop)
            if prop.name == "X-IRMC-CALL-DATETIME" and kind is None:
                kind = call_kind(params)
                date = _date(decode_text(prop, params, transcoded).strip())
            elif prop.name == "FN" and not fn:
                fn = unescape(decode_text(prop, params, transcoded)).strip()
            elif prop.name == "N" and not n_name:
                n_name = _from_n(decode_text(prop, params, transcoded))
            elif prop.name == "TEL" and not number:
                number = decode_text(prop, params, transcoded).strip()
                number = number[4:].strip() if number.lower().startswith("tel:") else number
        except VCardError:
            continue  # one bad line costs that property only, as in protocol.vcard
    if kind is None:
        return None
    return Call((fn or n_name)[:MAX_TEXT], number[:MAX_TEXT], kind, date)


def call_kind(params: Params) -> CallType | None:
    """The call type an ``X-IRMC-CALL-DATETIME`` property's parameters say.

    Args:
        params: its parameters (``protocol.vcard_lex.parse_params``).

    Returns:
        "incoming", "outgoing" or "missed", from a 2.1 bare word (``;MISSED:``) or a 3.0
        ``TYPE=`` value; None when neither names a call type.
    """
    for word in [*params.types, *params.other.keys()]:
        kind = _TYPES.get(word.strip().upper())
        if kind is not None:
            return kind
    return None


def _date(text: str) -> str:
    """``20261201T081500[Z]`` as ``2026-12-01T08:15:00[Z]``; "" when not a real time."""
    m = _STAMP.fullmatch(text)
    if m is None:
        return ""
    year, month, day, hour, minute, second, zulu = m.groups()
    try:
        datetime.date(int(year), int(month), int(day))
        if hour is not None:
            datetime.time(int(hour), int(minute), int(second))
    except ValueError:
        return ""
    if hour is None:
        return f"{year}-{month}-{day}"
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{zulu}"


def _from_n(text: str) -> str:
    """A display name from N (family;given;additional;prefix;suffix), as protocol.vcard's."""
    return name_from_n(tuple(p.strip() for p in structured(text, 5)))
