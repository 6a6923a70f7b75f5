"""Make the captures the dissector tests read: a BLE pairing + sync, and the same over LAN.

Both run the real console scripts (``carhub-radio``, ``carhub run``, ``phone-bridge``) through
the e2e helpers, so every process is tracked and stopped by ``stop_all``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.e2e.ble_helpers import BlePhone, Radio, ble_car
from tests.e2e.helpers import Car, Phone, sample_vcf, spawn, stop

__all__ = ["ble_capture", "lan_capture"]


def ble_capture(workdir: Path, radio: Radio, contacts: int = 20) -> Path:
    """Pair and sync over the emulated radio; return the car's btsnoop file.

    The car's capture holds both connections (pairing, then the sync's session).
    """
    cap = workdir / "car.btsnoop"
    car = ble_car(workdir, radio, "BLE Car", btsnoop=cap)
    phone = BlePhone(Phone(workdir / "phone"), radio)
    phone.pair(car)
    r = phone.sync(car, sample_vcf(workdir / "c.vcf", contacts))
    assert r.code == 0, r
    car.stop()  # flushes the capture
    return cap


def lan_capture(workdir: Path, contacts: int = 20) -> Path:
    """Pair and sync over loopback WebSocket while dumpcap records the car's port."""
    dumpcap = shutil.which("dumpcap")
    assert dumpcap, "dumpcap is not installed: apt-get install tshark (CI installs it)"
    car = Car(workdir / "car", name="LAN Car", extra=["--auto-confirm", "--no-mdns"]).start()
    port = int(car.endpoint.rsplit(":", 1)[1].split("/")[0])
    cap = workdir / "lan.pcapng"
    dump = spawn(
        [dumpcap, "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(cap)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_capturing(dump, cap)
    phone = Phone(workdir / "phone")
    phone.pair(car)
    r = phone.sync(car, sample_vcf(workdir / "c.vcf", contacts))
    assert r.code == 0, r
    time.sleep(0.5)  # let dumpcap write the last packets before it stops
    stop(dump)
    car.stop()
    return cap


def _wait_capturing(dump: subprocess.Popen[str], cap: Path, timeout: float = 10.0) -> None:
    """dumpcap writes its file header once the interface is open: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cap.exists() and cap.stat().st_size > 0:
            time.sleep(0.2)
            return
        if dump.poll() is not None:
            err = dump.stderr.read() if dump.stderr else ""
            raise AssertionError(f"dumpcap exited: {err}")
        time.sleep(0.05)
    raise AssertionError("dumpcap did not start capturing")
