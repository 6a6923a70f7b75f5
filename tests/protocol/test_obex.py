"""OBEX packets, the stream decoder, and the client and server state machines."""

from __future__ import annotations

import uuid

import pytest

from protocol.errors import LocalProtocolError, MessageError, Reason
from protocol.obex import (
    Aborted,
    BodyChunk,
    ClientAborted,
    ClientConnected,
    ClientDisconnected,
    Connected,
    Disconnected,
    Failed,
    GetDone,
    GetRequest,
    HeaderId,
    ObexClient,
    ObexDecoder,
    ObexError,
    ObexServer,
    Opcode,
    Packet,
    PathSet,
    ResponseCode,
    SetPathRequest,
    decode_app_params,
    decode_packet,
    encode_app_params,
    encode_packet,
)

PBAP = uuid.UUID("796135f0-f0c5-11d8-0966-0800200c9a66").bytes


def pair(client_max: int = 0xFFFF, server_max: int = 0xFFFF) -> tuple[ObexClient, ObexServer]:
    client, server = ObexClient(max_packet=client_max), ObexServer(PBAP, max_packet=server_max)
    server.receive_data(client.connect(PBAP))
    assert client.receive_data(server.data_to_send()) == [Connected(1, server_max, b"")]
    return client, server


def pull(client: ObexClient, server: ObexServer, body: bytes, params: bytes = b"") -> list[object]:
    """Run one GET between the two machines, byte by byte; the client's events."""
    assert server.receive_data(client.get("telecom/pb.vcf", "x-bt/phonebook")) != []
    server.respond_get(body, params)
    events: list[object] = []
    while out := server.data_to_send():
        assert len(out) <= client.max_packet
        for i in range(len(out)):
            events += client.receive_data(out[i : i + 1])
        server.receive_data(client.data_to_send())
    return events


# -- packets and the decoder --------------------------------------------------------------


def test_every_header_kind_round_trips() -> None:
    packet = Packet(
        Opcode.PUT_FINAL,
        (
            (HeaderId.CONNECTION_ID, 7),
            (HeaderId.NAME, "Zoë 😀"),
            (HeaderId.TYPE, "text/x-vcard"),
            (HeaderId.LENGTH, 0xFFFFFFFF),
            (0x97, 0x42),  # a one-byte header we do not know
            (HeaderId.BODY, b"\x00\x01"),
        ),
    )
    assert decode_packet(encode_packet(packet)) == packet
    assert decode_packet(encode_packet(Packet(Opcode.SETPATH, ((1, ""),), flags=3, constants=0)))


def test_wrong_header_values_are_our_bug() -> None:
    for header in [(HeaderId.NAME, b"x"), (HeaderId.CONNECTION_ID, 1 << 32), (HeaderId.TYPE, "é")]:
        with pytest.raises(LocalProtocolError):
            encode_packet(Packet(Opcode.GET, (header,)))
    with pytest.raises(LocalProtocolError):
        encode_packet(Packet(Opcode.PUT, ((HeaderId.BODY, bytes(70000)),)))


def test_decoder_accepts_any_split() -> None:
    stream = b"".join(
        encode_packet(Packet(0x90, ((HeaderId.BODY, bytes([i]) * (i * 40)),))) for i in range(5)
    )
    whole = ObexDecoder().feed(stream)
    assert [p.body for p in whole] == [bytes([i]) * (i * 40) for i in range(5)]
    for step in (1, 2, 7, 100):
        dec, got = ObexDecoder(), []
        for i in range(0, len(stream), step):
            got += dec.feed(stream[i : i + step])
        assert got == whole


@pytest.mark.parametrize(
    "raw",
    [
        bytes.fromhex("a00002"),  # length under 3
        bytes.fromhex("a000064800"),  # a header length of 0
        bytes.fromhex("a000064800ff"),  # header length 255 in a 6-byte packet
        bytes.fromhex("a00006480002"),  # header length 2
        bytes.fromhex("a00004cb"),  # a 4-byte header cut short
        bytes.fromhex("80000510"),  # CONNECT shorter than its fields
        bytes.fromhex("850004"),  # SETPATH shorter than its fields
        bytes.fromhex("8300080100050041"),  # Name without its NUL
        bytes.fromhex("83000a010007d8000000"),  # a lone surrogate
        bytes.fromhex("83000742000478"),  # Type without its NUL
    ],
)
def test_decoder_refuses_bad_lengths_and_text(raw: bytes) -> None:
    dec = ObexDecoder()
    with pytest.raises(ObexError) as info:
        dec.feed(raw + bytes(8))  # padding completes any packet that claims more
    assert isinstance(info.value, MessageError)
    with pytest.raises(ObexError):  # the stream stays failed
        dec.feed(b"")


def test_decoder_refuses_a_packet_over_its_max_before_buffering_it() -> None:
    dec = ObexDecoder(max_packet=300)
    with pytest.raises(ObexError) as info:
        dec.feed(bytes.fromhex("90012d"))  # only the head of a 301-byte packet
    assert info.value.reason is Reason.FRAME_TOO_LARGE


