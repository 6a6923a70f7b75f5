"""``phone-bridge emulate ios`` as a user runs it: help, one-line errors, and a real process
on ``carhub-radio`` that starts, scans and stops cleanly on SIGTERM and on Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phone_bridge.cli", *args], capture_output=True,
                          text=True, env=ENV, timeout=60, check=False)


def test_help_lists_the_options() -> None:
    result = cli("emulate", "ios", "--help")
    assert result.returncode == 0
    for option in ("--radio", "--name", "--media", "--notifications", "--auto-confirm",
                   "--json", "--btsnoop", "--state-dir", "--car"):
        assert option in result.stdout
    assert "ios" in cli("emulate", "--help").stdout


def test_a_real_radio_is_refused_in_one_line() -> None:
    result = cli("emulate", "ios", "--radio", "usb:0", "--auto-confirm")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "phone-bridge: error: emulate ios is emulation only: --radio must be "
        "tcp-client:HOST:PORT, got 'usb:0'")


def test_a_bad_notifications_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "n.json"
    bad.write_text(json.dumps([{"app_id": "a", "title": "t", "category": "gossip"}]))
    result = cli("--state-dir", str(tmp_path), "emulate", "ios", "--radio",
                 "tcp-client:127.0.0.1:1", "--notifications", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "entry 0: unknown category 'gossip'" in result.stderr.strip().splitlines()[-1]


def test_no_radio_listening_is_one_line_and_exit_3(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("--state-dir", str(tmp_path), "emulate", "ios", "--radio",
                 f"tcp-client:127.0.0.1:{port}")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"phone-bridge: error: no emulated radio: cannot open HCI transport "
        f"'tcp-client:127.0.0.1:{port}': [Errno 111] Connect call failed ('127.0.0.1', {port})"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def radio() -> AsyncIterator[str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "radio.cli", "serve", "--listen", f"127.0.0.1:{port}",
        env=ENV, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        async def listening() -> None:
            while b"listening" not in await proc.stderr.readline():  # type: ignore[union-attr]
                pass
        await asyncio.wait_for(listening(), 15)
        yield f"tcp-client:127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 10)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
async def test_it_starts_scans_and_stops_cleanly(
    radio: str, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "phone_bridge.cli", "--state-dir", str(tmp_path), "emulate",
        "ios", "--radio", radio, "--auto-confirm", "--json", "--btsnoop", str(tmp_path / "s.log"),
        env=ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert json.loads(line) == {"event": "scanning"}
        await asyncio.sleep(1)
        assert proc.returncode is None
    finally:
        if proc.returncode is None:
            proc.send_signal(sig)
        _out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == code, err.decode()
    assert b"Traceback" not in err
    assert b"AUTO-CONFIRM IS ON" in err
    assert (tmp_path / "ios-bonds.json").stat().st_mode & 0o777 == 0o600
    capture = (tmp_path / "s.log").read_bytes()
    assert capture.startswith(b"btsnoop\0") and len(capture) > 16 + 24  # header + a packet
