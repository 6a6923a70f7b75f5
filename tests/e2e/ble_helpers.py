"""Drive ``carhub-radio``, BLE cars and BLE-only phones as subprocesses.

Every process goes through ``tests.e2e.helpers.spawn``, so ``stop_all`` (called by the
fixtures even when a test fails) tears down radios as well as cars and phones.
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.helpers import BIN, Car, Phone, Result, poll, spawn, stop

RADIO = str(BIN / "carhub-radio")


def free_port() -> int:
    """A TCP port nobody listens on right now (the radio must own a fixed port to restart)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Radio:
    """A ``carhub-radio serve`` subprocess on a fixed port, restartable on that port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    btsnoop: Path | None = None
    proc: subprocess.Popen[str] | None = None
    starts: int = 0

    @property
    def spec(self) -> str:
        return f"tcp-client:127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"radio-{self.port}.log"

    def start(self, timeout: float = 15.0) -> Radio:
        """Start (or restart) the radio and wait until it says it is listening."""
        self.starts += 1
        extra = ["--btsnoop", str(self.btsnoop)] if self.btsnoop else []
        with self.log_path.open("a") as log:
            self.proc = spawn(
                [RADIO, "serve", "--listen", f"127.0.0.1:{self.port}", *extra],
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        proc = self.proc
        poll(
            lambda: self.log().count("listening on") >= self.starts
            or (proc.poll() is not None and _raise(f"radio exited: {self.log()}")),
            timeout=timeout, what="the radio to listen",
        )  # fmt: skip
        return self

    def kill(self) -> None:
        """SIGKILL: the air vanishes with no goodbye to any controller."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)
        stop(self.proc)  # forget it

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def _raise(msg: str) -> bool:
    raise RuntimeError(msg)


def ble_car(
    workdir: Path,
    radio: Radio,
    name: str,
    *,
    auto_confirm: bool = True,
    mdns: bool = False,
    btsnoop: Path | None = None,
) -> Car:
    """Start a car whose BLE side is on ``radio`` (mDNS off unless asked for)."""
    extra = ["--hci", radio.spec]
    extra += [] if mdns else ["--no-mdns"]
    extra += ["--auto-confirm"] if auto_confirm else []
    extra += ["--btsnoop", str(btsnoop)] if btsnoop else []
    index = len(list(workdir.glob("car-*.log")))
    car = Car(workdir / f"car-{index}", name=name, extra=extra)
    car.start()
    assert car.ready.get("ble"), f"the car has no BLE address: {car.ready}"
    return car


@dataclass
class BlePhone:
    """A phone that only ever uses BLE through ``radio`` (``--transport ble``)."""

    phone: Phone
    radio: Radio

    @property
    def ble(self) -> list[str]:
        return ["--transport", "ble", "--radio", self.radio.spec]

    def run(self, *args: str, timeout: float = 60, **kw: Any) -> Result:
        return self.phone.run(*args, *self.ble, timeout=timeout, **kw)

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        return self.phone.popen(*args, *self.ble, **kw)

    def pair(self, car: Car, *extra: str) -> str:
        """Pair (the car auto-confirms) by name over BLE; return this phone's id."""
        r = self.run("pair", car.name, "--auto-confirm", "--json", *extra)
        assert r.code == 0, r
        assert r.json["transport"] == "ble", r
        return str(self.phone.status()["phone_id"])

    def sync(self, car: Car, contacts: Path, *extra: str) -> Result:
        return self.run("sync", car.name, "--contacts", str(contacts), "--json", *extra)

    def discover(self, *extra: str) -> list[dict[str, Any]]:
        r = self.phone.run("discover", "--timeout", "2", "--json", *extra)
        assert r.code == 0, r
        return list(json.loads(r.out))


def corpus_file(corpus: Path, dest: Path) -> Path:
    """Every quirk file in one export; UTF-16 is a whole-file encoding and a UTF-8 BOM is
    only meaningful at the start of a file, so the first is left out and the second cut."""
    parts = [
        f.read_bytes().removeprefix(b"\xef\xbb\xbf")
        for f in sorted(corpus.glob("*.vcf"))
        if "utf16" not in f.name
    ]
    dest.write_bytes(b"".join(parts))
    return dest


def phone_row(car: Car, phone_id: str) -> dict[str, Any] | None:
    """The car's ``/api/phones`` row for ``phone_id``, if listed."""
    return next((p for p in car.phones() if p["id"] == phone_id), None)


def ble_connected(car: Car, phone_id: str) -> bool:
    """True once the car lists the phone as connected over BLE."""
    row = phone_row(car, phone_id)
    return bool(row and row["connected"] and row["transport"] == "ble")