def test_app_params() -> None:
    data = encode_app_params([(0x04, b"\x00\x64"), (0x10, b"")])
    assert decode_app_params(data) == [(0x04, b"\x00\x64"), (0x10, b"")]
    with pytest.raises(ObexError):
        decode_app_params(b"\x04\x03\x00")
    with pytest.raises(LocalProtocolError):
        encode_app_params([(0x04, bytes(256))])


# -- the client ---------------------------------------------------------------------------


def test_client_refuses_invalid_transitions() -> None:
    client = ObexClient()
    for call in (lambda: client.get("x", None), client.disconnect, client.abort, client.setpath):
        with pytest.raises(LocalProtocolError):
            call()
    client.connect(PBAP)
    with pytest.raises(LocalProtocolError):
        client.connect(PBAP)
    with pytest.raises(LocalProtocolError):
        ObexClient(max_packet=100)


def test_client_connect_refused_then_retried() -> None:
    client = ObexClient()
    client.connect(PBAP)
    assert client.receive_data(bytes.fromhex("d30003")) == [Failed(0xD3, Opcode.CONNECT)]
    assert client.state == "idle"
    client.connect(PBAP)
    assert client.receive_data(bytes.fromhex("d300071000ffff")) == [Failed(0xD3, Opcode.CONNECT)]


@pytest.mark.parametrize(
    "response",
    [
        "a000071000007f",  # the phone's max packet under 255
        "a0001a1000ffff4a0013" + "00" * 16,  # Who names another service
        "90000710000400",  # Continue to a CONNECT
    ],
)
def test_client_refuses_bad_connect_responses(response: str) -> None:
    client = ObexClient()
    client.connect(PBAP)
    with pytest.raises(ObexError):
        client.receive_data(bytes.fromhex(response))
    assert client.state == "closed"


def test_client_pulls_a_big_body_in_small_packets() -> None:
    client, server = pair(client_max=255)
    body = bytes(range(256)) * 400
    events = pull(client, server, body, encode_app_params([(0x08, b"\x01\x00")]))
    assert b"".join(e.data for e in events if isinstance(e, BodyChunk)) == body
    assert events[-1] == GetDone(bytes.fromhex("08020100"))
    assert client.state == "connected" and server.state == "connected"


def test_client_gathers_app_params_of_every_response() -> None:
    client, _ = pair()
    client.get("telecom/pb.vcf", "x-bt/phonebook")
    assert client.receive_data(bytes.fromhex("90000a4c000708020064")) == []
    assert client.data_to_send() == bytes.fromhex("830008cb00000001")
    assert client.receive_data(bytes.fromhex("a0000d4c000709020001490003")) == [
        GetDone(bytes.fromhex("0802006409020001"))
    ]


def test_client_refuses_a_body_over_its_bound() -> None:
    client, server = ObexClient(max_body=1000), ObexServer(PBAP)
    server.receive_data(client.connect(PBAP))
    client.receive_data(server.data_to_send())
    server.receive_data(client.get("x", None))
    server.respond_get(bytes(1001))
    with pytest.raises(ObexError) as info:
        client.receive_data(server.data_to_send())
    assert info.value.reason is Reason.FRAME_TOO_LARGE


def test_client_refuses_a_response_that_never_ends() -> None:
    client, _ = pair()
    client.get("x", None)
    with pytest.raises(ObexError):
        for _ in range(100):
            client.receive_data(bytes.fromhex("900003"))


def test_client_get_error_keeps_the_connection() -> None:
    client, _ = pair()
    client.get("telecom/nothing.vcf", "x-bt/phonebook")
    assert client.receive_data(bytes.fromhex("c40003")) == [Failed(0xC4, Opcode.GET_FINAL)]
    assert client.state == "connected"


def test_client_refuses_a_request_longer_than_the_phone_accepts() -> None:
    client = ObexClient()
    client.connect(PBAP)
    client.receive_data(bytes.fromhex("a00007100000ff"))
    with pytest.raises(LocalProtocolError):
        client.get("x" * 200, "x-bt/phonebook")


def test_client_refuses_unexpected_responses() -> None:
    client, _ = pair()
    with pytest.raises(ObexError):
        client.receive_data(bytes.fromhex("a00003"))  # nothing was asked
    client, _ = pair()
    client.setpath("telecom")
    with pytest.raises(ObexError):
        client.receive_data(bytes.fromhex("900003"))


def test_client_setpath_and_disconnect() -> None:
    client, server = pair()
    assert client.setpath("telecom") == bytes.fromhex("85001d" + "0200cb00000001" + "010013") + (
        "telecom\0".encode("utf-16-be")
    )
    assert client.receive_data(bytes.fromhex("a00003")) == [PathSet()]
    assert decode_packet(client.setpath(parent=True)).flags == 0x03
    client.receive_data(bytes.fromhex("a00003"))
    assert decode_packet(client.setpath("")).name == ""
    client.receive_data(bytes.fromhex("a00003"))
    assert server.receive_data(client.disconnect()) == [ClientDisconnected()]
    assert client.receive_data(server.data_to_send()) == [Disconnected()]
    assert client.state == "closed"


