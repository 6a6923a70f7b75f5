"""phone_bridge.bridge: ``phone-bridge run`` stays paired, in sync, and comes back.

The bridge is driven through its public surface (``Bridge(...).run()`` and the events it
emits, which ``run --json`` prints). Its peer is the real car in this event loop (WebSocket
on 127.0.0.1, no mDNS, SQLite in ``tmp_path``), so what the car stored is checked too.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from carhub.engine import CarConfig
from carhub.runner import CarRunner, RunOptions
from phone_bridge.bridge import Bridge, BridgeOptions
from phone_bridge.connect import ConnectOptions
from phone_bridge.engine import EXIT_NOT_PAIRED, BridgeError
from phone_bridge.state import PairedCar, PhoneState

LAN = ConnectOptions(transport="lan")


class FakeConsole:
    """Collects what the bridge emits (what ``run --json`` would print), in order."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.seen.append(event)
        self.events.put_nowait(event)

    async def next(self, name: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the next event called ``name``, skipping others (TimeoutError if none)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if event["event"] == name:
                    return event


def _vcf(path: Path, cards: dict[str, str]) -> None:
    text = "".join(
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nTEL:+15550100\r\nEND:VCARD\r\n"
        for uid, fn in cards.items()
    )
    path.write_text(text)
    # The bridge watches the mtime; make each save visible even within one clock tick.
    stamp = path.stat().st_mtime + 1 + len(text) % 7
    os.utime(path, (stamp, stamp))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_car(state_dir: Path, port: int = 0) -> AsyncIterator[CarRunner]:
    runner = CarRunner(
        CarConfig(name="Bridge Car", state_dir=state_dir, pairing_open=True, auto_confirm=True),
        RunOptions(listen=f"127.0.0.1:{port}", ui="127.0.0.1:0", mdns=False),
    )
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


@asynccontextmanager
async def running(bridge: Bridge) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(bridge.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _car_names(car: CarRunner, phone: PhoneState) -> list[str]:
    _, contacts = car.store.contacts(phone.identity.device_id)
    return sorted(c.fn for c in contacts)


async def test_an_unpaired_car_is_fatal_without_auto_confirm(tmp_path: Path) -> None:
    console = FakeConsole()
    opts = BridgeOptions(
        car="127.0.0.1:9", contacts=tmp_path / "c.vcf", media=None, name="P", connect=LAN
    )
    bridge = Bridge(PhoneState(tmp_path / "phone"), opts, None, console.emit)
    with pytest.raises(BridgeError, match=r"not paired with 127\.0\.0\.1:9; run .pair. first") as e:
        await bridge.run()
    assert e.value.code == EXIT_NOT_PAIRED
    assert console.seen == []  # no reconnect loop for a mistake only the user can fix


async def test_an_unreachable_car_is_retried_with_growing_delays(tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{_free_port()}"  # nothing listens there
    phone = PhoneState(tmp_path / "phone")
    phone.save_car(PairedCar(id="ab" * 8, name="Gone", public_key="11" * 32, endpoint=endpoint))
    console = FakeConsole()
    opts = BridgeOptions(
        car=endpoint, contacts=tmp_path / "c.vcf", media=None, name="P", connect=LAN
    )
    async with running(Bridge(phone, opts, None, console.emit)):
        delays = [(await console.next("disconnected"))["retry_in"] for _ in range(3)]
    # Exponential from 0.5 s, with +-20 % jitter so a fleet of phones does not stampede.
    for delay, nominal in zip(delays, (0.5, 1.0, 2.0), strict=True):
        assert nominal * 0.8 - 0.01 <= delay <= nominal * 1.2 + 0.01, delays
    assert all(e["event"] == "disconnected" for e in console.seen)


async def test_pairs_syncs_follows_the_file_and_resumes_after_the_car_restarts(
    tmp_path: Path,
) -> None:
    vcf = tmp_path / "contacts.vcf"
    _vcf(vcf, {"u1": "Ann", "u2": "Bob", "u3": "Cy"})
    phone = PhoneState(tmp_path / "phone")
    console = FakeConsole()
    async with running_car(tmp_path / "car") as car:
        port = car.ws_port
        opts = BridgeOptions(
            car=f"127.0.0.1:{port}", contacts=vcf, media=None, name="Phone", auto_confirm=True,
            connect=LAN,
        )  # fmt: skip
        bridge = Bridge(phone, opts, None, console.emit)
        async with running(bridge):
            paired = await console.next("paired")
            assert paired["car"] == car.engine.identity.device_id
            assert (await console.next("connected"))["transport"] == "lan"
            first = await console.next("synced")
            assert (first["added"], first["changed"], first["deleted"]) == (3, 0, 0)
            assert _car_names(car, phone) == ["Ann", "Bob", "Cy"]

            # The user edits the file: one changed, one deleted, one added.
            _vcf(vcf, {"u1": "Ann", "u2": "Bobby", "u4": "Di"})
            edit = await console.next("synced")
            assert (edit["added"], edit["changed"], edit["deleted"], edit["unchanged"]) == (
                1, 1, 1, 1,
            )  # fmt: skip
            assert _car_names(car, phone) == ["Ann", "Bobby", "Di"]

            # A save that is not a vCard file is not synced: the car keeps its copy.
            vcf.write_text("not a vcard")
            os.utime(vcf, (vcf.stat().st_mtime + 9, vcf.stat().st_mtime + 9))
            with pytest.raises(TimeoutError):
                await console.next("synced", timeout=2.5)
            assert _car_names(car, phone) == ["Ann", "Bobby", "Di"]

            await car.stop()  # the car goes away...
            retry = await console.next("disconnected")
            assert 0 < retry["retry_in"] <= 0.6  # the first retry is quick
            _vcf(vcf, {"u1": "Ann", "u2": "Bobby", "u4": "Di"})  # a good save again
            async with running_car(tmp_path / "car", port) as again:  # ...and comes back
                assert (await console.next("connected"))["car"] == paired["car"]
                resumed = await console.next("synced")
                assert (resumed["added"], resumed["deleted"], resumed["unchanged"]) == (0, 0, 3)
                assert _car_names(again, phone) == ["Ann", "Bobby", "Di"]
    assert [e["event"] for e in console.seen].count("paired") == 1  # never paired again


async def test_every_outage_starts_again_from_the_shortest_delay(tmp_path: Path) -> None:
    vcf = tmp_path / "contacts.vcf"
    _vcf(vcf, {"u1": "Ann"})
    phone, console = PhoneState(tmp_path / "phone"), FakeConsole()
    async with running_car(tmp_path / "car") as car:
        opts = BridgeOptions(
            car=f"127.0.0.1:{car.ws_port}", contacts=vcf, media=None, name="Phone",
            auto_confirm=True, connect=LAN,
        )  # fmt: skip
        async with running(Bridge(phone, opts, None, console.emit)):
            await console.next("synced")
            retries = []
            for _ in range(2):
                await car.stop()
                retries.append((await console.next("disconnected"))["retry_in"])
                car = await _restart(car)
                await console.next("synced")
            await car.stop()
    assert all(delay <= 0.6 for delay in retries), retries


async def _restart(car: CarRunner) -> CarRunner:
    again = CarRunner(
        car.config, RunOptions(listen=f"127.0.0.1:{car.ws_port}", ui="127.0.0.1:0", mdns=False)
    )
    await again.start()
    return again
