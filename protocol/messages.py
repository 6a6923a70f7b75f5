"""Typed messages and their compact binary encoding.

Every message is a ``msgspec.Struct`` subclass of ``Message`` with a small integer tag and
``array_like=True``: on the wire it is a msgpack array ``[tag, field1, field2, ...]``, so
field names never cross the wire. That, and the session's zstd stream (``AppCodec``),
keeps a contact under 50 bytes (see ``bench/``). Decoding validates the schema, so a
message with a wrong type or a missing field is a ``MessageError``, never a stray
``KeyError`` deep in a state machine.

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

from protocol.errors import LocalProtocolError, MessageError, Reason, VersionError

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "VERSIONS_ENV",
    "AppCodec",
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
    "parse_versions",
    "register",
]

PROTOCOL_VERSION = 2
# Every version this implementation speaks, newest first; 2 keeps a zstd stream per session
# direction (``AppCodec``), 1 compresses each message on its own.
SUPPORTED_VERSIONS: tuple[int, ...] = (2, 1)


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
# Version 2: a piece of the direction's zstd stream, and a piece that ends its frame.
CODEC_STREAM = 0x02
CODEC_STREAM_END = 0x03
# Below this, compression costs more than it saves (a NowPlaying, an ack).
COMPRESS_MIN = 256
# A 1 MiB frame of contacts inflates ~3x; 8 MiB bounds a decompression bomb.
MAX_DECOMPRESSED = 8 << 20
# The stream's window (version 2): later batches of a sync find their field names, phone
# prefixes and domains in the last 512 KiB, ~18% fewer bytes than a frame per message. It
# is what a receiver holds per session (~0.8 MiB), so a bigger one is malformed.
STREAM_WINDOW_LOG = 19
# The stream is inflated this many bytes of input at a time, so a piece can overshoot the
# bound by at most 64 maximal (4-byte RLE, 128 KiB) blocks before it is refused.
_INFLATE_STEP = 256
_zc = zstandard.ZstdCompressor(level=3)
_zd = zstandard.ZstdDecompressor()
# Level 3 with min_match 6 (instead of 5): as fast, and ~1.5% smaller on contact batches.
_STREAM_PARAMS = zstandard.ZstdCompressionParameters.from_level(
    3, window_log=STREAM_WINDOW_LOG, min_match=6
)


def encode_app(msg: Message) -> bytes:
    """Encode an application message for a version-1 session: codec byte + body.

    Bodies of ``COMPRESS_MIN`` bytes or more are zstd-compressed (level 3): contact
    batches shrink about 3x, which matters most over BLE.
    """
    raw = _encoder.encode(msg)
    if len(raw) >= COMPRESS_MIN:
        return bytes((CODEC_ZSTD,)) + _zc.compress(raw)
    return bytes((CODEC_RAW,)) + raw


def decode_app(data: bytes) -> Message:
    """Decode a version-1 session plaintext made by ``encode_app``.

    Raises:
        MessageError: unknown codec, a bad or oversized zstd frame, or a bad message.
    """
    return decode(app_body(data))


def app_body(data: bytes) -> bytes:
    """Return the message bytes of a version-1 session plaintext (decompressed when zstd).

    Raises:
        MessageError: empty, an unknown codec, or a bad or oversized zstd frame.
    """
    if not data:
        raise MessageError(Reason.MALFORMED, "empty application payload")
    codec, body = data[0], data[1:]
    if codec == CODEC_ZSTD:
        return _inflate_frame(body)
    if codec != CODEC_RAW:
        raise MessageError(Reason.MALFORMED, f"unknown payload codec {codec}")
    return body


def _inflate_frame(body: bytes) -> bytes:
    """Decompress one whole zstd frame whose header states a sane content size.

    Raises:
        MessageError: a bad frame, or no content size, or one over ``MAX_DECOMPRESSED``.
    """
    try:
        params = zstandard.get_frame_parameters(body)
        if not 0 < params.content_size <= MAX_DECOMPRESSED:
            raise MessageError(Reason.MALFORMED, "zstd frame without a sane content size")
        return _zd.decompress(body, max_output_size=MAX_DECOMPRESSED)
    except zstandard.ZstdError as exc:
        raise MessageError(Reason.MALFORMED, f"bad zstd frame: {exc}") from exc


class AppCodec:
    """One side's application-payload codec for one secure session (PROTOCOL.md §3).

    Version 1 is ``encode_app``/``app_body``: a zstd frame per message. Version 2 keeps one
    zstd stream per direction: each compressed message is a block-flushed piece of it, so
    a batch is compressed against the batches before it. The session is ordered and
    reliable per direction, so the receiver's stream always matches the sender's; a
    reconnect is a new session with new ``AppCodec``s. Both streams are made at the first
    message that needs them and dropped when a piece ends the frame (``end``), so an idle
    session holds no compression memory.

    Args:
        version: the negotiated protocol version.

    Raises:
        LocalProtocolError: a version this codec does not speak.
    """

    def __init__(self, version: int) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise LocalProtocolError(Reason.STATE, f"no codec for protocol version {version}")
        self.version = version
        self._tx: zstandard.ZstdCompressionObj | None = None  # the stream we send
        self._rx: zstandard.ZstdDecompressionObj | None = None  # the stream we receive

    def encode(self, msg: Message, *, end: bool = False) -> bytes:
        """Encode ``msg`` as one session plaintext: codec byte + body.

        Args:
            msg: the message.
            end: the last message of a burst (a sync's ``ContactsDone``): in version 2 an
                open stream ends its frame with it, so both sides free the stream's memory.

        Returns:
            The plaintext to seal.
        """
        if self.version == 1:
            return encode_app(msg)
        raw = _encoder.encode(msg)
        if len(raw) < COMPRESS_MIN and not (end and self._tx is not None):
            return bytes((CODEC_RAW,)) + raw
        tx = self._tx
        if tx is None:
            tx = zstandard.ZstdCompressor(compression_params=_STREAM_PARAMS).compressobj()
        piece: bytes = tx.compress(raw)
        if end:
            self._tx = None  # the frame ends here; the next piece starts a new one
            return bytes((CODEC_STREAM_END,)) + piece + tx.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        self._tx = tx
        return bytes((CODEC_STREAM,)) + piece + tx.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def decode(self, data: bytes) -> Message:
        """Decode one session plaintext from the peer.

        Raises:
            MessageError: see ``body``, or the body is not a valid message.
        """
        return decode(self.body(data))

    def body(self, data: bytes) -> bytes:
        """Return the message bytes of one session plaintext from the peer.

        Raises:
            MessageError: empty, a codec this version lacks, a bad zstd frame or stream
                piece, a window over 512 KiB, or more than 8 MiB out of one message.
        """
        if not data or data[0] < CODEC_STREAM:
            return app_body(data)
        if self.version == 1 or data[0] > CODEC_STREAM_END:
            raise MessageError(Reason.MALFORMED, f"unknown payload codec {data[0]}")
        if self._rx is None:
            dctx = zstandard.ZstdDecompressor(max_window_size=1 << STREAM_WINDOW_LOG)
            self._rx = dctx.decompressobj()
        rx, view, out, size = self._rx, memoryview(data)[1:], [], 0
        try:
            for i in range(0, len(view), _INFLATE_STEP):
                out.append(chunk := rx.decompress(view[i : i + _INFLATE_STEP]))
                size += len(chunk)
                if size > MAX_DECOMPRESSED:
                    raise MessageError(Reason.MALFORMED, "stream piece inflates past 8 MiB")
        except zstandard.ZstdError as exc:
            raise MessageError(Reason.MALFORMED, f"bad zstd stream piece: {exc}") from exc
        if data[0] == CODEC_STREAM_END:
            if not rx.eof or rx.unused_data:
                raise MessageError(Reason.MALFORMED, "stream piece does not end its frame")
            self._rx = None
        elif rx.eof:
            raise MessageError(Reason.MALFORMED, "stream frame ended without codec 3")
        return b"".join(out)


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


# Names a subset of SUPPORTED_VERSIONS for the car or the phone, e.g. "1" to act as a peer
# that speaks only version 1 (interop tests); the shells read it, ``parse_versions`` checks.
VERSIONS_ENV = "CARHUB_PROTOCOL_VERSIONS"


def parse_versions(text: str) -> tuple[int, ...]:
    """Parse a comma-separated list of protocol versions (``VERSIONS_ENV``'s value).

    Args:
        text: e.g. ``"1"`` or ``"2,1"``; empty or blank means ``SUPPORTED_VERSIONS``.

    Returns:
        The versions, each one this implementation speaks.

    Raises:
        LocalProtocolError: not integers, or a version this implementation lacks.
    """
    if not text.strip():
        return SUPPORTED_VERSIONS
    try:
        versions = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise LocalProtocolError(Reason.STATE, f"bad version list {text!r}") from None
    if not set(versions) <= set(SUPPORTED_VERSIONS):
        raise LocalProtocolError(
            Reason.STATE, f"versions {list(versions)}: this build speaks {list(SUPPORTED_VERSIONS)}"
        )
    return versions


def check_selected(ours: list[int] | tuple[int, ...], offered: list[int], selected: int) -> None:
    """Check the responder's selection is the best common version (no downgrade).

    Raises:
        VersionError: the selection is not the highest common version.
    """
    best = negotiate_version(ours, offered)
    if selected != best:
        raise VersionError(Reason.DOWNGRADE, f"peer selected v{selected}, best common v{best}")
