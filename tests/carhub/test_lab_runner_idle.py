"""An idle car does not poll (issue 13), yet its pairing window still closes on time and
its dashboard still answers with a fresh ``Date`` and stops at once.

The car runs in-process (``CarRunner``: LAN and dashboard on loopback, no mDNS, no BLE);
the window's closing is watched through ``Engine.on_pairing_change``, as mDNS and BLE
advertising see it, with no API read in between (a read would close it by itself).
"""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from carhub.engine import CarConfig
from carhub.runner import CarRunner, RunOptions


def make_runner(tmp_path: Path, *, pairing_open: bool, window: float) -> CarRunner:
    config = CarConfig(
        name="Idle Car", state_dir=tmp_path / "car", pairing_open=pairing_open,
        pairing_window=window,
    )  # fmt: skip
    return CarRunner(config, RunOptions(listen="127.0.0.1:0", ui="127.0.0.1:0", mdns=False))


async def test_the_window_closes_by_itself_again_after_a_closed_spell(tmp_path: Path) -> None:
    runner = make_runner(tmp_path, pairing_open=True, window=1.0)
    changes: list[tuple[bool, float]] = []
    runner.engine.on_pairing_change(lambda open_: changes.append((open_, time.monotonic())))
    await runner.start()
    try:
        t0 = time.monotonic()
        async with asyncio.timeout(5):
            while not changes:
                await asyncio.sleep(0.05)
        assert changes[0][0] is False and changes[0][1] - t0 < 2.5  # closed, on time
        await asyncio.sleep(1.5)  # closed: the watcher waits for the window to open
        runner.engine.open_pairing(1.0)  # e.g. from the dashboard
        t1 = time.monotonic()
        async with asyncio.timeout(5):
            while len(changes) < 3:
                await asyncio.sleep(0.05)
        assert [c[0] for c in changes] == [False, True, False]
        assert changes[2][1] - t1 < 2.5
    finally:
        await runner.stop()


async def test_the_dashboard_dates_its_answers_and_stops_at_once(tmp_path: Path) -> None:
    runner = make_runner(tmp_path, pairing_open=False, window=120)
    await runner.start()
    stopped = False
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runner.ui_port}") as http:
            first = await http.get("/api/status")
            await asyncio.sleep(1.2)
            second = await http.get("/api/status")
        assert first.status_code == 200 and first.headers["server"] == "uvicorn"
        dates = [parsedate_to_datetime(r.headers["date"]).timestamp() for r in (first, second)]
        assert abs(dates[1] - time.time()) < 2 and dates[1] > dates[0]  # fresh, not frozen
        t0 = time.monotonic()
        await runner.stop()
        stopped = True
        assert time.monotonic() - t0 < 1.0  # no 0.1 s poll, no 1 s one: told to exit
    finally:
        if not stopped:
            await runner.stop()
