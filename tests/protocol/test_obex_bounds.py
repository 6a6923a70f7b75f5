"""The OBEX client's bounds on one GET's answer: body per GET, Application Parameters."""

from __future__ import annotations

import uuid

import pytest

from protocol.errors import Reason
from protocol.obex import (
    MAX_EMPTY_CONTINUES,
    MAX_GET_PARAMS,
    BodyChunk,
    GetDone,
    HeaderId,
    ObexClient,
    ObexError,
    ObexServer,
    Packet,
    ResponseCode,
    decode_app_params,
    encode_app_params,
    encode_packet,
)

PBAP = uuid.UUID("796135f0-f0c5-11d8-0966-0800200c9a66").bytes


def connected(max_body: int | None = None) -> ObexClient:
    client = ObexClient() if max_body is None else ObexClient(max_body=max_body)
    server = ObexServer(PBAP)
    server.receive_data(client.connect(PBAP))
    client.receive_data(server.data_to_send())
    assert client.state == "connected"
    return client


def response(code: int, body: bytes = b"", params: bytes = b"") -> bytes:
    """A GET response packet: Application Parameters then Body (End of Body for Success)."""
    headers: list[tuple[int, bytes]] = []
    if params:
        headers.append((HeaderId.APP_PARAMS, params))
    body_id = HeaderId.END_OF_BODY if code == ResponseCode.SUCCESS else HeaderId.BODY
    headers.append((body_id, body))
    return encode_packet(Packet(code, tuple(headers)))


def tlvs(tags: range, size: int = 255) -> bytes:
    return encode_app_params([(tag, bytes([tag]) * size) for tag in tags])


def test_a_phone_sending_huge_parameters_with_1_byte_bodies_is_refused_soon() -> None:
    # The reported attack: each Continue carries ~65,000 B of parameters and a 1-byte body.
    client = connected()
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    packet = response(ResponseCode.CONTINUE, b"x", tlvs(range(1, 254)))
    assert len(packet) > 65_000
    sent = 0
    with pytest.raises(ObexError, match="no body"):
        while sent < 10_000:
            client.receive_data(packet)
            client.data_to_send()
            sent += 1
    assert sent == MAX_EMPTY_CONTINUES  # about 4 MiB on the air, nothing kept
    assert client.state == "closed"


def test_parameters_over_64_kib_once_merged_are_frame_too_large() -> None:
    client = connected()
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    with pytest.raises(ObexError) as caught:
        for first in range(0, 256, 16):  # 16 new tags of 255 B per packet, 1,000 B of body
            client.receive_data(
                response(ResponseCode.CONTINUE, b"v" * 1000, tlvs(range(first, first + 16)))
            )
            client.data_to_send()
    assert caught.value.reason is Reason.FRAME_TOO_LARGE
    assert "application parameters" in str(caught.value)
    assert first == 240  # refused only once 256 tags of 255 B (65,792 B) were gathered
    assert MAX_GET_PARAMS == 64 * 1024


def test_a_tag_repeated_in_later_packets_is_merged_and_the_last_value_wins() -> None:
    client = connected()
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    size_100 = encode_app_params([(0x08, b"\x00\x64")])
    counters = encode_app_params([(0x0A, b"\x01" * 16), (0x08, b"\x00\x65")])
    events: list[object] = []
    for _ in range(3):
        events += client.receive_data(response(ResponseCode.CONTINUE, b"card", size_100))
        client.data_to_send()
    events += client.receive_data(response(ResponseCode.SUCCESS, b"end", counters))
    done = events[-1]
    assert isinstance(done, GetDone)
    assert decode_app_params(done.app_params) == [(0x08, b"\x00\x65"), (0x0A, b"\x01" * 16)]
    assert b"".join(e.data for e in events if isinstance(e, BodyChunk)) == b"cardcardcardend"


def test_a_phone_repeating_its_parameters_in_every_packet_is_pulled_whole() -> None:
    # A long answer in small packets, each with PhonebookSize and both counters: about
    # 120 KiB of parameters in all, but never more than 40 B once merged.
    client = connected()
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    params = encode_app_params([(0x08, b"\x07\xd0"), (0x0A, b"\x01" * 16), (0x0B, b"\x02" * 16)])
    events: list[object] = []
    for _ in range(3000):
        events += client.receive_data(response(ResponseCode.CONTINUE, b"b" * 200, params))
        client.data_to_send()
    events += client.receive_data(response(ResponseCode.SUCCESS, b"", params))
    assert sum(len(e.data) for e in events if isinstance(e, BodyChunk)) == 600_000
    assert events[-1] == GetDone(params)


def test_a_tag_twice_in_one_packet_is_malformed() -> None:
    client = connected()
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    twice = encode_app_params([(0x08, b"\x00\x01"), (0x08, b"\x00\x02")])
    with pytest.raises(ObexError, match="twice"):
        client.receive_data(response(ResponseCode.SUCCESS, b"", twice))
    assert client.state == "closed"


def test_parameters_cut_short_are_malformed() -> None:
    client = connected()
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    with pytest.raises(ObexError) as caught:
        client.receive_data(response(ResponseCode.CONTINUE, b"x", b"\x08\x05\x00"))
    assert caught.value.reason is Reason.MALFORMED


def test_a_get_may_have_a_smaller_body_bound_than_the_client() -> None:
    client = connected()
    client.get("telecom/cch.vcf", "x-bt/phonebook", max_body=1000)
    client.receive_data(response(ResponseCode.CONTINUE, b"c" * 600))
    client.data_to_send()
    with pytest.raises(ObexError) as caught:
        client.receive_data(response(ResponseCode.SUCCESS, b"c" * 401))
    assert caught.value.reason is Reason.FRAME_TOO_LARGE
    assert "1000" in str(caught.value)


def test_the_per_get_bound_applies_to_that_get_only_and_never_raises_the_clients() -> None:
    client = connected(max_body=2000)
    client.get("a", None, max_body=100)
    assert client.receive_data(response(ResponseCode.SUCCESS, b"c" * 100)) == [
        BodyChunk(b"c" * 100),
        GetDone(b""),
    ]
    client.get("b", None)  # the client's bound again
    assert client.receive_data(response(ResponseCode.SUCCESS, b"c" * 2000))[-1] == GetDone(b"")
    client.get("c", None, max_body=10**9)  # larger than the client's: the client's holds
    with pytest.raises(ObexError, match="2000"):
        client.receive_data(response(ResponseCode.SUCCESS, b"c" * 2001))
