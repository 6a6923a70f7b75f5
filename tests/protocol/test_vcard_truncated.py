"""A vCard file that ends inside a card was cut short: the importer says so."""

from __future__ import annotations

from protocol.vcard import import_vcards

CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann %d\r\nTEL:+1 555 %04d\r\nEND:VCARD\r\n"


def cards(n: int) -> bytes:
    return b"".join(CARD % (i, i) for i in range(n))


def test_a_file_cut_inside_a_card_is_truncated() -> None:
    whole = cards(100)
    cut = whole[: len(whole) // 3]
    assert not cut.rstrip().endswith(b"END:VCARD")
    result = import_vcards(cut)
    assert result.truncated
    assert 0 < len(result.contacts) < 100  # what came before the cut still reads


def test_a_file_cut_inside_the_begin_line_is_truncated() -> None:
    assert import_vcards(cards(3) + b"BEGIN:VC").truncated
    assert import_vcards(cards(3) + b"B\r\n").truncated


def test_only_begin_and_version_is_truncated() -> None:
    assert import_vcards(b"BEGIN:VCARD\nVERSION:3.0\n").truncated


def test_whole_files_are_not_truncated() -> None:
    assert not import_vcards(cards(3)).truncated
    assert not import_vcards(cards(3) + b"\r\n\r\n").truncated
    nested = b"BEGIN:VCARD\nFN:Outer\nBEGIN:VCARD\nFN:Inner\nEND:VCARD\nEND:VCARD\n"
    assert not import_vcards(nested).truncated
    # A card with an error but closed is skipped, not a cut.
    broken = b"BEGIN:VCARD\nno separator here\nEND:VCARD\n" + cards(1)
    assert not import_vcards(broken).truncated
