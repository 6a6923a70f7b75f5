"""Typed messages and their compact binary encoding.

Every message is a ``msgspec.Struct`` subclass of ``Message`` with a small integer tag and
``array_like=True``: on the wire it is a msgpack array ``[tag, field1, field2, ...]``, so
field names never cross the wire. That is what keeps a contact near 60 bytes (see
``bench/``). Decoding validates the schema, so a message with a wrong type or a missing
field is a ``MessageError``, never a stray ``KeyError`` deep in a state machine.

Tag ranges (each feature module defines its messages in its own range):

    1-9    core        Hello, Error, Ping, Pong, Bye, Unpair      (this module)
    10-19  pairing     PairRequest ... PairResult                 (protocol.pairing)
    20-29  session     NoiseHandshake                             (protocol.session)
    30-39  contacts    ContactsState ... ContactsAck              (protocol.sync)
    40-49  media       NowPlaying, Artwork, MediaCommand, ...     (protocol.media)

Version negotiation refuses downgrades: each ``Hello`` lists every version its sender
speaks and the answer names the one selected. The initiator checks that the selection is
the highest common version, and both Hellos are bound into the pairing transcript and the
Noise prologue, so a man in the middle who strips versions breaks the handshake.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import zstandard

from protocol.errors import MessageError, Reason, VersionError

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "Bye",
    "Error",
    "Hello",
    "Message",
    "Ping",
    "Pong",
    "Unpair",
    "app_body",
    "decode",
    "decode_app",
    "encode",
    "encode_app",
    "negotiate_version",
    "register",
]

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)


class Message(msgspec.Struct, array_like=True):
    """Base of every protocol message. Subclasses pass ``tag=N`` and call ``register``."""


# 16 lower-case hex digits: also used as a file name on the phone, so nothing else passes.
DeviceId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{16}$")]


class Hello(Message, tag=1):
    """First message in each direction.

    ``intent`` is ``"pair"`` for first contact or ``"session"`` for a pinned reconnect.
    ``selected`` is 0 from the initiator and the chosen version in the reply.
    """

    versions: Annotated[list[int], msgspec.Meta(max_length=16)]
    role: Annotated[str, msgspec.Meta(max_length=8)]  # "car" | "phone"
    device_id: DeviceId
    name: Annotated[str, msgspec.Meta(max_length=128)]
    model: Annotated[str, msgspec.Meta(max_length=128)] = ""
    intent: Annotated[str, msgspec.Meta(max_length=8)] = "session"
    selected: int = 0


class Error(Message, tag=2):
    """The sender is closing the connection for ``reason`` (a ``Reason`` value)."""

    reason: Annotated[str, msgspec.Meta(max_length=64)]
    detail: Annotated[str, msgspec.Meta(max_length=256)] = ""


class Ping(Message, tag=3):
    """Keep-alive; answered with a ``Pong`` carrying the same ``nonce``."""

    nonce: int


class Pong(Message, tag=4):
    nonce: int


class Bye(Message, tag=5):
    """Orderly close; ``reason`` is informative."""

    reason: str = ""


class Unpair(Message, tag=6):
    """Phone -> car, over the secure session: forget me and erase my data, then ``Bye``."""


_TYPES: dict[int, type[Message]] = {}
_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Any] | None = None


def register(*types: type[Message]) -> None:
    """Make message types decodable. Feature modules call this at import time."""
    global _decoder
    for cls in types:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, int), cls
        if _TYPES.get(tag, cls) is not cls:
            raise ValueError(f"tag {tag} used by {_TYPES[tag].__name__} and {cls.__name__}")
        _TYPES[tag] = cls
    _decoder = None  # rebuilt on next decode with the wider union


register(Hello, Error, Ping, Pong, Bye, Unpair)


def encode(msg: Message) -> bytes:
    """Encode one message to msgpack bytes."""
    return _encoder.encode(msg)


def decode(data: bytes) -> Message:
    """Decode and validate one message.

    Raises:
        MessageError: the bytes are not a valid message of a registered type.
    """
    global _decoder
    if _decoder is None:
        union = tuple(_TYPES.values())
        _decoder = msgspec.msgpack.Decoder(union[0] if len(union) == 1 else _union(union))
    try:
        msg = _decoder.decode(data)
    # msgspec raises UnicodeDecodeError itself for a str field holding invalid UTF-8.
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise MessageError(Reason.MALFORMED, str(exc).splitlines()[0][:200]) from exc
    assert isinstance(msg, Message)
    return msg


# Application payloads inside the secure session start with one codec byte.
CODEC_RAW = 0x00
CODEC_ZSTD = 0x01
# Below this, compression costs more than it saves (a NowPlaying, an ack).
COMPRESS_MIN = 256
# A 1 MiB frame of contacts inflates ~3x; 8 MiB bounds a decompression bomb.
MAX_DECOMPRESSED = 8 << 20
_zc = zstandard.ZstdCompressor(level=3)
_zd = zstandard.ZstdDecompressor()


def encode_app(msg: Message) -> bytes:
    """Encode an application message for the secure session: codec byte + body.

    Bodies of ``COMPRESS_MIN`` bytes or more are zstd-compressed (level 3): contact
    batches shrink about 3x, which matters most over BLE.
    """
    raw = _encoder.encode(msg)
    if len(raw) >= COMPRESS_MIN:
        return bytes((CODEC_ZSTD,)) + _zc.compress(raw)
    return bytes((CODEC_RAW,)) + raw


def decode_app(data: bytes) -> Message:
    """Decode a session plaintext made by ``encode_app``.

    Raises:
        MessageError: unknown codec, a bad or oversized zstd frame, or a bad message.
    """
    return decode(app_body(data))


def app_body(data: bytes) -> bytes:
    """Return the message bytes of a session plaintext (decompressed when zstd).

    Raises:
        MessageError: empty, an unknown codec, or a bad or oversized zstd frame.
    """
    if not data:
        raise MessageError(Reason.MALFORMED, "empty application payload")
    codec, body = data[0], data[1:]
    if codec == CODEC_ZSTD:
        try:
            params = zstandard.get_frame_parameters(body)
            if not 0 < params.content_size <= MAX_DECOMPRESSED:
                raise MessageError(Reason.MALFORMED, "zstd frame without a sane content size")
            return _zd.decompress(body, max_output_size=MAX_DECOMPRESSED)
        except zstandard.ZstdError as exc:
            raise MessageError(Reason.MALFORMED, f"bad zstd frame: {exc}") from exc
    if codec != CODEC_RAW:
        raise MessageError(Reason.MALFORMED, f"unknown payload codec {codec}")
    return body


def _union(types: tuple[type[Message], ...]) -> Any:
    """Build ``Union[types]`` at run time for msgspec."""
    from typing import Union

    return Union[types]  # noqa: UP007 - a runtime tuple cannot use the | syntax


def negotiate_version(ours: list[int] | tuple[int, ...], theirs: list[int]) -> int:
    """Pick the highest version both sides speak.

    Raises:
        VersionError: there is none.
    """
    common = set(ours) & set(theirs)
    if not common:
        raise VersionError(Reason.NO_COMMON_VERSION, f"ours {list(ours)}, theirs {theirs}")
    return max(common)


def check_selected(ours: list[int] | tuple[int, ...], offered: list[int], selected: int) -> None:
    """Check the responder's selection is the best common version (no downgrade).

    Raises:
        VersionError: the selection is not the highest common version.
    """
    best = negotiate_version(ours, offered)
    if selected != best:
        raise VersionError(Reason.DOWNGRADE, f"peer selected v{selected}, best common v{best}")
