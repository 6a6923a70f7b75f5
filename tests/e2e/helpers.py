"""Drive the ``carhub`` and ``phone-bridge`` console scripts as a user would.

Every process started here is tracked and torn down (SIGTERM, then SIGKILL) by
``stop_all``, which the e2e fixtures call even when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

# One result type for the old helpers and the plugin: tests mix the two.
from carhub.testing.processes import Result

BIN = Path(sys.executable).parent
CARHUB = str(BIN / "carhub")
PHONE = str(BIN / "phone-bridge")
ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "samples" / "media"
T = TypeVar("T")

_LIVE: list[subprocess.Popen[str]] = []


def stop(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    """SIGTERM, wait ``grace`` seconds, then SIGKILL (only this one process)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc in _LIVE:
        _LIVE.remove(proc)


def stop_all() -> None:
    for proc in list(_LIVE):
        stop(proc)


def spawn(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    proc = subprocess.Popen(args, text=True, **kw)
    _LIVE.append(proc)
    return proc


def poll(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, AssertionError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


@dataclass
class Car:
    """A running ``carhub run`` subprocess."""

    state_dir: Path
    name: str = "E2E Car"
    pairing: str = "open"
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    ready: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    def start(self, timeout: float = 20.0) -> Car:
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}.log"
        log = self.log_path.open("a")
        self.proc = spawn(
            [CARHUB, "run", "--name", self.name, "--state-dir", str(self.state_dir),
             "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0",
             "--mdns-interface", "127.0.0.1", "--pairing", self.pairing, "--json",
             *self.extra],
            stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the car prints exactly one line, then logs
        if not line:
            raise AssertionError(f"car did not start: {self.log()}")
        self.ready = json.loads(line)
        assert self.ready["event"] == "ready"
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    @property
    def id(self) -> str:
        return str(self.ready["id"])

    @property
    def endpoint(self) -> str:
        return str(self.ready["endpoint"])

    @property
    def url(self) -> str:
        return str(self.ready["dashboard"]).rstrip("/")

    def get(self, path: str, **kw: Any) -> Any:
        r = httpx.get(self.url + path, timeout=5, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, **kw: Any) -> Any:
        r = httpx.post(self.url + path, timeout=5, **kw)
        r.raise_for_status()
        return r.json()

    def phones(self) -> list[dict[str, Any]]:
        return list(self.get("/api/phones"))

    def contacts(self, phone_id: str, **params: Any) -> dict[str, Any]:
        return dict(self.get(f"/api/phones/{phone_id}/contacts", params=params))

    def all_contacts(self, phone_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.contacts(phone_id, limit=1000, offset=len(items))
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items


@dataclass
class Phone:
    """A ``phone-bridge`` state directory; each call is one CLI run."""

    state_dir: Path

    def args(self, *args: str) -> list[str]:
        return [PHONE, "--state-dir", str(self.state_dir), *args]

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> Result:
        proc = spawn(
            self.args(*args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = proc.communicate(input, timeout=timeout)
        finally:
            stop(proc)
        return Result(proc.returncode, out, err)

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        return spawn(self.args(*args), **kw)

    def pair(self, car: Car) -> dict[str, Any]:
        """Pair (car started with --auto-confirm) and return ``status --json``'s car row."""
        r = self.run("pair", car.endpoint, "--auto-confirm", "--json")
        assert r.code == 0, r
        return self.status()

    def status(self) -> dict[str, Any]:
        r = self.run("status", "--json")
        assert r.code == 0, r
        return dict(json.loads(r.out))

    def sync(self, car: Car, contacts: Path, *extra: str) -> Result:
        return self.run("sync", car.endpoint, "--contacts", str(contacts), "--json", *extra)


def sample_vcf(path: Path, count: int) -> Path:
    """Write ``count`` generated contacts to ``path`` with the project's generator."""
    with path.open("wb") as fh:
        subprocess.run(
            [sys.executable, "-m", "phone_bridge.sample_data", str(count)],
            stdout=fh, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    return path


class EventLines:
    """A process whose ``--json`` lines go to ``STATE-events.jsonl`` and stderr to
    ``STATE.log`` beside its state dir, so a test reads them as they grow, across restarts.

    For dataclasses with ``state_dir`` and ``proc`` fields (``ios_helpers.IPhoneProc``,
    ``pbap_helpers.AndroidProc``); ``label`` names the process in failures.
    """

    state_dir: Path
    proc: subprocess.Popen[str] | None
    label = "process"

    @property
    def events_path(self) -> Path:
        return self.state_dir.with_name(self.state_dir.name + "-events.jsonl")

    @property
    def log_path(self) -> Path:
        return self.state_dir.with_name(self.state_dir.name + ".log")

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every event printed so far (of ``kind`` if given), oldest first."""
        if not self.events_path.exists():
            return []
        out = [json.loads(line) for line in self.events_path.read_text().splitlines() if line]
        return [e for e in out if kind is None or e.get("event") == kind]

    def wait_event(self, kind: str, count: int = 1, timeout: float = 30) -> dict[str, Any]:
        """Wait until ``count`` events of ``kind`` were printed; return the last."""

        def seen() -> list[dict[str, Any]]:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the {self.label} exited {self.proc.returncode}: {self.log()}")
            found = self.events(kind)
            return found if len(found) >= count else []

        return poll(seen, timeout=timeout, what=f"{count} {self.label} {kind!r} event(s)")[-1]

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
