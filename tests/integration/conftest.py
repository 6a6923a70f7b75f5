"""A whole car in the test's event loop (real uvicorn, real WebSockets, real SQLite), mDNS off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from carhub.engine import CarConfig
from carhub.runner import CarRunner, RunOptions

StartCar = Callable[..., Awaitable[CarRunner]]


@pytest.fixture
async def start_car(tmp_path: Path) -> AsyncIterator[StartCar]:
    """``await start_car(name, pairing_open=True)``: a started car, stopped after the test."""
    started: list[CarRunner] = []

    async def start(name: str, *, pairing_open: bool = True) -> CarRunner:
        runner = CarRunner(
            CarConfig(name=name, state_dir=tmp_path / f"car{len(started)}",
                      pairing_open=pairing_open, auto_confirm=True),
            RunOptions(listen="127.0.0.1:0", ui="127.0.0.1:0", mdns=False),
        )  # fmt: skip
        await runner.start()
        started.append(runner)
        return runner

    try:
        yield start
    finally:
        for runner in reversed(started):
            await runner.stop()
