"""vCards from real exporters that used to be lost: CR CR LF, comments, bad lines, nesting,
cards named only by a nickname, an organisation or an IM address (issue 9, items 15-19)."""

from __future__ import annotations

import base64

import pytest

from protocol.vcard import import_vcards

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3 + b"\xff\xd9"


def test_iphone_cr_cr_lf_line_ends_with_a_folded_photo() -> None:
    blob = base64.b64encode(JPEG).decode()
    folds = [blob[i : i + 74] for i in range(0, len(blob), 74)]
    lines = ["BEGIN:VCARD", "VERSION:3.0", "N:Lee;Ann;;;", "FN:Ann Lee",
             "TEL;type=CELL:+1 555 0100", "PHOTO;ENCODING=b;TYPE=JPEG:" + folds[0],
             *(" " + f for f in folds[1:]), "END:VCARD"]  # fmt: skip
    data = ("\r\r\n".join(lines) + "\r\r\n").encode()
    result = import_vcards(data)
    assert result.errors == []
    [ann] = result.contacts
    assert ann.fn == "Ann Lee" and ann.phones[0].number == "+1 555 0100"
    assert result.photos[ann.photo].data == JPEG


def test_comment_lines_are_ignored() -> None:
    data = (
        b"# Exported by SomeTool 2.0\r\nBEGIN:VCARD\r\nVERSION:3.0\r\n# a comment\r\n"
        b"FN:Bo Chan\r\n#another\r\nTEL:+1 555 0101\r\nEND:VCARD\r\n"
    )
    result = import_vcards(data)
    assert result.errors == []
    assert [(c.fn, c.phones[0].number) for c in result.contacts] == [("Bo Chan", "+1 555 0101")]


def card(fn: str, extra: str = "") -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{fn}\r\nTEL:+1 555 0100\r\n{extra}END:VCARD\r\n"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("this line has no colon", "line has no ':' separator"),
        ("PHOTO;ENCODING=b;TYPE=JPEG:@@@not*base64", "bad base64 in PHOTO"),
        ("NOTE;ENCODING=QUOTED-PRINTABLE:bro=ZZken", "undecodable quoted-printable in NOTE"),
        (
            "item1.X-ABLabel;ENCODING=QUOTED-PRINTABLE:=ZZ",
            "undecodable quoted-printable in X-ABLABEL",
        ),
    ],
)
def test_one_bad_line_costs_that_property_not_the_card(bad: str, reason: str) -> None:
    text = card("First") + card("Broken", f"EMAIL:b@example.com\r\n{bad}\r\n") + card("Third")
    result = import_vcards(text.encode())
    assert result.errors == []
    assert [c.fn for c in result.contacts] == ["First", "Broken", "Third"]
    broken = result.contacts[1]
    assert broken.phones[0].number == "+1 555 0100"
    assert broken.emails[0].address == "b@example.com"
    assert broken.photo == b"" and broken.note == "" and result.photos == {}
    assert [(w.line, w.reason) for w in result.warnings] == [
        (text.splitlines().index(bad) + 1, reason)
    ]


def test_a_card_with_nothing_identifying_left_is_skipped_with_its_bad_line() -> None:
    text = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN;ENCODING=QUOTED-PRINTABLE:=ZZ\r\nEND:VCARD\r\n"
    result = import_vcards((card("Ann") + text).encode())
    assert [c.fn for c in result.contacts] == ["Ann"]
    assert [(e.line, e.reason) for e in result.errors] == [(6, "card has no name, phone or email")]
    assert [w.line for w in result.warnings] == [8]


def test_cards_nested_in_a_card_are_all_imported() -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Outer;Olga\r\nTEL;CELL:+1 555 0001\r\nAGENT:\r\n"
        "BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Inner Ian\r\nTEL:+1 555 0002\r\n"
        "BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Innermost Ivy\r\nEND:VCARD\r\n"
        "END:VCARD\r\n"
        "EMAIL:olga@example.com\r\nEND:VCARD\r\n" + card("After")
    )
    result = import_vcards(text.encode())
    assert result.errors == [] and result.warnings == []
    got = [
        (c.fn, [p.number for p in c.phones], [e.address for e in c.emails]) for c in result.contacts
    ]
    assert got == [
        ("Olga Outer", ["+1 555 0001"], ["olga@example.com"]),
        ("Inner Ian", ["+1 555 0002"], []),
        ("Innermost Ivy", [], []),
        ("After", ["+1 555 0100"], []),
    ]
    assert result.cards_seen == 4


@pytest.mark.parametrize(
    ("lines", "fn"),
    [
        ("NICKNAME:Bobby,Bob", "Bobby"),
        ("ORG:Acme Garage;Service", "Acme Garage, Service"),
        ("NICKNAME:Bobby\r\nORG:Acme Garage", "Bobby"),
        ("IMPP;TYPE=home:xmpp:bob@jabber.example", "bob@jabber.example"),
        ("X-AIM:bobaim", "bobaim"),
        ("X-JABBER;TYPE=WORK:bob@work.example", "bob@work.example"),
        ("X-SKYPE-USERNAME:bob.skype", "bob.skype"),
    ],
)
def test_card_named_only_by_nickname_org_or_im_is_kept(lines: str, fn: str) -> None:
    text = f"BEGIN:VCARD\r\nVERSION:3.0\r\n{lines}\r\nEND:VCARD\r\n"
    result = import_vcards(text.encode())
    assert result.errors == []
    assert [c.fn for c in result.contacts] == [fn]
    assert result.contacts[0].uid  # derived from the name, like any card without UID
