"""Lab density: N cars and N phones on one machine, each pair paired and synced, then idle.

Run: ``.venv/bin/python bench/bench_lab.py [--pairs 50] [--transport lan|radio] [--quick]``

Every device is a real process, started as a user starts it: ``carhub run --pairing open
--auto-confirm --json`` (its own state dir and ports) and ``phone-bridge run CAR --contacts
FILE --auto-confirm --json`` (its own state dir and a book of ``--contacts`` generated
contacts, ``generate_vcards(n, seed=1000 + i)``), which pairs on first contact and syncs.

Once its phone is synced, each car's pairing window is closed (``POST /api/pairing/close``),
as a car user would; ``carhub run`` starts with it closed.

- ``--transport lan``: each car on its own loopback ports and announcing over mDNS on
  127.0.0.1 (``--no-mdns`` to turn that off); each phone dials its car's ``HOST:PORT``.
- ``--transport radio``: one ``carhub-radio serve`` air; every car on it (``--hci``,
  no mDNS) and every phone BLE only (``--transport ble --radio``), naming its car by id.

Figures, once every pair is synced and the lab has been idle ``--settle`` seconds:

- ``bring_up``: seconds from the first process started until every mirror is complete;
- ``total_rss`` (sum of ``VmRSS`` of every process, the radio included) and ``total_pss``
  (sum of ``Pss`` of ``/proc/PID/smaps_rollup``: a shared library page counted once, not
  once per process), per-car and per-phone medians;
- ``idle_cpu``: CPU ticks (``utime + stime``) of every process over ``--window`` seconds,
  as % of one core; the same for cars, phones and the radio apart;
- ``mirrors_consistent``: pairs whose car's ``GET /api/phones/{id}/contacts`` has the
  phone's whole book (same total, every uid with the same name, numbers and e-mails) and
  whose SQLite mirror equals it field by field (``bench_load.mirror_errors``).

Baselines in the same run: before the lab, one pair alone (synced, idle) gives one car's
and one phone's RSS, times N; after it, N bare ``asyncio.run(asyncio.sleep(...))``
processes give the idle CPU and RSS of doing nothing in Python on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _util import Figure, median, print_table  # noqa: E402
from bench_lan import load  # noqa: E402
from bench_load import mirror_errors  # noqa: E402

from phone_bridge.engine import Contacts  # noqa: E402
from phone_bridge.sample_data import generate_vcards  # noqa: E402
from protocol.contacts import Contact  # noqa: E402

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TICK = os.sysconf("SC_CLK_TCK")
BARE = "import asyncio; asyncio.run(asyncio.sleep(3600))"


@dataclass
class Device:
    """One process of the lab: its command, state dir and, for a car, its ready line."""

    kind: str  # "car", "phone", "radio", "bare"
    state: Path
    proc: subprocess.Popen[str]
    ready: dict[str, Any] = field(default_factory=dict)
    book: Contacts | None = None


def proc_kb(pid: int, key: str, path: str = "status") -> int:
    """A ``key:`` line (in kB) of ``/proc/PID/status`` or ``smaps_rollup`` (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    """User + system CPU ticks of a process (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lab:
    """Starts and stops the lab's processes; every one is stopped by ``close``."""

    def __init__(self, work: Path, transport: str, contacts: int, mdns: bool) -> None:
        self.work = work
        self.transport = transport
        self.contacts = contacts
        self.mdns = mdns
        self.devices: list[Device] = []
        self.radio_spec = ""

    def spawn(self, kind: str, state: Path, args: list[str], **kw: Any) -> Device:
        log = (self.work / f"{state.name}.log").open("a")
        proc = subprocess.Popen(args, text=True, env=ENV, stderr=log, **kw)
        log.close()
        dev = Device(kind, state, proc)
        self.devices.append(dev)
        return dev

    def start_radio(self) -> None:
        port = free_port()
        self.radio_spec = f"tcp-client:127.0.0.1:{port}"
        dev = self.spawn("radio", self.work / "radio",
                         [str(BIN / "carhub-radio"), "serve", "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL)  # fmt: skip
        log = self.work / "radio.log"
        _wait(lambda: "listening on" in log.read_text(), 30, "the radio", dev)

    def start_car(self, i: int) -> Device:
        """Start car ``i``; its ready line is read by ``wait_ready``."""
        args = [str(BIN / "carhub"), "run", "--name", f"Lab Car {i}",
                "--state-dir", str(self.work / f"car{i}"), "--listen", "127.0.0.1:0",
                "--ui", "127.0.0.1:0", "--pairing", "open", "--pairing-window", "0",
                "--auto-confirm", "--json"]  # fmt: skip
        if self.transport == "radio":
            args += ["--hci", self.radio_spec, "--no-mdns"]
        else:
            args += ["--mdns-interface", "127.0.0.1"] if self.mdns else ["--no-mdns"]
        return self.spawn("car", self.work / f"car{i}", args, stdout=subprocess.PIPE)

    def start_phone(self, i: int, car: Device) -> Device:
        """Write phone ``i``'s book and start ``phone-bridge run`` against ``car``."""
        data = generate_vcards(self.contacts, seed=1000 + i)
        vcf = self.work / f"phone{i}.vcf"
        vcf.write_bytes(data)
        state = self.work / f"phone{i}"
        args = [str(BIN / "phone-bridge"), "--state-dir", str(state), "run"]
        if self.transport == "radio":
            args += [car.ready["id"], "--transport", "ble", "--radio", self.radio_spec]
        else:
            args += [car.ready["endpoint"], "--transport", "lan"]
        args += ["--contacts", str(vcf), "--auto-confirm", "--name", f"Lab Phone {i}", "--json"]
        dev = self.spawn("phone", state, args, stdout=subprocess.DEVNULL)
        dev.book = load(data)
        return dev

    def of(self, kind: str) -> list[Device]:
        return [d for d in self.devices if d.kind == kind]

    def close(self) -> None:
        """SIGTERM every process (phones first, the radio last), then SIGKILL stragglers."""
        order = {"phone": 0, "bare": 0, "car": 1, "radio": 2}
        for kind in sorted(order, key=order.__getitem__):
            for d in self.of(kind):
                if d.proc.poll() is None:
                    d.proc.send_signal(signal.SIGTERM)
            for d in self.of(kind):
                try:
                    d.proc.wait(10)
                except subprocess.TimeoutExpired:
                    d.proc.kill()
                    d.proc.wait(5)


def wait_ready(car: Device) -> None:
    """Read the car's one ``ready`` line."""
    assert car.proc.stdout is not None
    line = car.proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a car did not start; see {car.state}.log")
    car.ready = json.loads(line)


def _wait(check: Callable[[], bool], timeout: float, what: str, dev: Device | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dev is not None and dev.proc.poll() is not None:
            raise RuntimeError(f"{what} exited {dev.proc.returncode}; see {dev.state}.log")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError, KeyError, IndexError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def phone_id_on(car: Device, http: httpx.Client) -> str:
    """The id of the one phone paired with ``car`` (KeyError until there is one)."""
    phones = http.get(f"{car.ready['dashboard']}api/phones").json()
    if not phones:
        raise KeyError("no phone yet")
    return str(phones[0]["id"])


def synced(car: Device, phone: Device, http: httpx.Client) -> bool:
    """True once the car holds the phone's whole book."""
    assert phone.book is not None
    pid = phone_id_on(car, http)
    url = f"{car.ready['dashboard']}api/phones/{pid}/contacts"
    return bool(http.get(url, params={"limit": 0}).json()["total"] == len(phone.book.contacts))


def mirror_problems(car: Device, phone: Device, http: httpx.Client) -> list[str]:
    """What differs between the car's copy (REST API and SQLite) and the phone's book.

    Returns:
        One line per difference (empty when the car shows exactly the phone's book).
    """
    assert phone.book is not None
    pid = phone_id_on(car, http)
    items: list[dict[str, Any]] = []
    url = f"{car.ready['dashboard']}api/phones/{pid}/contacts"
    while True:
        page = http.get(url, params={"limit": 1000, "offset": len(items)}).json()
        items += page["items"]
        if not page["items"] or len(items) >= page["total"]:
            break
    errors = mirror_errors(car.state / "carhub.sqlite3", pid, phone.book)
    if page["total"] != len(phone.book.contacts):
        errors.append(f"API total {page['total']} != {len(phone.book.contacts)}")
    want = {c.uid: shown(c) for c in phone.book.contacts}
    got = {item["uid"]: item for item in items}
    if differ := [uid for uid, item in want.items() if got.get(uid) != item]:
        errors.append(f"{len(differ)} contacts shown differently by the API, e.g. {differ[0]}")
    return errors


def shown(c: Contact) -> dict[str, Any]:
    """The ``GET /api/phones/{id}/contacts`` item of a contact the phone sent."""
    phones = [{"number": p.number, "type": p.type, "label": p.label} for p in c.phones]
    emails = [e.address for e in c.emails]
    return {"uid": c.uid, "name": c.fn, "phones": phones, "emails": emails, "org": c.org}


def snapshot(devs: Iterable[Device]) -> dict[int, int]:
    return {d.proc.pid: cpu_ticks(d.proc.pid) for d in devs}


def idle_cpu_pct(devs: list[Device], window: float) -> dict[str, float]:
    """% of one core each kind of device used over ``window`` seconds (and "all")."""
    before, t0 = snapshot(devs), time.monotonic()
    time.sleep(window)
    after, elapsed = snapshot(devs), time.monotonic() - t0
    used: dict[str, float] = {"all": 0.0}
    for d in devs:
        pct = 100 * (after[d.proc.pid] - before[d.proc.pid]) / TICK / elapsed
        used[d.kind] = used.get(d.kind, 0.0) + pct
        used["all"] += pct
    return used


def memory(devs: list[Device]) -> dict[str, list[int]]:
    """VmRSS and Pss (kB) of every device, by kind, plus "rss"/"pss" over all."""
    out: dict[str, list[int]] = {"rss": [], "pss": []}
    for d in devs:
        rss = proc_kb(d.proc.pid, "VmRSS")
        out.setdefault(d.kind, []).append(rss)
        out["rss"].append(rss)
        out["pss"].append(proc_kb(d.proc.pid, "Pss", "smaps_rollup"))
    return out


def bring_up(lab: Lab, pairs: int, http: httpx.Client, first: int = 0) -> float:
    """Start ``pairs`` cars, then their phones; return seconds until all are synced."""
    t0 = time.monotonic()
    cars = [lab.start_car(first + i) for i in range(pairs)]
    for car in cars:
        wait_ready(car)
    phones = [lab.start_phone(first + i, car) for i, car in enumerate(cars)]
    for car, phone in zip(cars, phones, strict=True):
        _wait(lambda c=car, p=phone: synced(c, p, http), 120 + 3 * pairs,
              f"{phone.state.name} to sync", phone)  # fmt: skip
        # Paired: the car user closes the window (a car starts with it closed).
        http.post(f"{car.ready['dashboard']}api/pairing/close").raise_for_status()
    return time.monotonic() - t0


def solo_baseline(args: argparse.Namespace, http: httpx.Client) -> tuple[int, int]:
    """One pair alone, synced and idle: (car RSS, phone RSS) in kB."""
    work = Path(tempfile.mkdtemp(prefix="bench_lab_solo."))
    lab = Lab(work, args.transport, args.contacts, not args.no_mdns)
    try:
        if args.transport == "radio":
            lab.start_radio()
        bring_up(lab, 1, http)
        time.sleep(args.settle)
        mem = memory(lab.devices)
        return mem["car"][0], mem["phone"][0]
    finally:
        lab.close()
        shutil.rmtree(work, ignore_errors=True)


def bare_baseline(n: int, window: float, work: Path) -> tuple[float, int]:
    """N bare asyncio sleepers: (idle CPU % of one core, total RSS kB)."""
    lab = Lab(work, "lan", 0, False)
    try:
        for i in range(n):
            lab.spawn("bare", work / f"bare{i}", [sys.executable, "-c", BARE])
        time.sleep(2)
        cpu = idle_cpu_pct(lab.devices, window)["all"]
        return cpu, sum(memory(lab.devices)["rss"])
    finally:
        lab.close()


def run(args: argparse.Namespace) -> int:
    """Run the lab and print its table; return the number of inconsistent mirrors."""
    n = args.pairs
    work = Path(tempfile.mkdtemp(prefix="bench_lab."))
    lab = Lab(work, args.transport, args.contacts, not args.no_mdns)
    with httpx.Client(timeout=30) as http:
        solo_car, solo_phone = solo_baseline(args, http)
        print(f"one pair alone: car {solo_car / 1024:.1f} MB, phone {solo_phone / 1024:.1f} MB")
        try:
            if args.transport == "radio":
                lab.start_radio()
            up = bring_up(lab, n, http)
            print(f"{n} pairs up and synced in {up:.1f} s; idle {args.settle:.0f} s ...")
            time.sleep(args.settle)
            cpu = idle_cpu_pct(lab.devices, args.window)
            mem = memory(lab.devices)
            bad = 0
            for car, phone in zip(lab.of("car"), lab.of("phone"), strict=True):
                if problems := mirror_problems(car, phone, http):
                    bad += 1
                    print(f"  MISMATCH {car.state.name}: " + "; ".join(problems))
        finally:
            lab.close()
    bare_cpu, bare_rss = bare_baseline(2 * n, args.window, work)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print_figures(args, up, cpu, mem, bad, (solo_car, solo_phone), (bare_cpu, bare_rss))
    return bad


def print_figures(
    args: argparse.Namespace,
    up: float,
    cpu: dict[str, float],
    mem: dict[str, list[int]],
    bad: int,
    solo: tuple[int, int],
    bare: tuple[float, int],
) -> None:
    n, mb = args.pairs, 1 / 1024
    total_rss, total_pss = sum(mem["rss"]) * mb, sum(mem["pss"]) * mb
    car_rss, phone_rss = median(mem["car"]) * mb, median(mem["phone"]) * mb
    t = args.transport
    figures = [
        Figure(f"lab_{t}_bring_up_{n}_pairs", up, math_nan(), "s"),
        Figure(f"lab_{t}_total_rss", total_rss, n * (solo[0] + solo[1]) * mb, "MB",
               "<= 4096 MB", total_rss <= 4096),
        Figure(f"lab_{t}_total_pss", total_pss, bare[1] * mb, "MB"),
        Figure(f"lab_{t}_car_rss_median", car_rss, solo[0] * mb, "MB"),
        Figure(f"lab_{t}_phone_rss_median", phone_rss, solo[1] * mb, "MB"),
        Figure(f"lab_{t}_idle_cpu", cpu["all"], bare[0], "%", "<= 10 %", cpu["all"] <= 10),
        Figure(f"lab_{t}_idle_cpu_cars", cpu.get("car", 0.0), bare[0] / 2, "%"),
        Figure(f"lab_{t}_idle_cpu_phones", cpu.get("phone", 0.0), bare[0] / 2, "%"),
        Figure(f"lab_{t}_mirrors_inconsistent", bad, 0, "", "== 0", bad == 0),
    ]  # fmt: skip
    if "radio" in cpu:
        figures.insert(8, Figure(f"lab_{t}_idle_cpu_radio", cpu["radio"], bare[0] / (2 * n), "%"))
    print()
    print_table(figures, {
        "bring_up": "none (first process started -> every mirror complete)",
        "total_rss": f"{n} x (one car + one phone alone, synced and idle, measured first)",
        "total_pss": f"the RSS of {2 * n} bare asyncio processes sleeping (Python's floor)",
        "*_rss_median": "that device alone (the one-pair run before the lab)",
        "idle_cpu": f"{2 * n} bare asyncio sleepers over the same {args.window:.0f} s window "
                    "(cars, phones: half of it each; the radio: one sleeper's share)",
        "mirrors_inconsistent": "none expected (REST API pages + SQLite, every pair)",
    })  # fmt: skip


def math_nan() -> float:
    return float("nan")


def main() -> None:
    """Parse arguments and run; exit 1 when a mirror differs from its phone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50, help="cars (and phones); default 50")
    parser.add_argument("--transport", choices=("lan", "radio"), default="lan")
    parser.add_argument("--contacts", type=int, default=500, help="contacts per phone")
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds before measuring")
    parser.add_argument("--window", type=float, default=30.0, help="idle CPU window, seconds")
    parser.add_argument("--no-mdns", action="store_true", help="LAN cars without mDNS")
    parser.add_argument("--quick", action="store_true", help="10 pairs")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()
    if args.quick:
        args.pairs = min(args.pairs, 10)
    sys.exit(1 if run(args) else 0)


if __name__ == "__main__":
    main()
