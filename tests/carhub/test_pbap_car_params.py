"""The car's OBEX channel (carhub.pbap.obex_link) against a phone scripted packet by packet:
Application Parameters repeated across a GET's answer packets, and the bound on each GET's
body. The phone is a fake RFCOMM DLC answering from ``protocol.obex`` packets; the pull
is ``carhub.pbap.pull.pull_book`` as the car runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from carhub.classic import CallEntry, ClassicEvents, ClassicLinkError, PulledPage
from carhub.pbap.obex_link import (
    MAX_PROBE_BODY,
    MAX_TEXT_CARD,
    ObexChannel,
    body_bound,
)
from carhub.pbap.pull import pull_book
from protocol.obex import (
    DEFAULT_MAX_BODY,
    HeaderId,
    Opcode,
    Packet,
    ResponseCode,
    decode_packet,
    encode_packet,
)
from protocol.obex import encode_app_params as encode_tlvs
from protocol.pbap import (
    NO_PHOTO,
    PBAP_TARGET,
    PHOTO_ONLY,
    AppParams,
    BookState,
    decode_app_params,
    encode_app_params,
    probe,
    pull_phone_book,
)
from protocol.pbap.calls import MAX_CALLS_BYTES
from tests.carhub.pbap_car_phone import card

PID = "a1b2c3d4e5f6"
DB, PRIMARY, SECONDARY = b"\x0d" * 16, b"\x01" * 16, b"\x02" * 16
MiB = 1024 * 1024

# One GET's answer: a list of (code, body, app params) packets.
Answer = list[tuple[int, bytes, bytes]]


class ScriptedPhone:
    """A DLC whose far end answers each GET with the packets ``answer(request)`` returns."""

    def __init__(self, answer: Callable[[Packet], Answer]) -> None:
        self.sink: Callable[[bytes], None] | None = None
        self.answer = answer
        self.gets: list[AppParams] = []
        self._queue: Answer = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        request = decode_packet(data)
        if request.code == Opcode.CONNECT:
            ids = ((HeaderId.CONNECTION_ID, 1), (HeaderId.WHO, PBAP_TARGET))
            reply = Packet(ResponseCode.SUCCESS, ids, version=0x10, max_packet=0xFFFF)
            self._send(encode_packet(reply))
            return
        if request.code == Opcode.DISCONNECT:
            self._send(encode_packet(Packet(ResponseCode.SUCCESS)))
            return
        if request.get(HeaderId.NAME) is not None:  # a new GET (a bare one continues)
            self.gets.append(decode_app_params(request.app_params))
            self._queue = self.answer(request)
        code, body, params = self._queue.pop(0)
        headers: list[tuple[int, bytes]] = [(HeaderId.APP_PARAMS, params)] if params else []
        last = HeaderId.END_OF_BODY if code == ResponseCode.SUCCESS else HeaderId.BODY
        self._send(encode_packet(Packet(code, (*headers, (last, body)))))

    def _send(self, data: bytes) -> None:
        assert self.sink is not None
        self._loop.call_soon(self.sink, data)


class Events:
    """The engine's side of a pull, recording what it is told."""

    def __init__(self) -> None:
        self.pages: list[PulledPage] = []
        self.done: list[tuple[BookState | None, frozenset[str]]] = []
        self.calls: list[list[CallEntry]] = []

    def classic_book_state(self, phone_id: str) -> BookState | None:
        return None

    def classic_pull_skipped(self, phone_id: str, state: BookState) -> None:
        raise AssertionError("a first pull is never skipped")

    def classic_page(self, phone_id: str, page: PulledPage) -> None:
        self.pages.append(page)

    def classic_calls(self, phone_id: str, calls: list[CallEntry]) -> None:
        self.calls.append(calls)

    def classic_pull_done(
        self, phone_id: str, state: BookState | None, seen_uids: frozenset[str]
    ) -> None:
        self.done.append((state, seen_uids))


def book_params(size: int) -> bytes:
    return encode_app_params(
        AppParams(
            phonebook_size=size,
            primary_version_counter=PRIMARY,
            secondary_version_counter=SECONDARY,
            database_identifier=DB,
        )
    )


CARDS = [card("Owner", "+15550109999")] + [
    card(f"Person {i}", f"+1555010{i:04d}") for i in range(4)
]
CALL = (
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nTEL:+15550100001\r\n"
    b"X-IRMC-CALL-DATETIME;TYPE=RECEIVED:20261201T081500Z\r\nEND:VCARD\r\n"
)


