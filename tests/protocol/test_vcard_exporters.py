"""vCards from real exporters that used to be lost: CR CR LF, comments, bad lines, nesting,
cards named only by a nickname, an organisation or an IM address (issue 9, items 15-19)."""

from __future__ import annotations

import base64

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
