"""A car and a phone on the LAN with a ``CutProxy`` between them, always torn down.

Processes are started and stopped by ``tests.e2e.helpers`` (``Car``, ``Phone``, ``spawn``,
``stop``): each rig stops its own car and phones, even when a test fails, and leaves
other rigs (lanes running beside it) alone. The car runs without mDNS (the
phone dials the proxy's HOST:PORT) on a fixed session port, so a restarted car is found
behind the same proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.ble_helpers import BlePhone, Radio, ble_car
from tests.e2e.helpers import Car, Phone, Result, stop
from tests.faults.proxy import CutProxy

__all__ = ["Rig", "ble_rig", "env_seed", "lan_rig"]

# Every sync of these tests must be over in this long (a 20k sync takes ~2 s here).
SYNC_TIMEOUT = 60.0


@dataclass
class Rig:
    car: Car
    phone: Phone
    phone_id: str
    proxy: CutProxy
    target: str = ""  # the CAR argument of every sync (default: the proxy's HOST:PORT)
    extra: list[str] = field(default_factory=list)  # more sync options (--transport ble)
    radio: Radio | None = None
    procs: list[subprocess.Popen[str]] = field(default_factory=list)  # phones started here

    def sync_args(self, book: Path) -> list[str]:
        target = self.target or self.proxy.endpoint
        return ["sync", target, "--contacts", str(book), "--json", *self.extra]

    def sync(self, book: Path) -> Result:
        """One ``phone-bridge sync`` through the proxy, to its end."""
        return self.phone.run(*self.sync_args(book), timeout=SYNC_TIMEOUT)

    def start_sync(self, book: Path) -> subprocess.Popen[str]:
        proc = self.phone.popen(
            *self.sync_args(book), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.procs.append(proc)
        return proc

    def synced(self, book: Path) -> dict[str, object]:
        """Sync to the end and return the phone's JSON summary (exit 0 asserted)."""
        r = self.sync(book)
        assert r.code == 0, f"sync exit {r.code}: {r.err.strip().splitlines()[-3:]}"
        return dict(json.loads(r.out.strip().splitlines()[-1]))


@contextmanager
def lan_rig(tmp_path: Path, car_dir: Path | None = None) -> Iterator[Rig]:
    """Start a car (auto-confirm, no mDNS), pair a phone directly, put a proxy between.

    ``car_dir``: the car's state directory (default ``tmp_path/car``); its log is beside it.
    """
    car = Car(car_dir or tmp_path / "car", name="Fault Car", extra=["--auto-confirm", "--no-mdns"])
    proxy: CutProxy | None = None
    rig: Rig | None = None
    try:
        car.start()
        car.extra += ["--listen", car.endpoint]  # a restart keeps the port behind the proxy
        phone = Phone(tmp_path / "phone")
        phone_id = str(phone.pair(car)["phone_id"])
        proxy = CutProxy(car.endpoint)
        rig = Rig(car, phone, phone_id, proxy)
        yield rig
    finally:
        if proxy is not None:
            proxy.close()
        # Only this rig's processes: another lane's rig may still be running.
        for proc in rig.procs if rig else []:
            stop(proc)
        car.stop()


@contextmanager
def ble_rig(tmp_path: Path) -> Iterator[Rig]:
    """A radio, a BLE-only car on it, and a phone whose radio connection runs through the
    proxy (paired directly first), so cutting it takes the phone's controller off the air."""
    radio = Radio(tmp_path)
    proxy: CutProxy | None = None
    rig: Rig | None = None
    car: Car | None = None
    try:
        radio.start()
        car = ble_car(tmp_path, radio, "Fault BLE Car")
        phone = BlePhone(Phone(tmp_path / "phone"), radio)
        phone_id = phone.pair(car)
        proxy = CutProxy(f"127.0.0.1:{radio.port}")
        extra = ["--transport", "ble", "--radio", f"tcp-client:{proxy.endpoint}"]
        rig = Rig(car, phone.phone, phone_id, proxy, car.name, extra, radio)
        yield rig
    finally:
        if proxy is not None:
            proxy.close()
        for proc in rig.procs if rig else []:
            stop(proc)
        if car is not None:
            car.stop()
        if radio.proc is not None:
            stop(radio.proc)


def env_seed() -> int | None:
    """``FAULTS_SEED`` repeats a failed run (its seed is printed in every failure)."""
    raw = os.environ.get("FAULTS_SEED")
    return int(raw) if raw else None
