"""One CarHub connection's two byte streams down to its messages, decrypted when keyed.

Theory of operation. Each direction of a link is a byte stream of frames (PROTOCOL.md §2),
reassembled by ``protocol.framing.FrameDecoder``. Before the session a frame is a plaintext
message (§3: ``Hello``, pairing, ``NoiseHandshake``); a direction is *sealed* once it has
sent its ``NoiseHandshake`` (the phone's first, the car's reply), and every later frame of it
is a session frame: ``counter (8 bytes BE) || ChaCha20-Poly1305 ciphertext`` (§6.2). A
sealed direction may still carry a plaintext ``Error`` (a failed handshake): a session
frame starts with its counter's high byte, 0, where a message starts with a msgpack array
header, so the first byte tells them apart.

The phone's ``NoiseHandshake`` begins with its ephemeral public key, which names the
session's line in a key log (§6.3). With that line each session frame is opened with the
direction's key, nonce ``0x00000000 || counter`` and associated data ``counter``, and its
plaintext (an application payload, §3) is decoded by an ``AppCodec`` per direction, which
keeps that direction's zstd stream (codecs 02/03) across frames exactly as the receiver
did. Without the line, a session frame is reported as ``encrypted`` with its counter and
length. Nothing here raises for what the capture holds: a bad frame is one ``undecodable``
message, and its direction is not read further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import protocol.connection  # noqa: F401 - registers every message type for ``decode``
from protocol.capture.keylog import KeyLog
from protocol.errors import ProtocolError
from protocol.framing import MAX_FRAME_SIZE, FrameDecoder
from protocol.messages import AppCodec, Hello, Message, decode
from protocol.session import NoiseHandshake, SessionSecrets

__all__ = ["CAR_TO_PHONE", "PHONE_TO_CAR", "Chunk", "Conversation", "Decoded", "fields_of"]

PHONE_TO_CAR, CAR_TO_PHONE = "phone->car", "car->phone"
_COUNTER, _TAG, _KEY = 8, 16, 32


@dataclass(frozen=True)
class Chunk:
    """Bytes of one direction of a link's CarHub stream, as a capture carried them."""

    time: float
    link: object  # hashable, and its str() names the link for people
    to_car: bool
    data: bytes


@dataclass(frozen=True)
class Decoded:
    """One message of a capture: the line ``carhub-capture decode`` prints."""

    time: float
    link: str
    direction: str  # PHONE_TO_CAR or CAR_TO_PHONE
    message: str  # the PROTOCOL.md name, or "encrypted" / "undecodable"
    fields: dict[str, Any]
    counter: int | None = None  # a session frame's counter (§6.2)


class Conversation:
    """Both directions of one link.

    Args:
        link: the link's name, for the ``Decoded`` lines.
        keylog: the sessions whose keys are known, or None.
    """

    def __init__(self, link: str, keylog: KeyLog | None) -> None:
        self.link = link
        self._keylog = keylog or KeyLog()
        self._frames = {d: FrameDecoder(MAX_FRAME_SIZE) for d in (True, False)}
        self._sealed = {True: False, False: False}
        self._broken = {True: False, False: False}
        self._secrets: SessionSecrets | None = None
        self._codecs = {True: AppCodec(2), False: AppCodec(2)}
        self._version = 2
        self.inflated = 0  # session message bytes decoded so far (the caller bounds it)

    def feed(self, chunk: Chunk) -> list[Decoded]:
        """Take bytes of one direction; return the messages they completed."""
        to_car = chunk.to_car
        if self._broken[to_car]:
            return []
        decoder, out = self._frames[to_car], []
        decoder.receive_data(chunk.data)
        try:
            while (payload := decoder.next_frame()) is not None:
                out.append(self._frame(chunk.time, to_car, payload))
        except ProtocolError as exc:
            out.append(self._broke(chunk.time, to_car, f"framing: {exc.detail}"))
        return out

    def _frame(self, time: float, to_car: bool, payload: bytes) -> Decoded:
        if self._sealed[to_car] and payload[:1] == b"\x00":
            return self._session_frame(time, to_car, payload)
        try:
            msg = decode(payload)
        except ProtocolError as exc:
            return self._broke(time, to_car, f"not a message: {exc.detail}")
        self._plaintext(to_car, msg)
        return self._line(time, to_car, type(msg).__name__, fields_of(msg))

    def _plaintext(self, to_car: bool, msg: Message) -> None:
        """Follow the plaintext phase: the version, the handshake, the session's keys."""
        if isinstance(msg, Hello) and not to_car and msg.selected in (1, 2):
            self._version = msg.selected
        elif isinstance(msg, NoiseHandshake):
            self._sealed[to_car] = True
            if to_car:  # a new session: new streams, and perhaps its keys
                self._secrets = self._keylog.find(msg.payload[:_KEY])
                self._codecs = {d: AppCodec(self._version) for d in (True, False)}

    def _session_frame(self, time: float, to_car: bool, payload: bytes) -> Decoded:
        counter = int.from_bytes(payload[:_COUNTER], "big")
        sealed: dict[str, Any] = {"counter": counter, "length": len(payload)}
        if self._secrets is None or len(payload) < _COUNTER + _TAG:
            return self._line(time, to_car, "encrypted", sealed, counter)
        key = self._secrets.phone_to_car if to_car else self._secrets.car_to_phone
        head = payload[:_COUNTER]
        try:
            plain = ChaCha20Poly1305(key).decrypt(b"\x00" * 4 + head, payload[_COUNTER:], head)
        except InvalidTag:
            sealed["error"] = "the key log's key does not open this frame"
            return self._line(time, to_car, "encrypted", sealed, counter)
        try:
            body = self._codecs[to_car].body(plain)
            self.inflated += len(body)
            msg = decode(body)
        except ProtocolError as exc:
            return self._broke(time, to_car, f"frame {counter}: {exc.detail}", counter)
        return self._line(time, to_car, type(msg).__name__, fields_of(msg), counter)

    def _broke(self, time: float, to_car: bool, why: str, counter: int | None = None) -> Decoded:
        """Report a frame that cannot be read; the rest of its direction is skipped."""
        self._broken[to_car] = True
        return self._line(time, to_car, "undecodable", {"error": why}, counter)

    def _line(self, time: float, to_car: bool, name: str, fields: dict[str, Any],
              counter: int | None = None) -> Decoded:  # fmt: skip
        direction = PHONE_TO_CAR if to_car else CAR_TO_PHONE
        return Decoded(time, self.link, direction, name, fields, counter)


def fields_of(msg: msgspec.Struct) -> dict[str, Any]:
    """A message's fields as JSON values: bytes as hex, nested arrays as objects."""
    return {name: _jsonable(getattr(msg, name)) for name in msg.__struct_fields__}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, msgspec.Struct):
        return fields_of(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
