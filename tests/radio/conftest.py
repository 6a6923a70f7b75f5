"""Fixtures for the radio tests: nothing may outlive a test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest


def child_pids() -> set[int]:
    """PIDs of this process's live children (from /proc)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text().split()
        pids.update(int(p) for p in text)
    return pids


@pytest.fixture(autouse=True)
async def no_leftovers() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks or child processes behind."""
    before = child_pids()
    yield
    await asyncio.sleep(0.05)  # let cancelled tasks finish unwinding
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not tasks, f"tasks left running: {tasks}"
    assert child_pids() <= before, "child processes left running"
