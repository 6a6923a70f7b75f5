"""Call history cards: the 2.1 bare-word type in the emulated phone's folders, and the one
vCard text unescaping shared with protocol.vcard."""

from __future__ import annotations

import pytest

from protocol.pbap.calls import call_kind, parse_calls
from protocol.pbap.server import Book
from protocol.vcard import import_vcards
from protocol.vcard_lex import front_end, iter_cards, parse_params


def _call(version: str, datetime_line: str, name: str) -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:{version}\r\nFN:{name}\r\nTEL:+1 555\r\n"
        f"{datetime_line}\r\nEND:VCARD\r\n"
    ).encode()


def test_a_21_missed_call_lands_in_mch_and_nowhere_else() -> None:
    missed_21 = _call("2.1", "X-IRMC-CALL-DATETIME;MISSED:20240102T100000", "A")
    missed_30 = _call("3.0", "X-IRMC-CALL-DATETIME;TYPE=MISSED:20240101T100000", "B")
    dialed_21 = _call("2.1", "X-IRMC-CALL-DATETIME;DIALED:20240101T090000", "C")
    received_30 = _call("3.0", "x-irmc-call-datetime;type=received:20240101T080000", "D")
    book = Book((), (missed_21, missed_30, dialed_21, received_30))
    assert list(book.folder("mch")) == [missed_21, missed_30]
    assert list(book.folder("och")) == [dialed_21]
    assert list(book.folder("ich")) == [received_30]
    assert list(book.folder("cch")) == [missed_21, missed_30, dialed_21, received_30]


def test_a_card_without_a_call_type_is_in_no_typed_folder() -> None:
    untyped = _call("3.0", "X-IRMC-CALL-DATETIME:20240101T080000", "E")
    book = Book((), (untyped,))
    assert [list(book.folder(f)) for f in ("ich", "och", "mch")] == [[], [], []]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"X-IRMC-CALL-DATETIME;MISSED:20240102T100000", "missed"),
        (b"X-IRMC-CALL-DATETIME;TYPE=DIALED:20240102T100000", "outgoing"),
        (b"X-IRMC-CALL-DATETIME;received:20240102T100000", "incoming"),
        (b"X-IRMC-CALL-DATETIME;TYPE=OTHER:20240102T100000", None),
    ],
)
def test_call_kind_reads_21_words_and_30_types(line: bytes, kind: str | None) -> None:
    (card,) = iter_cards(front_end(b"BEGIN:VCARD\r\n" + line + b"\r\nEND:VCARD\r\n").lines)
    assert not isinstance(card, Exception)
    (prop,) = card.props
    assert call_kind(parse_params(prop)) == kind


@pytest.mark.parametrize(
    ("name_lines", "name"),
    [
        # an unknown escape keeps its backslash, as in the contacts
        ("FN:Ann \\x Lee\\, Jr.", "Ann \\x Lee, Jr."),
        ("N:Lee\\, Jr.;Ann \\x;;;", "Ann \\x Lee, Jr."),
        # an escaped backslash before a separator ends the component
        ("N:Back\\\\;Slash;;;", "Slash Back\\"),
    ],
)
def test_a_call_names_the_caller_as_the_contacts_do(name_lines: str, name: str) -> None:
    contact = f"BEGIN:VCARD\r\nVERSION:3.0\r\n{name_lines}\r\nEND:VCARD\r\n".encode()
    (expected,) = import_vcards(contact).contacts
    call = (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\n{name_lines}\r\nTEL:+1 555\r\n"
        "X-IRMC-CALL-DATETIME;TYPE=MISSED:20240102T100000\r\nEND:VCARD\r\n"
    ).encode()
    (got,) = parse_calls(call).calls
    assert (got.name, got.type, got.number) == (name, "missed", "+1 555")
    assert expected.fn == name
