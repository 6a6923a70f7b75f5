"""An iPhone with no app (AMS/ANCS) beside a CarHub phone, both over the emulated radio.

Run: ``.venv/bin/python bench/bench_apple.py [--runs N]`` (from the repository root).

Every part is a real process: ``carhub-radio``, ``carhub run --hci ... --auto-confirm``,
``phone-bridge emulate ios --json`` and ``phone-bridge run --transport ble --json``. Times
are taken on this machine's monotonic clock when a process's JSON line or a dashboard
event (``/api/events``) is read, so they include what a user's screen waits for and
exclude process start-up. The human is excluded: both sides auto-confirm.

- ``iphone_connect_to_notification`` (not bonded / bonded): from the iPhone's ``connected``
  line to the ``notifications`` event carrying its notification. Not bonded: a fresh car
  and iPhone each run (discovery, Insufficient Authentication, Security Request, LE SC
  pairing, key distribution, AMS/ANCS subscriptions, attribute reads). Bonded: the
  iPhone process restarted with its bond (encryption with the stored LTK, no pairing).
  Baseline: the CarHub phone's ``connected`` line (its secure session is up) to the
  ``phones`` event showing its 50 contacts synced, over the same radio.
- ``ams_next_to_dashboard_p99``: ``POST /api/media/command {"action": "next"}`` until the
  ``media`` event shows the new track (car -> phone command, then the phone's now playing
  back), for the iPhone (AMS) beside the CarHub phone (its own protocol).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _util import Figure, median, percentile, print_table, summarise_ms  # noqa: E402

from phone_bridge.sample_data import generate_vcards  # noqa: E402

BIN = Path(sys.executable).parent
MEDIA = ROOT / "samples" / "media"
HOST = "127.0.0.1"
Event = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Proc:
    """A subprocess whose stdout JSON lines are read in a thread and time-stamped."""

    def __init__(self, args: list[str], log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL)  # fmt: skip
        self.lines: list[tuple[float, Event]] = []
        self._task = asyncio.get_running_loop().run_in_executor(None, self._read)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.startswith(b"{"):
                self.lines.append((time.monotonic(), json.loads(raw)))

    async def wait(self, pred: Callable[[Event], bool], timeout: float = 60) -> tuple[float, Event]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for seen in self.lines:
                if pred(seen[1]):
                    return seen
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args[:3]} exited {self.proc.returncode}")
            await asyncio.sleep(0.005)
        raise TimeoutError(f"no matching line from {self.proc.args[:3]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class Dashboard:
    """The car's ``/api/events``, every event time-stamped as it arrives."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/api/events"
        self.events: list[tuple[float, Event]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Dashboard:
        ready = asyncio.Event()

        async def listen() -> None:
            async with ws_connect(self.url, max_size=None) as ws:
                ready.set()
                async for raw in ws:
                    self.events.append((time.monotonic(), json.loads(raw)))

        self._task = asyncio.create_task(listen())
        await asyncio.wait_for(ready.wait(), 10)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def wait(self, pred: Callable[[Event], bool], after: float, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, ev in self.events:
                if at >= after and pred(ev):
                    return at
            await asyncio.sleep(0.002)
        raise TimeoutError("no matching dashboard event")


class Lab:
    """One radio and one car in a work dir; iPhones and phones come and go."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.spec = f"tcp-client:{HOST}:{self.port}"
        self.procs: list[Proc] = []

    async def start(self, car_dir: str) -> str:
        radio = self.spawn([str(BIN / "carhub-radio"), "serve", "--listen", f"{HOST}:{self.port}"],
                           "radio")  # fmt: skip
        await self._listening(radio)
        car = self.spawn([str(BIN / "carhub"), "run", "--name", "Bench Car",
                          "--state-dir", str(self.work / car_dir), "--listen", f"{HOST}:0",
                          "--ui", f"{HOST}:0", "--no-mdns", "--hci", self.spec,
                          "--pairing", "open", "--pairing-window", "0", "--auto-confirm",
                          "--json"], "car")  # fmt: skip
        _, ready = await car.wait(lambda e: e.get("event") == "ready")
        return str(ready["dashboard"]).rstrip("/")

    async def _listening(self, radio: Proc) -> None:
        for _ in range(300):
            with socket.socket() as s:
                if s.connect_ex((HOST, self.port)) == 0:
                    return
            await asyncio.sleep(0.02)
        raise RuntimeError("the radio did not listen")

    def spawn(self, args: list[str], name: str) -> Proc:
        proc = Proc(args, self.work / f"{name}.log")
        self.procs.append(proc)
        return proc

    def iphone(self, state: str, notifications: Path) -> Proc:
        return self.spawn([str(BIN / "phone-bridge"), "--state-dir", str(self.work / state),
                           "emulate", "ios", "--radio", self.spec, "--media", str(MEDIA),
                           "--notifications", str(notifications), "--auto-confirm", "--json"],
                          "iphone")  # fmt: skip

    def phone(self, state: str, contacts: Path) -> Proc:
        return self.spawn([str(BIN / "phone-bridge"), "--state-dir", str(self.work / state),
                           "run", "Bench Car", "--transport", "ble", "--radio", self.spec,
                           "--contacts", str(contacts), "--media", str(MEDIA),
                           "--auto-confirm", "--json"], "phone")  # fmt: skip

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def note_file(path: Path, title: str) -> Path:
    entry = {"app_id": "com.example.bench", "app_name": "Bench", "title": title,
             "message": "m", "category": "other", "delay": 0}  # fmt: skip
    path.write_text(json.dumps([entry]))
    return path


def has_note(title: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "notifications" and any(n["title"] == title for n in e["data"])


async def iphone_connects(work: Path, runs: int) -> tuple[list[float], list[float]]:
    """(not bonded, bonded) seconds from the iPhone's connect to its notification."""
    fresh, bonded = [], []
    for i in range(runs):
        lab = Lab(work / f"ios{i}")
        lab.work.mkdir()
        try:
            url = await lab.start("car")
            async with Dashboard(url) as dash:
                for kind, out in (("fresh", fresh), ("bonded", bonded)):
                    title = f"{kind} {i}"
                    phone = lab.iphone("iphone", note_file(lab.work / f"{kind}.json", title))
                    at, _ = await phone.wait(lambda e: e.get("event") == "connected")
                    done = await dash.wait(has_note(title), after=0)
                    out.append(done - at)
                    phone.stop()
                    lab.procs.remove(phone)
        finally:
            lab.stop()
    return fresh, bonded


def synced(count: int) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "phones" and any(
        p["contacts"] == count and "carhub" in p.get("profiles", ["carhub"]) for p in e["data"])


async def carhub_connects(work: Path, runs: int) -> list[float]:
    """Seconds from the CarHub phone's ``connected`` line to its contacts on the dashboard."""
    out = []
    for i in range(runs):
        lab = Lab(work / f"carhub{i}")
        lab.work.mkdir()
        contacts = lab.work / "c.vcf"
        contacts.write_bytes(generate_vcards(50, seed=i))
        try:
            url = await lab.start("car")
            async with Dashboard(url) as dash:
                phone = lab.phone("phone", contacts)
                at, _ = await phone.wait(lambda e: e.get("event") == "connected")
                done = await dash.wait(synced(50), after=0)
                out.append(done - at)
        finally:
            lab.stop()
    return out


def moved(source: str, before: str | None) -> Callable[[Event], bool]:
    """A ``media`` event of ``source`` showing a track other than ``before``."""
    return lambda e: (e["type"] == "media" and e["data"].get("source") == source
                      and e["data"]["track_id"] not in (None, before))  # fmt: skip


async def next_round_trips(url: str, dash: Dashboard, source: str, runs: int) -> list[float]:
    """``next`` until a ``media`` event of ``source`` shows another track, ``runs`` times."""
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for _ in range(runs + 1):
            before = (await client.get("/api/media")).json()["track_id"]
            start = time.monotonic()
            r = await client.post("/api/media/command", json={"action": "next"})
            r.raise_for_status()
            await dash.wait(moved(source, before), after=start)
            out.append(time.monotonic() - start)
            await asyncio.sleep(0.05)  # let the player settle before the next one
    return out[1:]  # the first warms up both sides


async def media_round_trips(work: Path, runs: int) -> tuple[list[float], list[float]]:
    """(AMS, CarHub) next-to-dashboard round trips, each phone alone with its own car."""
    results = []
    for kind in ("ams", "carhub"):
        lab = Lab(work / f"media-{kind}")
        lab.work.mkdir()
        try:
            url = await lab.start("car")
            async with Dashboard(url) as dash:
                if kind == "ams":
                    lab.iphone("iphone", note_file(lab.work / "n.json", "x"))
                else:
                    contacts = lab.work / "c.vcf"
                    contacts.write_bytes(generate_vcards(10, seed=1))
                    lab.phone("phone", contacts)
                await dash.wait(moved(kind, None), after=0)
                results.append(await next_round_trips(url, dash, kind, runs))
        finally:
            lab.stop()
    return results[0], results[1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="connect runs per figure")
    parser.add_argument("--commands", type=int, default=30, help="media round trips per phone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-apple-") as tmp:
        work = Path(tmp)
        fresh, bonded = await iphone_connects(work, args.runs)
        base = await carhub_connects(work, args.runs)
        ams, carhub = await media_round_trips(work, args.commands)
    samples = [("iPhone not bonded", fresh), ("iPhone bonded", bonded), ("CarHub phone", base),
               ("AMS next", ams), ("CarHub next", carhub)]  # fmt: skip
    for label, times in samples:
        print(f"  {label}: {summarise_ms(times)}")
    print_table(
        [
            Figure("iphone_connect_to_notification_unbonded", median(fresh), median(base), "s"),
            Figure("iphone_connect_to_notification_bonded", median(bonded), median(base), "s"),
            Figure("ams_next_to_dashboard_p99", percentile(ams, 99) * 1000,
                   percentile(carhub, 99) * 1000, "ms"),
        ],
        {
            "(connect)": "the CarHub phone's connected line to its 50 contacts on the dashboard",
            "(next)": "the same next-track round trip through a CarHub phone",
        },
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main())
