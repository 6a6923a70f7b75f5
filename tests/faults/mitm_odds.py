"""A man in the middle of numeric-comparison pairing, played with the sans-I/O machines.

The relay runs its own key pair toward each side: a fake car toward the phone and a fake
phone toward the car, two honest pairings that share nothing. It wins an attempt when the
code the phone shows equals the code the car shows, so both users accept. The commitment
fixes the car's (or the relay's) nonce before the other side's is known, so whatever the
relay does each code is a fresh random value and it wins with probability 10^-digits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocol.identity import Identity
from protocol.messages import Message, decode, encode
from protocol.pairing import CarPairing, Paired, PhonePairing

__all__ = ["Attempt", "Machine", "attempt", "exchange", "identities"]

# The Hellos bound into each leg's transcript: the relay's toward each side differ.
T_PHONE_LEG = b"phone hello|relay-as-car hello"
T_CAR_LEG = b"relay-as-phone hello|car hello"


@dataclass(frozen=True)
class Attempt:
    phone_code: str
    car_code: str
    paired: bool  # both users accepted and both legs pinned the relay's keys


def identities(seed: int) -> tuple[Identity, Identity, Identity, Identity]:
    """The phone, the car, and the relay's fake car and fake phone (fixed keys)."""
    gen = random.Random(seed)
    made = tuple(Identity.from_private_bytes(gen.randbytes(32)) for _ in range(4))
    return made[0], made[1], made[2], made[3]


Machine = CarPairing | PhonePairing


def exchange(first: list[Message], sender: Machine, receiver: Machine) -> None:
    """Deliver ``first`` (through the real codec), then the answers, until both are quiet."""
    pending, to, back = first, receiver, sender
    while pending:
        answers: list[Message] = []
        for msg in pending:
            answers += to.receive(decode(encode(msg)), 0.0)
        pending, to, back = answers, back, to


def _both_accept(phone: PhonePairing, car: CarPairing) -> bool:
    """Both users accept the code they see; return whether both machines then paired."""
    exchange(phone.confirm(True, 0.0), phone, car)
    exchange(car.confirm(True, 0.0), car, phone)
    return all(any(isinstance(e, Paired) for e in _events(m)) for m in (phone, car))


def _events(machine: Machine) -> list[object]:
    out: list[object] = []
    while (event := machine.next_event()) is not None:
        out.append(event)
    return out


def attempt(ids: tuple[Identity, Identity, Identity, Identity], digits: int,
            rng: random.Random) -> Attempt:  # fmt: skip
    """One pairing attempt of a phone and a car with the relay between them.

    Args:
        ids: from ``identities``.
        digits: the code length of every machine (6 on the wire).
        rng: the nonce source of all four machines.

    Returns:
        What the two users saw, and whether the attempt ended with both sides paired.
    """
    phone_id, car_id, fake_car_id, fake_phone_id = ids
    n = rng.randbytes
    phone = PhonePairing(phone_id, "Pixel", transcript=T_PHONE_LEG, now=0.0, rng=n,
                         code_digits=digits)  # fmt: skip
    fake_car = CarPairing(fake_car_id, transcript=T_PHONE_LEG, now=0.0, rng=n,
                          code_digits=digits)  # fmt: skip
    fake_phone = PhonePairing(fake_phone_id, "Pixel", transcript=T_CAR_LEG, now=0.0, rng=n,
                              code_digits=digits)  # fmt: skip
    car = CarPairing(car_id, transcript=T_CAR_LEG, now=0.0, rng=n, code_digits=digits)
    # The phone leg first, so the relay knows the phone's code before the car leg starts:
    # it still cannot steer the car's, since the car committed to Nc before seeing Np.
    exchange(phone.start(), phone, fake_car)
    exchange(fake_phone.start(), fake_phone, car)
    assert phone.code is not None and car.code is not None
    paired = False
    if phone.code == car.code:  # the users see equal codes and accept: the relay wins
        paired = _both_accept(phone, fake_car) and _both_accept(fake_phone, car)
    return Attempt(phone.code, car.code, paired)
