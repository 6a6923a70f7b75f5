"""Shared test fixtures."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.phone_bridge.fake_mpris import PrivateBus

# pytester: tests/plugin runs inner pytest sessions. carhub.testing.plugin: the project's
# own fixtures (installed as an entry point too; same name, so it is registered once).
pytest_plugins = ["pytester", "carhub.testing.plugin"]

ROOT = Path(__file__).resolve().parent.parent
VCARD_CORPUS = ROOT / "tests" / "data" / "vcard"


@pytest.fixture
def vcard_corpus() -> Path:
    return VCARD_CORPUS


@pytest.fixture
def bus() -> Iterator[PrivateBus]:
    """A private session bus (``dbus-daemon``, never the user's) for the MPRIS tests."""
    from tests.phone_bridge.fake_mpris import PrivateBus  # dbus_fast: only where used

    b = PrivateBus()
    try:
        yield b
    finally:
        b.stop()


def _child_pids() -> set[int]:
    """PIDs of this process's live children (from /proc)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except FileNotFoundError:
            continue  # the thread ended between the listing and the read
    return pids


@pytest.fixture
async def _no_leftover_tasks() -> AsyncIterator[None]:
    yield
    await asyncio.sleep(0.05)  # let cancelled tasks finish unwinding
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not tasks, f"tasks left running: {tasks}"


@pytest.fixture(autouse=True)
def no_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves child processes alive or (async tests) asyncio tasks running.

    Requested first (autouse), so its checks run after every other fixture's teardown.
    """
    if inspect.iscoroutinefunction(getattr(request.node, "obj", None)):
        request.getfixturevalue("_no_leftover_tasks")
    before = _child_pids()
    yield
    left = _child_pids() - before
    assert not left, f"child processes left running: {sorted(left)}"
