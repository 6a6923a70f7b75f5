"""The emulated iPhone outlives a ``carhub-radio`` restart: it says "radio lost", reopens
with backoff, scans again, and (bonded) reconnects encrypted to the car with no new code."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from phone_bridge.ios import IPhone, IPhoneOptions
from phone_bridge.player import Player
from protocol.media import Track
from tests.phone_bridge.ios_car import T, TinyCar

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ONE = Track(track_id="t1", title="One", artists=("Ann",), album="A", duration_ms=200_000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Radio:
    """``carhub-radio serve`` on a fixed port, killed (SIGKILL) and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def spec(self) -> str:
        return f"tcp-client:127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "radio.cli", "serve", "--listen", f"127.0.0.1:{self.port}",
            env=ENV, stderr=asyncio.subprocess.PIPE)
        stderr = self.proc.stderr
        assert stderr is not None
        async def listening() -> None:
            while b"listening" not in await stderr.readline():
                pass
        await asyncio.wait_for(listening(), 15)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 10)
        self.proc = None

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.communicate(), 10)
            self.proc = None


@pytest.fixture
async def radio() -> AsyncIterator[Radio]:
    r = Radio()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def next_event(lines: asyncio.StreamReader, event: str, timeout: float = 20) -> dict[
    str, Any
]:
    async def read() -> dict[str, Any]:
        while True:
            line = await lines.readline()
            assert line, "the emulator exited"
            parsed: dict[str, Any] = json.loads(line)
            if parsed["event"] == event:
                return parsed
    return await asyncio.wait_for(read(), timeout)


async def test_the_cli_survives_a_radio_kill_and_restart(radio: Radio, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "phone_bridge.cli", "--state-dir", str(tmp_path), "emulate",
        "ios", "--radio", radio.spec, "--json", env=ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        await next_event(proc.stdout, "scanning")
        await radio.kill()
        assert await next_event(proc.stdout, "disconnected") == {
            "event": "disconnected", "reason": "radio lost"}
        # The radio stays away longer than open_hci's own retries (10 x 0.3 s), so the
        # phone's backoff runs too.
        await asyncio.sleep(4.5)
        assert proc.returncode is None
        await radio.start()
        await next_event(proc.stdout, "scanning")
        assert proc.returncode is None
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert b"radio lost" in err and b"cannot reopen" in err, err.decode()


async def flush(car: TinyCar) -> None:
    """Cancel Bumble's advertising restart after a disconnection: on a closed transport it
    would wait for the controller forever."""
    if car.device is not None:
        car.device.emit(car.device.EVENT_FLUSH)
        await asyncio.sleep(0)


async def test_a_bonded_phone_reconnects_encrypted_after_the_radio_restarts(
    radio: Radio, tmp_path: Path
) -> None:
    events: list[dict[str, Any]] = []
    car = TinyCar(radio.spec)  # type: ignore[arg-type]
    await car.start()
    phone = IPhone(radio.spec, IPhoneOptions(state_dir=tmp_path, auto_confirm=True,
                                             player=Player([ONE], {}), emit=events.append))
    await phone.start()
    car2: TinyCar | None = None
    try:
        s = await car.session(0)
        await asyncio.wait_for(s.ready.wait(), T)
        assert len(car.codes) == 1
        await radio.kill()
        await car.stop()
        async def lost() -> None:
            while {"event": "disconnected", "reason": "radio lost"} not in events:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(lost(), T)
        await radio.start()
        car2 = TinyCar(radio.spec)  # type: ignore[arg-type]
        car2.keystore = car.keystore  # the car kept its bond
        await car2.start()
        s2 = await car2.session(0)
        await asyncio.wait_for(s2.ready.wait(), 20)
        assert car2.codes == []  # no new code: the same identity and keys
        assert any(e["event"] == "encrypted" for e in events)
        assert str(s2.connection.peer_resolvable_address or "") != ""  # a private address
    finally:
        await phone.stop()
        for c in (car2, car):
            if c is not None:
                await c.stop()
                await flush(c)


async def test_the_cli_withdraws_and_restores_ancs_on_schedule(
    radio: Radio, tmp_path: Path
) -> None:
    car = TinyCar(radio.spec)  # type: ignore[arg-type]
    await car.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "phone_bridge.cli", "--state-dir", str(tmp_path), "emulate",
        "ios", "--radio", radio.spec, "--json", "--auto-confirm", "--ancs-off-after", "1",
        "--ancs-on-after", "2", env=ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        off = await next_event(proc.stdout, "services-changed")
        on = await next_event(proc.stdout, "services-changed")
        assert (off["ancs"], on["ancs"]) == (False, True) and off["ams"] and on["ams"]
        assert (off["start"], off["end"]) == (on["start"], on["end"])  # ANCS's span, both ways
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 15)
        await car.stop()
        await flush(car)
    assert proc.returncode == 0 and b"Traceback" not in err, err.decode()
