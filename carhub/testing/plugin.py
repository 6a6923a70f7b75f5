"""The pytest plugin: fixtures that start real CarHub processes and always stop them.

Registered by the ``pytest11`` entry point of the ``carhub`` package, so installing
CarHub is enough; or ``pytest -p carhub.testing.plugin``. See docs/testing.md.

Each fixture is a factory: ``carhub_car`` is a function that starts a car and returns its
``Car``; call it as often as the test needs. Every process a test started (radios, cars,
phone runs) is stopped when the test ends, pass or fail: its whole process group gets
SIGTERM, then SIGKILL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carhub.testing.car import Car
from carhub.testing.phone import Contacts, Phone
from carhub.testing.processes import Processes
from carhub.testing.radio import Radio

__all__ = ["carhub_car", "carhub_lab", "carhub_phone", "carhub_radio"]


class Lab:
    """The processes and the temporary folder one test's fixtures share."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes = Processes()
        self._names: dict[str, int] = {}

    def folder(self, kind: str) -> Path:
        """A fresh name under ``root``: ``car-0``, ``car-1``... (created by the process)."""
        index = self._names.get(kind, 0)
        self._names[kind] = index + 1
        return self.root / f"{kind}-{index}"


@pytest.fixture
def carhub_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The shared state of the carhub fixtures; stops every process at the end."""
    lab = Lab(tmp_path_factory.mktemp("carhub"))
    try:
        yield lab
    finally:
        lab.processes.stop_all()  # newest first: phones, then cars, then radios


@pytest.fixture
def carhub_radio(carhub_lab: Lab) -> Callable[..., Radio]:
    """A factory: ``carhub_radio()`` starts a ``carhub-radio`` and returns its ``Radio``."""

    def make(*, btsnoop: Path | None = None) -> Radio:
        radio = Radio(carhub_lab.processes, carhub_lab.root, btsnoop=btsnoop)
        return radio.start()

    return make


@pytest.fixture
def carhub_car(carhub_lab: Lab) -> Callable[..., Car]:
    """A factory: ``carhub_car(name="Car", *, radio=None, lan=True, pairing_open=True,
    auto_confirm=True, **options)`` starts ``carhub run`` and returns its ``Car``."""

    def make(
        name: str = "Car",
        *,
        radio: Radio | None = None,
        lan: bool = True,
        pairing_open: bool = True,
        auto_confirm: bool = True,
        **options: Any,
    ) -> Car:
        car = Car(
            carhub_lab.processes, carhub_lab.folder("car"), name, radio=radio, lan=lan,
            pairing_open=pairing_open, auto_confirm=auto_confirm, **options,
        )  # fmt: skip
        return car.start()

    return make


@pytest.fixture
def carhub_phone(carhub_lab: Lab) -> Callable[..., Phone]:
    """A factory: ``carhub_phone(name="Phone", *, contacts=None, media=None,
    transport="lan", radio=None)`` returns a ``Phone`` (its commands run on demand)."""

    def make(
        name: str = "Phone",
        *,
        contacts: Contacts | None = None,
        media: str | Path | None = None,
        transport: str = "lan",
        radio: Radio | None = None,
    ) -> Phone:
        return Phone(
            carhub_lab.processes, carhub_lab.folder("phone"), name, contacts=contacts,
            media=media, transport=transport, radio=radio,
        )  # fmt: skip

    return make
