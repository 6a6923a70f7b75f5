"""Fixtures for the end-to-end tests: real console scripts in temp dirs, always cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ble_helpers import Radio
from tests.e2e.helpers import _LIVE, Car, Phone, stop, stop_all


@pytest.fixture
def make_car(tmp_path: Path) -> Iterator[Callable[..., Car]]:
    """Start cars on random ports; every process is stopped even if the test fails."""
    made: list[Car] = []

    def make(name: str = "E2E Car", auto_confirm: bool = True, **kw: Any) -> Car:
        extra = ["--auto-confirm"] if auto_confirm else []
        car = Car(tmp_path / f"car{len(made)}", name=name, extra=extra, **kw)
        made.append(car)
        return car.start()

    try:
        yield make
    finally:
        stop_all()


@pytest.fixture
def car(make_car: Callable[..., Car]) -> Car:
    """A car with the pairing window open that accepts codes by itself (emulation)."""
    return make_car()


@pytest.fixture
def phone(tmp_path: Path) -> Phone:
    return Phone(tmp_path / "phone")


@pytest.fixture
def paired(car: Car, phone: Phone) -> tuple[Car, Phone, str]:
    """A car and a phone paired with it; the third item is the phone's id."""
    phone.pair(car)
    return car, phone, phone.status()["phone_id"]


@pytest.fixture
def radio(tmp_path: Path) -> Iterator[Radio]:
    """One virtual air; every process of the test is stopped afterwards, even on failure."""
    try:
        yield Radio(tmp_path).start()
    finally:
        # Newest first: phones, then cars, then the radio, so nobody waits on a dead air.
        for proc in reversed(list(_LIVE)):
            stop(proc)
        stop_all()
