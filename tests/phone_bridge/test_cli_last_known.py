"""``connect_car`` dials a paired car at its last address before browsing mDNS.

A user who names a paired car (``sync "Kitchen Car"``) should not wait for an mDNS browse
when the car is where it was: the session goes straight to the remembered endpoint. When
the car is not there (moved, gone, or another car's key answers), discovery finds it as
before; an address or an unknown name always goes through ``resolve``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phone_bridge.cli import session
from phone_bridge.cli.options import CarOptions, TransportChoice
from phone_bridge.connect import ConnectOptions, Target, last_known
from phone_bridge.state import PairedCar, PhoneState
from protocol.errors import Reason, SessionError
from shell.errors import TransportError

CAR = PairedCar(id="ab" * 8, name="Kitchen Car", public_key="11" * 32, endpoint="10.0.0.7:4000")


class FakeLink:
    def __init__(self) -> None:
        self.closed: list[str] = []

    async def aclose(self, reason: str = "") -> None:
        self.closed.append(reason)


class Car:
    """Records where sessions were opened, and whether discovery ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_first: Exception | None = None):
        self.dialled: list[str] = []
        self.resolved: list[str | None] = []
        self.fail_first = fail_first

        async def open_session(state: Any, target: Target, opts: Any, name: str) -> FakeLink:
            self.dialled.append(target.endpoint)
            if self.fail_first is not None:
                exc, self.fail_first = self.fail_first, None
                raise exc
            return FakeLink()

        async def resolve(query: str | None, state: Any, opts: Any) -> Target:
            self.resolved.append(query)
            return Target(query or "", endpoint="10.0.0.9:4000", paired=CAR)

        monkeypatch.setattr(session, "open_session", open_session)
        monkeypatch.setattr(session, "resolve", resolve)


def _state(tmp_path: Path) -> PhoneState:
    state = PhoneState(tmp_path)
    state.save_car(PairedCar(**{**CAR.__dict__}))
    return state


async def _connect(state: PhoneState, car: str, opts: CarOptions | None = None) -> str:
    async with session.connect_car(state, car, opts or CarOptions()) as s:
        return s.target.endpoint


async def test_a_paired_car_named_by_name_is_dialled_without_discovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    car = Car(monkeypatch)
    assert await _connect(_state(tmp_path), "Kitchen Car") == "10.0.0.7:4000"
    assert car.dialled == ["10.0.0.7:4000"] and car.resolved == []


@pytest.mark.parametrize(
    "failure",
    [TransportError("cannot reach the car at 10.0.0.7:4000: refused"),
     SessionError(Reason.UNKNOWN_PEER, "another car's key"),
     TimeoutError()],
)  # fmt: skip
async def test_a_car_not_at_its_last_address_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    car = Car(monkeypatch, fail_first=failure)
    assert await _connect(_state(tmp_path), "ab" * 4) == "10.0.0.9:4000"
    assert car.dialled == ["10.0.0.7:4000", "10.0.0.9:4000"]
    assert car.resolved == ["ab" * 4]


async def test_an_address_or_ble_goes_through_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    car = Car(monkeypatch)
    state = _state(tmp_path)
    await _connect(state, "10.0.0.7:4000")
    await _connect(state, "Kitchen Car", CarOptions(transport=TransportChoice.ble))
    assert car.resolved == ["10.0.0.7:4000", "Kitchen Car"]


def test_last_known_needs_one_paired_car_with_an_address(tmp_path: Path) -> None:
    state = _state(tmp_path)
    lan = ConnectOptions()
    hit = last_known("kitchen car", state, lan)
    assert hit is not None and hit.endpoint == CAR.endpoint and hit.paired is not None
    assert last_known("Garage", state, lan) is None  # not paired: discovery decides
    assert last_known(None, state, lan) is None
    state.save_car(PairedCar(id="ab" * 7 + "cd", name="Other", public_key="22" * 32,
                             endpoint="10.0.0.8:4000"))  # fmt: skip
    assert last_known("abab", state, lan) is None  # ambiguous: resolve refuses it
    state.save_car(PairedCar(id="ef" * 8, name="NoLan", public_key="33" * 32))
    assert last_known("NoLan", state, lan) is None
