"""protocol.pbap.calls (telecom/cch.vcf) and protocol.pbap.pull (the pages of a pull):
pure, with a hypothesis fuzz of the call-history reader."""

from __future__ import annotations

import asyncio

import pytest
from bumble.keys import MemoryKeyStore, PairingKeys
from hypothesis import given, settings
from hypothesis import strategies as st

from carhub.ble.bonds import drop_unknown_bonds
from protocol.pbap import AppParams, BookState, PbapError, pages
from protocol.pbap.calls import MAX_TEXT, Call, parse_calls
from protocol.pbap.pull import PageReader, book_changed
from protocol.vcard import import_vcards
from tests.carhub.pbap_car_phone import card

V21 = (
    b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:Lee;Ann;;;\r\nTEL;CELL:+15550100001\r\n"
    b"X-IRMC-CALL-DATETIME;RECEIVED:20261201T081500\r\nEND:VCARD\r\n"
)
V30 = (
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nTEL:tel:+15550100002\r\n"
    b"X-IRMC-CALL-DATETIME;TYPE=DIALED:20261130T190000Z\r\nEND:VCARD\r\n"
)
MISSED = (
    b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:\r\nTEL:+1555\r\n"
    b"X-IRMC-CALL-DATETIME;MISSED:20261301T000000\r\nEND:VCARD\r\n"
)
COUNTER = b"\x01" * 16


def test_reads_21_and_30_entries_in_order() -> None:
    history = parse_calls(V21 + V30 + MISSED)
    assert history.calls == [
        Call("Ann Lee", "+15550100001", "incoming", "2026-12-01T08:15:00"),
        Call("Bob", "+15550100002", "outgoing", "2026-11-30T19:00:00Z"),
        Call("", "+1555", "missed", ""),  # month 13: no date, the call stays
    ]
    assert history.skipped == 0


def test_skips_cards_without_a_call_type_and_cut_cards() -> None:
    no_type = b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:X\r\nTEL:1\r\nEND:VCARD\r\n"
    history = parse_calls(no_type + V21 + V30[:40])
    assert [c.name for c in history.calls] == ["Ann Lee"]
    assert history.skipped == 2


def test_is_bounded_in_entries_and_text() -> None:
    long = (
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:"
        + b"A" * 5000
        + b"\r\nX-IRMC-CALL-DATETIME;TYPE=MISSED:20260101\r\nEND:VCARD\r\n"
    )
    history = parse_calls(long + V21 * 300)
    assert len(history.calls) == 100
    assert history.calls[0].name == "A" * MAX_TEXT and history.calls[0].date == "2026-01-01"


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=600),
    st.lists(
        st.sampled_from(
            [
                V21,
                V30,
                MISSED,
                b"BEGIN:VCARD\r\n",
                b"\x00\xff",
                b"END:VCARD\r\n",
                b"X-IRMC-CALL-DATETIME;;=:\r\n",
            ]
        ),
        max_size=8,
    ),
)
def test_fuzz_never_raises_and_stays_bounded(noise: bytes, parts: list[bytes]) -> None:
    for body in (noise, b"".join(parts), b"".join(parts) + noise, noise.join(parts)):
        history = parse_calls(body)
        assert len(history.calls) <= 100
        assert all(c.type in ("incoming", "outgoing", "missed") for c in history.calls)
        assert all(len(c.name) <= MAX_TEXT and len(c.number) <= MAX_TEXT for c in history.calls)


def _book(n: int) -> list[bytes]:
    names = ["Owner"] + [("Same" if i % 3 == 0 else f"N{i}") for i in range(n)]
    return [card(name, f"+1{i}") for i, name in enumerate(names)]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_pages_give_the_uids_of_one_import_and_set_the_owner_apart(size: int) -> None:
    cards = _book(10)
    reader = PageReader("contacts", BookState(None, None, None, len(cards)))
    windows = pages(len(cards), size)
    read = [
        reader.read(
            b"".join(cards[o : o + c]), AppParams(), offset=o, count=c, last=i == len(windows) - 1
        )
        for i, (o, c) in enumerate(windows)
    ]
    uids = [c.uid for page in read for c in page.contacts]
    assert uids == [c.uid for c in import_vcards(b"".join(cards[1:])).contacts]
    assert read[0].owner == "Owner" and all(p.owner is None for p in read[1:])
    assert read[-1].done == read[-1].total == 10


def test_a_page_of_another_book_is_refused() -> None:
    probe = BookState(b"\x42" * 16, COUNTER, COUNTER, 3)
    reader = PageReader("contacts", probe)
    answer = AppParams(primary_version_counter=b"\x02" * 16)
    assert "primary version counter" in book_changed(probe, answer)
    with pytest.raises(PbapError, match="changed during the pull"):
        reader.read(b"".join(_book(2)), answer, offset=0, count=3, last=True)
    with pytest.raises(PbapError, match="2 of 3 cards"):
        reader.read(b"".join(_book(1)), AppParams(), offset=0, count=3, last=False)
    with pytest.raises(PbapError, match="4 cards, 3 asked"):
        reader.read(b"".join(_book(3)), AppParams(), offset=0, count=3, last=True)
    with pytest.raises(PbapError, match="inside a card"):
        reader.read(b"".join(_book(2))[:-12], AppParams(), offset=0, count=3, last=True)
    assert book_changed(probe, AppParams(phonebook_size=3, primary_version_counter=COUNTER)) == ""


def test_drop_unknown_bonds_keeps_classic_phones_the_engine_lists() -> None:
    class Apple:
        def apple_is_bonded(self, phone_id: str) -> bool:
            return phone_id == "00ca48000001"

    keys = MemoryKeyStore()
    link = PairingKeys(link_key=PairingKeys.Key(value=b"\x00" * 16))

    async def run() -> list[str]:
        for name in ("00:CA:48:00:00:01/P", "00:CA:48:00:00:02/P", "00:CA:48:00:00:03/P"):
            await keys.update(name, link)
        await drop_unknown_bonds(keys, Apple(), lambda name: name.startswith("00:CA:48:00:00:02"))  # type: ignore[arg-type]
        return [name for name, _ in await keys.get_all()]

    assert asyncio.run(run()) == ["00:CA:48:00:00:01/P", "00:CA:48:00:00:02/P"]
