"""Hypothesis fuzzing of OBEX: bad bytes raise ObexError only, in bounded time and memory.

The car decodes whatever a phone (or anything claiming to be one) sends over RFCOMM; a
decoder or machine that raised anything else, hung, or buffered without bound would crash
or stall the car. Sizes are kept small so the whole file runs in a few seconds.
"""

from __future__ import annotations

import itertools
import struct
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.obex import (
    HeaderId,
    ObexClient,
    ObexDecoder,
    ObexError,
    ObexServer,
    Opcode,
    Packet,
    decode_packet,
    encode_packet,
)

PBAP = uuid.UUID("796135f0-f0c5-11d8-0966-0800200c9a66").bytes
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# Mostly well-framed packets with random insides, so the fuzzing reaches the headers.
def _framed(code: int, body: bytes) -> bytes:
    return struct.pack(">BH", code, len(body) + 3) + body


packets = st.builds(_framed, st.integers(0, 255), st.binary(max_size=40))
streams = st.one_of(st.binary(max_size=200), st.lists(packets, max_size=6).map(b"".join))
header_values = st.one_of(
    st.tuples(st.sampled_from([0x01, 0x30]), st.text(max_size=10)),
    st.tuples(st.sampled_from([0x42]), st.text("abc/-", max_size=10)),
    st.tuples(st.sampled_from([0x46, 0x48, 0x49, 0x4C, 0x70]), st.binary(max_size=30)),
    st.tuples(st.sampled_from([0x93, 0xBF]), st.integers(0, 255)),
    st.tuples(st.sampled_from([0xC3, 0xCB]), st.integers(0, 2**32 - 1)),
)


@FAST
@given(streams, st.lists(st.integers(0, 300), max_size=8), st.integers(3, 0xFFFF))
def test_decoder_raises_only_obex_error_on_any_split(
    data: bytes, cuts: list[int], limit: int
) -> None:
    dec = ObexDecoder(max_packet=limit)
    try:
        for part in splits(data, cuts):
            dec.feed(part)
            assert len(dec._buf) < max(limit, 3)  # never more than one packet waits
    except ObexError:
        pass


@FAST
@given(st.lists(st.tuples(st.integers(0, 255), st.lists(header_values, max_size=4)), max_size=4),
       st.lists(st.integers(0, 400), max_size=8))  # fmt: skip
def test_well_formed_packets_decode_the_same_in_any_split(
    spec: list[tuple[int, list[tuple[int, str | bytes | int]]]], cuts: list[int]
) -> None:
    sent = [Packet(code, tuple(h)) for code, h in spec if code not in (Opcode.CONNECT, 0x85)]
    stream = b"".join(encode_packet(p) for p in sent)
    dec, got = ObexDecoder(), []
    for part in splits(stream, cuts):
        got += dec.feed(part)
    assert got == sent
    assert [decode_packet(encode_packet(p)) for p in sent] == sent


def _connected_client() -> ObexClient:
    client = ObexClient(max_body=4096)
    client.connect(PBAP)
    client.receive_data(bytes.fromhex("a0000c1000ffffcb00000001"))
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    return client


@FAST
@given(streams, st.lists(st.integers(0, 300), max_size=8), st.booleans())
def test_client_fed_anything_raises_only_obex_error(
    data: bytes, cuts: list[int], connected: bool
) -> None:
    client = _connected_client() if connected else ObexClient(max_body=4096)
    if not connected:
        client.connect(PBAP)
    try:
        for part in splits(data, cuts):
            client.receive_data(part)
            assert len(client.data_to_send()) <= 8  # at most one bare GET or ABORT per answer
    except ObexError:
        assert client.state == "closed"


@FAST
@given(streams, st.lists(st.integers(0, 300), max_size=8), st.booleans())
def test_server_fed_anything_raises_only_obex_error(
    data: bytes, cuts: list[int], connected: bool
) -> None:
    server = ObexServer(PBAP)
    if connected:
        server.receive_data(ObexClient().connect(PBAP))
        server.data_to_send()
    prefix = encode_packet(Packet(Opcode.GET, ((HeaderId.NAME, "x"),)))
    try:
        for part in splits(prefix + data, cuts):
            server.receive_data(part)
            if server.state == "answer":
                server.respond_get(bytes(600))
            server.data_to_send()
    except ObexError:
        assert server.state == "closed"