def test_client_abort_in_place_of_the_next_get() -> None:
    client, server = pair(client_max=255)
    server.receive_data(client.get("telecom/pb.vcf", "x-bt/phonebook"))
    server.respond_get(bytes(2000))
    client.receive_data(server.data_to_send())
    abort = client.abort()
    assert abort[0] == Opcode.ABORT and client.data_to_send() == b""
    assert server.receive_data(abort) == [ClientAborted()]
    assert client.receive_data(server.data_to_send()) == [Aborted()]
    assert client.state == "connected"


def test_client_abort_waits_for_the_outstanding_get() -> None:
    client, server = pair(client_max=255)
    server.receive_data(client.get("telecom/pb.vcf", "x-bt/phonebook"))
    assert client.abort() == b""
    server.respond_get(bytes(2000))
    client.receive_data(server.data_to_send())
    abort = client.data_to_send()
    assert abort[0] == Opcode.ABORT
    server.receive_data(abort)
    assert client.receive_data(server.data_to_send()) == [Aborted()]


# -- the server ---------------------------------------------------------------------------


def test_server_refuses_another_target() -> None:
    server = ObexServer(PBAP)
    assert server.receive_data(ObexClient().connect(b"\x00" * 16)) == []
    reply = decode_packet(server.data_to_send(), connect_fields=True)
    assert reply.code == ResponseCode.SERVICE_UNAVAILABLE and server.state == "idle"


def test_server_gives_connection_id_and_who() -> None:
    server = ObexServer(PBAP, connection_id=9, max_packet=1000)
    events = server.receive_data(ObexClient(max_packet=300).connect(PBAP, b"\x10\x00"))
    assert events == [ClientConnected(300, b"\x10\x00")]
    reply = decode_packet(server.data_to_send(), connect_fields=True)
    assert (reply.code, reply.connection_id, reply.who, reply.max_packet) == (0xA0, 9, PBAP, 1000)
    with pytest.raises(ObexError):  # a packet over the 1000 bytes it announced
        server.receive_data(encode_packet(Packet(Opcode.PUT, ((HeaderId.BODY, bytes(1000)),))))


def test_server_splits_a_body_to_the_clients_max_packet() -> None:
    client, server = pair(client_max=255)
    server.receive_data(client.get("x", None))
    server.respond_get(bytes(1000))
    packets = []
    while out := server.data_to_send():
        packets.append(decode_packet(out))
        assert len(out) <= 255
        server.receive_data(encode_packet(Packet(Opcode.GET_FINAL)))
    assert [p.code for p in packets] == [0x90] * 4 + [0xA0]
    assert all(not p.end_of_body for p in packets[:-1]) and packets[-1].end_of_body
    assert b"".join(p.body for p in packets) == bytes(1000)


def test_server_empty_body_is_one_success() -> None:
    client, server = pair()
    assert pull(client, server, b"") == [GetDone(b"")]


def test_server_answers_requests_it_cannot_serve() -> None:
    server = ObexServer(PBAP)
    server.receive_data(encode_packet(Packet(Opcode.GET_FINAL)))
    assert server.data_to_send()[0] == ResponseCode.BAD_REQUEST  # before CONNECT
    client, server = pair()
    server.receive_data(encode_packet(Packet(Opcode.PUT_FINAL)))
    assert server.data_to_send()[0] == ResponseCode.NOT_IMPLEMENTED
    server.receive_data(encode_packet(Packet(Opcode.GET_FINAL, ((HeaderId.CONNECTION_ID, 2),))))
    assert server.data_to_send()[0] == ResponseCode.SERVICE_UNAVAILABLE
    server.receive_data(client.get("telecom/pb.vcf", "x-bt/phonebook"))
    server.respond(ResponseCode.NOT_FOUND)
    assert client.receive_data(server.data_to_send()) == [Failed(0xC4, Opcode.GET_FINAL)]
    with pytest.raises(LocalProtocolError):
        server.respond(ResponseCode.SUCCESS)


def test_server_collects_a_get_over_several_packets() -> None:
    _, server = pair()
    server.receive_data(encode_packet(Packet(Opcode.GET, ((HeaderId.NAME, "pb.vcf"),))))
    assert server.data_to_send() == bytes.fromhex("900003")
    events = server.receive_data(
        encode_packet(Packet(Opcode.GET_FINAL, ((HeaderId.TYPE, "x-bt/phonebook"),)))
    )
    assert events == [GetRequest("pb.vcf", "x-bt/phonebook", b"")]


def test_server_setpath_and_a_request_while_one_waits() -> None:
    client, server = pair()
    assert server.receive_data(client.setpath("telecom")) == [
        SetPathRequest("telecom", False, False)
    ]
    with pytest.raises(ObexError):
        server.receive_data(encode_packet(Packet(Opcode.GET_FINAL)))
    assert server.state == "closed"
