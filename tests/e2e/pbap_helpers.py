"""Drive ``phone-bridge emulate android`` (an emulated phone offering only PBAP) as a subprocess.

Like ``ios_helpers.IPhoneProc``: its ``--json`` events go to a file the test reads as it
grows, and its state dir (link keys, DatabaseIdentifier, counters, BD_ADDR) survives
restarts of the process, as a real phone's does.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.ble_helpers import Radio
from tests.e2e.helpers import PHONE, ROOT, Car, EventLines, poll, spawn, stop

CALLS = ROOT / "samples" / "calls.vcf"


@dataclass
class AndroidProc(EventLines):
    """One emulated Android phone serving ``contacts`` over PBAP."""

    label = "phone"

    state_dir: Path
    radio: Radio
    contacts: Path
    calls: Path | None = CALLS
    car: str | None = None  # the car's Classic address; None: found over LE
    auto_confirm: bool = True
    btsnoop: Path | None = None
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None

    def start(self) -> AndroidProc:
        """Start (or restart) the phone; its events append to one file across restarts."""
        args = [PHONE, "--state-dir", str(self.state_dir), "emulate", "android",
                "--radio", self.radio.spec, "--contacts", str(self.contacts), "--json",
                *self.extra]  # fmt: skip
        args += ["--calls", str(self.calls)] if self.calls else []
        args += ["--car", self.car] if self.car else []
        args += ["--auto-confirm"] if self.auto_confirm else []
        args += ["--btsnoop", str(self.btsnoop)] if self.btsnoop else []
        with self.events_path.open("a") as out, self.log_path.open("a") as err:
            self.proc = spawn(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def address(self) -> str:
        """The phone's BD_ADDR, as its ``up`` event printed it."""
        return str(self.wait_event("up")["address"])

    @property
    def phone_id(self) -> str:
        return self.address.replace(":", "").lower()


def classic_car(car: Car) -> str:
    """The car's Classic address from ``GET /api/status`` (it must have one)."""
    address = car.get("/api/status")["classic"]
    assert address, f"the car has no Classic address: {car.get('/api/status')}"
    return str(address)


def wait_pulled(car: Car, phone_id: str, contacts: int, timeout: float = 60) -> dict[str, Any]:
    """Wait until ``GET /api/phones`` shows the phone with ``contacts`` and a last sync."""

    def done() -> dict[str, Any] | None:
        for p in car.phones():
            if p["id"] == phone_id and p["contacts"] == contacts and p["last_sync"]:
                return p
        return None

    return poll(done, timeout=timeout, what=f"{contacts} contacts of {phone_id} on the car")


def pulls(phone: AndroidProc, path: str = "telecom/pb.vcf") -> list[dict[str, Any]]:
    """The phone's ``pulled`` events for ``path``."""
    return [e for e in phone.events("pulled") if e.get("path") == path]
