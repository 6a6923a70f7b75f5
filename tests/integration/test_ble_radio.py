"""BLE across processes: `carhub-radio serve` as a subprocess, the car and phones as its
TCP clients (each a fresh virtual controller), and the radio's btsnoop read by tshark."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carhub.ble import BleCarServer, BleLink
from phone_bridge.ble import BleTransport, scan_cars

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
DEVICE_ID = "feedface00112233"
INFO: dict[str, object] = {"id": DEVICE_ID, "name": "Lab Car", "model": "Rig", "version": 1,
                           "lan": []}

PHONE_SCRIPT = """
import asyncio, sys
from phone_bridge.ble import BleTransport
async def main():
    t = await BleTransport.connect(sys.argv[2], radio=sys.argv[1])
    await t.send(b"ping from a phone process")
    print("sent", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


# tests/conftest.py's autouse no_leftovers fails a test that leaves tasks or processes.


class RadioProcess:
    """A running `python -m radio.cli serve` and what it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: str, btsnoop: Path) -> None:
        self.proc = proc
        self.spec = spec
        self.btsnoop = btsnoop
        self.log: list[str] = []

    async def read_until(self, text: str, timeout: float = 10) -> None:
        async def scan() -> None:
            assert self.proc.stderr is not None
            while not any(text in line for line in self.log):
                line = await self.proc.stderr.readline()
                if not line:
                    raise AssertionError(f"radio exited; log: {self.log}")
                self.log.append(line.decode().rstrip())
        await asyncio.wait_for(scan(), timeout)

    async def terminate(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stderr is not None
        rest = await asyncio.wait_for(self.proc.stderr.read(), 10)
        self.log += rest.decode().splitlines()
        return await asyncio.wait_for(self.proc.wait(), 10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def radio_proc(tmp_path: Path) -> AsyncIterator[RadioProcess]:
    port = free_port()
    btsnoop = tmp_path / "air.btsnoop"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "radio.cli", "serve", "--listen", f"127.0.0.1:{port}",
        "--btsnoop", str(btsnoop), env=ENV, stderr=asyncio.subprocess.PIPE,
    )
    radio = RadioProcess(proc, f"tcp-client:127.0.0.1:{port}", btsnoop)
    try:
        await radio.read_until("listening")
        yield radio
    finally:
        await radio.terminate()


class EchoCar:
    def __init__(self, spec: str) -> None:
        self.links: list[BleLink] = []
        self.ended = asyncio.Event()
        self.server = BleCarServer(spec, name="Lab Car", device_id=DEVICE_ID, info=INFO,
                                   on_link=self.on_link)

    async def on_link(self, link: BleLink) -> None:
        self.links.append(link)
        link.session_established()  # a byte pipe: as if the session were up at once
        try:
            while True:
                await link.send(await link.recv())
        except ConnectionError:
            self.ended.set()


async def test_scan_and_100kb_echo_through_the_radio_process(radio_proc: RadioProcess) -> None:
    car = EchoCar(radio_proc.spec)
    await car.server.start()
    try:
        cars = await scan_cars(0.5, radio_proc.spec)
        assert [(c.id_prefix, c.name, c.address) for c in cars] == [
            (DEVICE_ID[:8], "Lab Car", car.server.address)
        ]
        phone = await BleTransport.connect(cars[0].address, radio=radio_proc.spec)
        payload = os.urandom(100_000)
        await phone.send(payload)
        got = bytearray()
        while len(got) < len(payload):
            got += await asyncio.wait_for(phone.recv(), 20)
        assert bytes(got) == payload
        await phone.close()
        await asyncio.wait_for(car.ended.wait(), 5)
    finally:
        await car.server.stop()
    assert await radio_proc.terminate() == 0
    joins = [line for line in radio_proc.log if " join " in line]
    leaves = [line for line in radio_proc.log if " leave " in line]
    assert len(joins) == 3 and len(leaves) == 3  # car, scanning phone, connected phone
    assert len({line.split()[2] for line in joins}) == 3  # three distinct addresses
    assert radio_proc.btsnoop.read_bytes().startswith(b"btsnoop\0")


async def test_killing_a_phone_process_ends_the_car_link(radio_proc: RadioProcess,
                                                         tmp_path: Path) -> None:
    car = EchoCar(radio_proc.spec)
    await car.server.start()
    script = tmp_path / "phone.py"
    script.write_text(PHONE_SCRIPT)
    phone = await asyncio.create_subprocess_exec(
        sys.executable, str(script), radio_proc.spec, car.server.address,
        env=ENV, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert phone.stdout is not None
        assert await asyncio.wait_for(phone.stdout.readline(), 20) == b"sent\n"
        await asyncio.wait_for(_until(lambda: bool(car.links)), 5)
        link = car.links[0]
        phone.kill()
        await phone.wait()
        await asyncio.wait_for(car.ended.wait(), 5)
        assert link.closed
        with pytest.raises(ConnectionError):
            await link.recv()
    finally:
        if phone.returncode is None:
            phone.kill()
            await phone.wait()
        await car.server.stop()


async def test_btsnoop_capture_opens_in_tshark_with_att_traffic(radio_proc: RadioProcess) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("TSHARK NOT INSTALLED: apt-get install -y tshark to check the capture")
    car = EchoCar(radio_proc.spec)
    await car.server.start()
    try:
        phone = await BleTransport.connect(car.server.address, radio=radio_proc.spec)
        await phone.send(b"x" * 1000)
        got = bytearray()
        while len(got) < 1000:
            got += await asyncio.wait_for(phone.recv(), 10)
        await phone.close()
    finally:
        await car.server.stop()
    assert await radio_proc.terminate() == 0
    result = subprocess.run(
        [tshark, "-r", str(radio_proc.btsnoop), "-Y", "btatt"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Write Command" in result.stdout
    assert "Handle Value Notification" in result.stdout
    assert "Read Response" in result.stdout  # the info characteristic


async def _until(predicate: object) -> None:
    while not predicate():  # type: ignore[operator]
        await asyncio.sleep(0.01)
