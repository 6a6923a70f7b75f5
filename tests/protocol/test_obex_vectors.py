"""The OBEX hex test vectors of PROTOCOL.md section 12.1, checked both ways.

Every value printed in the document is parsed from it (not repeated here): the client and
the server must produce exactly those bytes from the inputs the text names, and decoding
them must give those inputs back.
"""

from __future__ import annotations

import uuid

from protocol.obex import (
    BodyChunk,
    ClientConnected,
    Connected,
    GetDone,
    GetRequest,
    HeaderId,
    ObexClient,
    ObexServer,
    Opcode,
    Packet,
    ResponseCode,
    decode_app_params,
    decode_packet,
    encode_app_params,
    encode_packet,
)
from tests.protocol.helpers import spec_vectors

PBAP = uuid.UUID("796135f0-f0c5-11d8-0966-0800200c9a66").bytes
FEATURES = encode_app_params([(0x10, (0x3FF).to_bytes(4, "big"))])
PAGE = encode_app_params([(0x04, (100).to_bytes(2, "big")), (0x05, (0).to_bytes(2, "big"))])
PART1 = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice\r\n"
PART2 = b"TEL:+15551234\r\nEND:VCARD\r\n"




V = spec_vectors("obex")


def test_the_section_prints_every_vector() -> None:
    assert set(V) == {
        "obex.connect",
        "obex.connect_response",
        "obex.get_pb",
        "obex.get_continue",
        "obex.get_next",
        "obex.get_success",
        "obex.disconnect",
    }


def test_connect_both_ways() -> None:
    client, server = ObexClient(), ObexServer(PBAP)
    assert client.connect(PBAP, FEATURES) == V["obex.connect"]
    req = decode_packet(V["obex.connect"])
    assert (req.code, req.version, req.max_packet, req.target) == (0x80, 0x10, 0xFFFF, PBAP)
    assert decode_app_params(req.app_params) == [(0x10, b"\x00\x00\x03\xff")]
    assert server.receive_data(V["obex.connect"]) == [ClientConnected(0xFFFF, FEATURES)]
    assert server.data_to_send() == V["obex.connect_response"]
    resp = decode_packet(V["obex.connect_response"], connect_fields=True)
    assert (resp.code, resp.connection_id, resp.who, resp.max_packet) == (0xA0, 1, PBAP, 0xFFFF)
    assert client.receive_data(V["obex.connect_response"]) == [Connected(1, 0xFFFF, b"")]


def test_get_pb_both_ways() -> None:
    client, server = ObexClient(), ObexServer(PBAP)
    server.receive_data(client.connect(PBAP, FEATURES))
    client.receive_data(server.data_to_send())
    assert client.get("telecom/pb.vcf", "x-bt/phonebook", PAGE) == V["obex.get_pb"]
    req = decode_packet(V["obex.get_pb"])
    assert (req.code, req.connection_id, req.name, req.type) == (
        Opcode.GET_FINAL,
        1,
        "telecom/pb.vcf",
        "x-bt/phonebook",
    )
    assert decode_app_params(req.app_params) == [(0x04, b"\x00\x64"), (0x05, b"\x00\x00")]
    assert server.receive_data(V["obex.get_pb"]) == [
        GetRequest("telecom/pb.vcf", "x-bt/phonebook", PAGE)
    ]


def test_get_responses_both_ways() -> None:
    client, server = ObexClient(), ObexServer(PBAP)
    server.receive_data(client.connect(PBAP, FEATURES))
    client.receive_data(server.data_to_send())
    client.get("telecom/pb.vcf", "x-bt/phonebook", PAGE)
    cont = Packet(ResponseCode.CONTINUE, ((HeaderId.BODY, PART1),))
    done = Packet(ResponseCode.SUCCESS, ((HeaderId.END_OF_BODY, PART2),))
    assert encode_packet(cont) == V["obex.get_continue"]
    assert encode_packet(done) == V["obex.get_success"]
    assert decode_packet(V["obex.get_continue"]) == cont
    assert decode_packet(V["obex.get_success"]) == done
    assert client.receive_data(V["obex.get_continue"]) == [BodyChunk(PART1)]
    assert client.data_to_send() == V["obex.get_next"]
    assert decode_packet(V["obex.get_next"]) == Packet(
        Opcode.GET_FINAL, ((HeaderId.CONNECTION_ID, 1),)
    )
    assert client.receive_data(V["obex.get_success"]) == [BodyChunk(PART2), GetDone(b"")]
    assert client.disconnect() == V["obex.disconnect"]
    assert decode_packet(V["obex.disconnect"]).connection_id == 1
