"""In-memory pairs of protocol machines, like h11's ``ConnectionPair``.

``PairingPair`` joins a ``CarPairing`` and a ``PhonePairing``; ``SessionPair`` joins two
``SecureSession`` objects. Messages go through the real codec (encode, then decode) so
every test also exercises the wire format. A ``relay`` hook sees every message in flight
and may replace it, which is how tests play a man in the middle or a tamperer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

from protocol.framing import FrameDecoder
from protocol.identity import Identity, PairingUri
from protocol.messages import Message, decode, encode
from protocol.pairing import (
    CarPairing,
    CodeReady,
    PairingEvent,
    PhonePairing,
)
from protocol.session import SecureSession

TRANSCRIPT = b"hello-from-phone|hello-from-car"
PROLOGUE = b"carhub/1 session\x00" + TRANSCRIPT

Relay = Callable[[Message, str], Message]
"""Gets (message, destination side) and returns what is delivered instead."""


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    """A deterministic nonce source, so tests never depend on luck."""
    gen = random.Random(seed)
    return lambda n: gen.randbytes(n)


def wire(msg: Message) -> Message:
    """Send a message through the real codec."""
    return decode(encode(msg))


def frames(data: bytes) -> list[Message]:
    """Decode the stream bytes a connection sent into its messages (pre-session frames)."""
    dec = FrameDecoder()
    dec.receive_data(data)
    out = []
    while (payload := dec.next_frame()) is not None:
        out.append(decode(payload))
    return out


class PairingPair:
    """A car and a phone pairing in memory.

    Args:
        oob: pair by QR: the car shows a fresh ``PairingUri`` and the phone scanned it.
        phone_uri, car_secret: set the phone's scanned URI and the car's QR secret apart
            (e.g. a forged QR code).
        relay: sees and may replace every message in flight.
    """

    def __init__(self, *, oob: bool = False, phone_uri: PairingUri | None = None,
                 car_secret: bytes | None = None, relay: Relay | None = None,
                 timeout: float = 60.0, seed: int = 1,
                 car_transcript: bytes = TRANSCRIPT) -> None:
        self.car_id = Identity.from_private_bytes(random.Random(seed).randbytes(32))
        self.phone_id = Identity.from_private_bytes(random.Random(seed + 1).randbytes(32))
        self.uri = phone_uri
        secret = car_secret
        if oob:
            self.uri = PairingUri.create(self.car_id)
            secret = self.uri.secret
        self.car = CarPairing(self.car_id, transcript=car_transcript, now=0.0, timeout=timeout,
                              oob_secret=secret, rng=seeded_rng(seed + 2))
        self.phone = PhonePairing(self.phone_id, "Pixel", transcript=TRANSCRIPT, now=0.0,
                                  timeout=timeout, oob=self.uri, rng=seeded_rng(seed + 3))
        self.relay = relay
        self.events: dict[str, list[PairingEvent]] = {"car": [], "phone": []}
        self.sent: list[tuple[str, Message]] = []

    def machine(self, side: str) -> CarPairing | PhonePairing:
        return self.car if side == "car" else self.phone

    def deliver(self, msgs: list[Message], to: str, now: float = 1.0) -> None:
        """Deliver ``msgs`` to side ``to`` and keep pumping replies until both are quiet."""
        queue = [(to, m) for m in msgs]
        while queue:
            dest, msg = queue.pop(0)
            if self.relay is not None:
                msg = self.relay(msg, dest)
            self.sent.append((dest, msg))
            try:
                replies = self.machine(dest).receive(wire(msg), now)
            finally:
                self.collect()  # a failure's event is kept even when receive raises
            other = "phone" if dest == "car" else "car"
            queue += [(other, r) for r in replies]

    def start(self, now: float = 1.0) -> None:
        """The phone sends PairRequest; run until a user decision is needed."""
        self.deliver(self.phone.start(), "car", now)

    def confirm(self, side: str, accepted: bool, now: float = 2.0) -> None:
        """``side``'s user decides; deliver what that sends."""
        try:
            out = self.machine(side).confirm(accepted, now)
        finally:
            self.collect()
        self.deliver(out, "phone" if side == "car" else "car", now)

    def collect(self) -> None:
        for side in ("car", "phone"):
            while (ev := self.machine(side).next_event()) is not None:
                self.events[side].append(ev)

    def codes(self) -> tuple[str | None, str | None]:
        return self.car.code, self.phone.code

    def code_events(self, side: str) -> list[str]:
        return [e.code for e in self.events[side] if isinstance(e, CodeReady)]


class SessionPair:
    """A phone (initiator) and a car (responder) running a Noise KK session in memory."""

    def __init__(self, *, prologue: bytes = PROLOGUE, car_prologue: bytes | None = None,
                 phone_pins: bytes | None = None, seed: int = 10) -> None:
        self.car_id = Identity.from_private_bytes(random.Random(seed).randbytes(32))
        self.phone_id = Identity.from_private_bytes(random.Random(seed + 1).randbytes(32))
        pinned = phone_pins if phone_pins is not None else self.car_id.public_key
        self.phone = SecureSession(self.phone_id, pinned, initiator=True, prologue=prologue)
        self.car = SecureSession(self.car_id, self.phone_id.public_key, initiator=False,
                                 prologue=car_prologue if car_prologue is not None else prologue)

    def handshake(self) -> None:
        """Run both handshake messages through the codec."""
        assert self.car.start() == []
        (first,) = self.phone.start()
        (second,) = self.car.receive_handshake(wire(first))
        assert self.phone.receive_handshake(wire(second)) == []


SPEC = Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md"
_VECTOR_LINE = re.compile(r"^([a-z0-9_.]+)\s+=\s+([0-9a-f]+)\s*$")


def spec_vectors(marker: str) -> dict[str, bytes]:
    """The ``name = hex`` vectors PROTOCOL.md prints between ``<!-- marker:begin/end -->``."""
    text = SPEC.read_text(encoding="utf-8")
    section = text[text.index(f"<!-- {marker}:begin -->") : text.index(f"<!-- {marker}:end -->")]
    out: dict[str, bytes] = {}
    for line in section.splitlines():
        if m := _VECTOR_LINE.match(line):
            assert m.group(1) not in out, f"duplicate vector {m.group(1)}"
            out[m.group(1)] = bytes.fromhex(m.group(2))
    return out