def repeating_phone(request: Packet) -> Answer:
    """Every answer in two packets, each with PhonebookSize and the counters, as some phones
    send them: the first and the last packet of a response both carry them."""
    params = book_params(len(CARDS))
    name = str(request.get(HeaderId.NAME))
    asked = decode_app_params(request.app_params)
    if name.endswith("cch.vcf"):
        body = CALL
    elif asked.max_list_count == 0:
        body = b""
    else:
        start = asked.list_start_offset or 0
        body = b"".join(CARDS[start : start + (asked.max_list_count or 0)])
    half = len(body) // 2
    return [
        (ResponseCode.CONTINUE, body[:half], params),
        (ResponseCode.SUCCESS, body[half:], params),
    ]


async def channel(phone: ScriptedPhone) -> ObexChannel:
    obex = ObexChannel(phone, "A1:B2:C3:D4:E5:F6", timeout=2.0)
    await obex.connect(PBAP_TARGET, b"")
    return obex


async def test_a_phone_repeating_its_size_and_counters_in_the_last_packet_is_pulled() -> None:
    phone = ScriptedPhone(repeating_phone)
    obex = await channel(phone)
    events = Events()
    result = await pull_book(obex, cast(ClassicEvents, events), PID, page_size=2)
    assert result.outcome == "pulled" and result.cards == 4  # the owner card is not one
    [(state, seen)] = events.done
    assert state == BookState(DB, PRIMARY, SECONDARY, 5)
    assert len(seen) == 4
    assert [c.fn for p in events.pages if p.stage == "contacts" for c in p.contacts] == [
        f"Person {i}" for i in range(4)
    ]
    assert events.pages[0].owner == "Owner"
    assert [c.name for c in events.calls[0]] == ["Ann"]


async def test_the_last_value_of_a_repeated_parameter_wins() -> None:
    def answer(_request: Packet) -> Answer:
        return [
            (ResponseCode.CONTINUE, b"", book_params(7)),
            (ResponseCode.SUCCESS, b"", encode_app_params(AppParams(phonebook_size=9))),
        ]

    obex = await channel(ScriptedPhone(answer))
    _body, params = await obex.get(probe())
    assert params.phonebook_size == 9
    assert params.primary_version_counter == PRIMARY and params.database_identifier == DB


def test_each_get_has_a_body_bound_for_what_it_asks() -> None:
    assert body_bound(probe()) == MAX_PROBE_BODY == 64 * 1024
    calls = pull_phone_book("telecom/cch.vcf", max_count=100, selector=None)
    assert body_bound(calls) == MAX_CALLS_BYTES == MiB
    assert (
        body_bound(pull_phone_book(max_count=500, selector=NO_PHOTO)) == 500 * MAX_TEXT_CARD
    )  # 15.6 MiB
    assert body_bound(pull_phone_book(max_count=10, selector=NO_PHOTO)) == MiB
    assert body_bound(pull_phone_book(max_count=0xFFFF, selector=NO_PHOTO)) == DEFAULT_MAX_BODY
    assert body_bound(pull_phone_book(max_count=500, selector=PHOTO_ONLY)) == DEFAULT_MAX_BODY
    assert body_bound(pull_phone_book(max_count=500, selector=None)) == DEFAULT_MAX_BODY


def endless(chunk: bytes, params: bytes = b"") -> Callable[[Packet], Answer]:
    """A phone that answers with Continue after Continue, each with ``chunk``."""

    def answer(_request: Packet) -> Answer:
        return [(ResponseCode.CONTINUE, chunk, params)] * 100_000

    return answer


@pytest.mark.parametrize(
    ("request_", "over"),
    [
        (pull_phone_book("telecom/cch.vcf", max_count=100, selector=None), MiB),
        (pull_phone_book(max_count=500, selector=NO_PHOTO), 500 * MAX_TEXT_CARD),
    ],
    ids=["calls", "text page"],
)
async def test_a_body_over_its_gets_bound_ends_the_pull(request_: Any, over: int) -> None:
    phone = ScriptedPhone(endless(b"x" * 60_000))
    obex = await channel(phone)
    with pytest.raises(ClassicLinkError, match=rf"malformed OBEX.*body over {over} bytes"):
        await obex.get(request_)


async def test_a_phone_sending_huge_parameters_and_1_byte_bodies_is_cut_off() -> None:
    huge = encode_tlvs([(tag, b"p" * 255) for tag in range(0x20, 0xFF)])  # 65,021 B
    phone = ScriptedPhone(endless(b"x", huge))
    obex = await channel(phone)
    with pytest.raises(ClassicLinkError, match=r"malformed OBEX.*no body"):
        await obex.get(pull_phone_book(max_count=500, selector=PHOTO_ONLY))
    assert len(phone.gets) == 1
