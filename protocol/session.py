"""The secure session between paired devices: Noise KK, then counter-framed AEAD.

Theory of operation. Both sides already pin each other's static key (from pairing), so
the handshake is ``Noise_KK_25519_ChaChaPoly_SHA256`` (from the ``noiseprotocol``
package): two messages, mutual authentication, forward secrecy from the ephemerals. The
prologue is supplied by the caller (the two encoded Hellos), so a man in the middle who
edited a Hello breaks the handshake. A peer with a different static key fails the first
message's AEAD tag: ``SessionError(HANDSHAKE_FAILED)`` before any application data.

Transport. Noise's ``Split()`` gives two keys: k1 initiator->responder and k2
responder->initiator. Each transport payload is

    counter (8 bytes, big-endian) || ChaCha20-Poly1305(key, nonce = 0x00000000 || counter,
                                                        ad = counter, plaintext)

with ``cryptography``'s ChaCha20Poly1305. Sending the counter explicitly (Noise keeps it
implicit) lets the receiver tell a replay (counter below the next expected) from a
reorder or gap (above it) from a forgery (the tag fails). Each of them ends the session:
afterwards every call raises the same ``SessionError``.

Exact construction and vectors: ``protocol/PROTOCOL.md`` section 6 and 10.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from noise.connection import Keypair, NoiseConnection

from protocol.errors import LocalProtocolError, Reason, SessionError
from protocol.identity import KEY_SIZE, Identity
from protocol.messages import Message, register

__all__ = ["NOISE_PROTOCOL", "NoiseHandshake", "SecureSession", "SessionSecrets"]

NOISE_PROTOCOL = b"Noise_KK_25519_ChaChaPoly_SHA256"
COUNTER_SIZE = 8
TAG_SIZE = 16
MAX_HANDSHAKE = 1024  # each KK message is 48 bytes (e + empty-payload tag)
_COUNTER = struct.Struct(">Q")
_MAX_COUNTER = (1 << 64) - 1  # reserved, as Noise reserves 2^64-1


class NoiseHandshake(Message, tag=20):
    """One Noise handshake message (KK has two: initiator's, then responder's)."""

    payload: bytes


register(NoiseHandshake)


@dataclass(frozen=True)
class SessionSecrets:
    """What a capture needs to read one session: a key log line (PROTOCOL.md §6.3).

    ``phone_ephemeral`` is public (the first 32 bytes of the phone's ``NoiseHandshake``,
    in plain sight in any capture): it names the session. The rest is secret and kept out
    of ``repr``, so a logged event never prints a key.
    """

    phone_ephemeral: bytes
    handshake_hash: bytes = field(repr=False)
    phone_to_car: bytes = field(repr=False)  # k1
    car_to_phone: bytes = field(repr=False)  # k2


class SecureSession:
    """One side of a Noise KK session with pinned keys.

    Args:
        identity: our static key pair.
        peer_public_key: the peer's pinned static public key (32 bytes).
        initiator: True on the phone (it speaks first), False on the car.
        prologue: bytes both sides must agree on (the two encoded Hellos).
        ephemeral_private: a fixed ephemeral private key, for test vectors only.

    Raises:
        LocalProtocolError: ``peer_public_key`` is not 32 bytes.
    """

    def __init__(self, identity: Identity, peer_public_key: bytes, *, initiator: bool,
                 prologue: bytes, ephemeral_private: bytes | None = None) -> None:
        if len(peer_public_key) != KEY_SIZE:
            raise LocalProtocolError(Reason.STATE, "a pinned key is 32 bytes")
        self.initiator = initiator
        self.established = False
        self._error: SessionError | None = None
        self._started = False
        self._hash = b""
        self._send: ChaCha20Poly1305 | None = None
        self._recv: ChaCha20Poly1305 | None = None
        self._send_counter = 0
        self._recv_counter = 0
        self._keys = (b"", b"")
        self._phone_ephemeral = b""  # the initiator's e, as it crossed the wire
        self._noise = _make_noise(identity, peer_public_key, initiator, prologue,
                                  ephemeral_private)

    @property
    def handshake_hash(self) -> bytes:
        """Noise's handshake hash h (32 bytes), for channel binding.

        Raises:
            LocalProtocolError: the handshake has not finished.
        """
        if not self.established:
            raise LocalProtocolError(Reason.STATE, "handshake not finished")
        return self._hash

    def start(self) -> list[Message]:
        """Begin the handshake: the initiator's first message, or nothing for a responder.

        Raises:
            LocalProtocolError: called twice.
        """
        self._check_alive()
        if self._started:
            raise LocalProtocolError(Reason.STATE, "handshake already started")
        self._started = True
        if not self.initiator:
            return []
        first = bytes(self._noise.write_message(b""))
        self._phone_ephemeral = first[:KEY_SIZE]
        return [NoiseHandshake(first)]

    def receive_handshake(self, msg: Message) -> list[Message]:
        """Handle the peer's handshake message.

        Returns:
            The responder's reply (``[NoiseHandshake]``), or ``[]`` on the initiator.

        Raises:
            SessionError: ``HANDSHAKE_FAILED`` (wrong key, wrong prologue, bad bytes) or
                ``UNEXPECTED_MESSAGE``; the session is dead afterwards.
        """
        self._check_alive()
        if not isinstance(msg, NoiseHandshake) or self.established or (
                self.initiator and not self._started):
            raise self._fail(Reason.UNEXPECTED_MESSAGE, f"{type(msg).__name__} now")
        self._started = True
        if len(msg.payload) > MAX_HANDSHAKE:
            raise self._fail(Reason.HANDSHAKE_FAILED, "handshake message too long")
        if not self.initiator:
            self._phone_ephemeral = bytes(msg.payload[:KEY_SIZE])
        try:
            payload = self._noise.read_message(msg.payload)
            reply: list[Message] = []
            if not self.initiator:
                reply.append(NoiseHandshake(bytes(self._noise.write_message())))
        except Exception as exc:
            # noiseprotocol raises plain Exception subclasses, cryptography InvalidTag or
            # ValueError (bad point); all of them mean the same thing to the peer.
            raise self._fail(Reason.HANDSHAKE_FAILED, type(exc).__name__) from exc
        if payload:
            raise self._fail(Reason.HANDSHAKE_FAILED, "unexpected handshake payload")
        self._finish()
        return reply

    def encrypt(self, plaintext: bytes) -> bytes:
        """Seal one transport payload: counter || ciphertext.

        Raises:
            LocalProtocolError: the session is not established, or the counter ran out.
            SessionError: the session already failed.
        """
        self._check_alive()
        if self._send is None:
            raise LocalProtocolError(Reason.STATE, "session not established")
        if self._send_counter >= _MAX_COUNTER:
            raise LocalProtocolError(Reason.STATE, "counter exhausted; reconnect")
        counter = _COUNTER.pack(self._send_counter)
        self._send_counter += 1
        return counter + self._send.encrypt(_nonce(counter), plaintext, counter)

    def decrypt(self, payload: bytes) -> bytes:
        """Open one transport payload.

        Raises:
            SessionError: ``REPLAY`` (old counter), ``REORDER`` (a counter ahead of the next
                expected), ``TAMPERED`` (bad tag or too short); the session is dead after.
            LocalProtocolError: the session is not established.
        """
        self._check_alive()
        if self._recv is None:
            raise LocalProtocolError(Reason.STATE, "session not established")
        if len(payload) < COUNTER_SIZE + TAG_SIZE:
            raise self._fail(Reason.TAMPERED, f"payload of {len(payload)} bytes")
        counter = bytes(payload[:COUNTER_SIZE])
        (value,) = _COUNTER.unpack(counter)
        if value < self._recv_counter:
            raise self._fail(Reason.REPLAY, f"counter {value}, expected {self._recv_counter}")
        if value > self._recv_counter:
            raise self._fail(Reason.REORDER, f"counter {value}, expected {self._recv_counter}")
        try:
            plaintext = self._recv.decrypt(_nonce(counter), bytes(payload[COUNTER_SIZE:]), counter)
        except InvalidTag as exc:
            raise self._fail(Reason.TAMPERED, f"bad tag on frame {value}") from exc
        self._recv_counter += 1
        return plaintext

    def transport_keys(self) -> tuple[bytes, bytes]:
        """Return (send key, receive key), for test vectors.

        Raises:
            LocalProtocolError: the handshake has not finished.
        """
        if not self.established:
            raise LocalProtocolError(Reason.STATE, "handshake not finished")
        return self._keys

    def secrets(self) -> SessionSecrets:
        """Return the session's key log material (the shells' ``--keylog``; never sent).

        Raises:
            LocalProtocolError: the handshake has not finished.
        """
        send, recv = self.transport_keys()
        k1, k2 = (send, recv) if self.initiator else (recv, send)
        return SessionSecrets(self._phone_ephemeral, self._hash, k1, k2)

    def _finish(self) -> None:
        proto = self._noise.noise_protocol
        # Split() already ran inside noiseprotocol: take its raw keys and drive the AEAD
        # ourselves so the nonce can travel explicitly.
        self._keys = (bytes(proto.cipher_state_encrypt.k), bytes(proto.cipher_state_decrypt.k))
        self._send = ChaCha20Poly1305(self._keys[0])
        self._recv = ChaCha20Poly1305(self._keys[1])
        self._hash = bytes(self._noise.get_handshake_hash())
        self.established = True

    def _check_alive(self) -> None:
        if self._error is not None:
            raise SessionError(self._error.reason, f"session already failed: {self._error.detail}")

    def _fail(self, reason: Reason, detail: str) -> SessionError:
        """Kill the session; return the error for the caller to raise."""
        self._error = SessionError(reason, detail)
        self._send = self._recv = None
        return self._error


def _nonce(counter: bytes) -> bytes:
    """ChaCha20-Poly1305's 96-bit nonce: 4 zero bytes, then the 8-byte counter."""
    return b"\x00\x00\x00\x00" + counter


def _make_noise(identity: Identity, peer: bytes, initiator: bool, prologue: bytes,
                ephemeral: bytes | None) -> Any:
    """Set up a noiseprotocol KK connection, handshake started."""
    noise = NoiseConnection.from_name(NOISE_PROTOCOL)
    if initiator:
        noise.set_as_initiator()
    else:
        noise.set_as_responder()
    noise.set_keypair_from_private_bytes(Keypair.STATIC, identity.private_bytes())
    noise.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, peer)
    noise.set_prologue(prologue)
    with warnings.catch_warnings():
        # noiseprotocol warns when an ephemeral key is preset: only vectors do that.
        warnings.simplefilter("ignore")
        if ephemeral is not None:
            noise.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
        noise.start_handshake()
    return noise
