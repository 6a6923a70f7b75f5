"""OBEX (IrOBEX 1.5 as GOEP and PBAP use it), sans-I/O: packets, a decoder, two machines.

``packets`` encodes and decodes packets and headers and splits a byte stream into packets
(``ObexDecoder``); ``client`` is the car's side (``ObexClient``), ``server`` the emulated
phones' (``ObexServer``). Every decoder raises only ``ObexError`` on bad bytes, and every
length is bounded (PROTOCOL.md section 12.1). Single Response Mode is not used.
"""

from __future__ import annotations

from protocol.obex.client import (
    DEFAULT_MAX_BODY,
    MAX_EMPTY_CONTINUES,
    MAX_GET_PARAMS,
    Aborted,
    BodyChunk,
    ClientEvent,
    Connected,
    Disconnected,
    Failed,
    GetDone,
    ObexClient,
    PathSet,
)
from protocol.obex.packets import (
    MAX_PACKET,
    MIN_PACKET,
    OBEX_VERSION,
    Header,
    HeaderId,
    HeaderValue,
    ObexDecoder,
    ObexError,
    Opcode,
    Packet,
    ResponseCode,
    decode_app_params,
    decode_packet,
    encode_app_params,
    encode_packet,
)
from protocol.obex.server import (
    ClientAborted,
    ClientConnected,
    ClientDisconnected,
    GetRequest,
    ObexServer,
    ServerEvent,
    SetPathRequest,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_EMPTY_CONTINUES",
    "MAX_GET_PARAMS",
    "MAX_PACKET",
    "MIN_PACKET",
    "OBEX_VERSION",
    "Aborted",
    "BodyChunk",
    "ClientAborted",
    "ClientConnected",
    "ClientDisconnected",
    "ClientEvent",
    "Connected",
    "Disconnected",
    "Failed",
    "GetDone",
    "GetRequest",
    "Header",
    "HeaderId",
    "HeaderValue",
    "ObexClient",
    "ObexDecoder",
    "ObexError",
    "ObexServer",
    "Opcode",
    "Packet",
    "PathSet",
    "ResponseCode",
    "ServerEvent",
    "SetPathRequest",
    "decode_app_params",
    "decode_packet",
    "encode_app_params",
    "encode_packet",
]
