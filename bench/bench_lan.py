"""LAN benchmarks: the real car as a subprocess, the phone in-process, over loopback.

Run: ``.venv/bin/python bench/bench_lan.py [--quick] [--profile DIR]``

The car is ``carhub run --auto-confirm --json`` in a subprocess (so its RSS is read from
``/proc/PID/status``); the phone is ``phone_bridge.engine`` in this process, so timings
exclude process start-up. A sync is timed from ``sync_once`` until its last ack, i.e. the
car's commit. Every figure is printed beside a baseline measured in the same run against
a trivial uvicorn app (a second subprocess, see ``BASELINE_APP``):

- full sync 10k / 100k: a raw HTTP POST of the same vCard bytes (httpx, keep-alive);
- car RSS growth (100k): that baseline server's peak RSS growth while taking the POST;
- delta of one: a raw HTTP POST of the one changed card's vCard bytes;
- now-playing -> dashboard event: one WebSocket echo round trip;
- car command -> phone: one HTTP POST of a tiny JSON body (request and response);
- mDNS discovery: a direct zeroconf query for the car's known instance name (no browse);
- pairing: WebSocket connect plus one echo round trip.

``--profile DIR`` also profiles one 10k sync: cProfile of the phone side in this process,
and ``py-spy`` of the car process when ``py-spy`` is installed (``pip install py-spy``).

Targets are issue 13's: full 10k <= 0.15 s, 100k <= 2 s with car peak RSS growth <= 100 MB,
a delta of one in 10k <= 5 ms and <= 1 KB both ways. ``--quick`` syncs 20k, not 100k.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import msgspec
from websockets.asyncio.client import connect as ws_connect
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _util import Figure, median, percentile, print_table, summarise_ms  # noqa: E402

from phone_bridge.client import CarLink  # noqa: E402
from phone_bridge.connect import ConnectOptions, resolve  # noqa: E402
from phone_bridge.discovery import SERVICE_TYPE  # noqa: E402
from phone_bridge.engine import Contacts, do_pair, sync_once  # noqa: E402
from phone_bridge.sample_data import generate_vcards  # noqa: E402
from phone_bridge.state import PairedCar, PhoneState  # noqa: E402
from protocol.connection import MessageReceived  # noqa: E402
from protocol.media import MediaCommand, NowPlaying  # noqa: E402
from protocol.vcard import import_vcards  # noqa: E402

HOST = "127.0.0.1"
# Unique per run: two benches on one machine would otherwise find each other's car.
CAR_NAME = f"Bench Car {os.getpid()}"
READY_TIMEOUT = 30.0  # seconds for the car to print its ready line (mDNS probing included)

# A raw ASGI app: POST returns the body length; a WebSocket echoes every message.
BASELINE_APP = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] == "http":
        n, more = 0, True
        chunks = []
        while more:
            m = await receive(); chunks.append(m.get("body", b"")); more = m.get("more_body")
        body = str(len(b"".join(chunks))).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive(); await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect": return
            await send({"type": "websocket.send", "bytes": m.get("bytes"), "text": m.get("text")})
    elif scope["type"] == "lifespan":
        while True:
            m = await receive()
            await send({"type": m["type"] + ".complete"})
            if m["type"] == "lifespan.shutdown": return
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            ws="websockets-sansio")
"""


# -- processes ---------------------------------------------------------------------------


def proc_kb(pid: int, key: str) -> int:
    """Return a ``/proc/PID/status`` field in kB (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid: int) -> None:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Car:
    """``carhub run`` as a subprocess, with its ready line parsed."""

    def __init__(self, state_dir: Path) -> None:
        exe = Path(sys.executable).with_name("carhub")
        cmd = [str(exe), "run", "--name", CAR_NAME, "--state-dir", str(state_dir)]
        cmd += ["--listen", f"{HOST}:0", "--ui", f"{HOST}:0", "--mdns-interface", HOST]
        cmd += ["--pairing", "open", "--pairing-window", "0", "--auto-confirm", "--json"]
        self._err = open(state_dir.parent / "car.err", "wb")  # noqa: SIM115 (closed in stop)
        # The car runs this checkout's code, not whatever the venv's editable install names.
        path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": path}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, env=env)
        self.ready = self._read_ready()
        self.pid = self.proc.pid
        self.endpoint: str = self.ready["endpoint"]
        self.dashboard: str = self.ready["dashboard"].rstrip("/")

    def _read_ready(self) -> dict[str, str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"{"):
                info: dict[str, str] = json.loads(line)
                if info.get("event") == "ready":
                    return info
        self.stop()
        raise RuntimeError(f"the car did not start; see {self._err.name}")

    def stop(self) -> None:
        """Terminate the car (SIGTERM, then SIGKILL after 5 s)."""
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


class Baseline:
    """The trivial uvicorn app as a subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", BASELINE_APP, str(self.port)])
        self.url = f"http://{HOST}:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the baseline server did not start")

    def stop(self) -> None:
        """Terminate the baseline server."""
        self.proc.terminate()
        self.proc.wait(5)


# -- measurements ------------------------------------------------------------------------


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Return the wall time of one awaited call."""
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def post_times(client: httpx.AsyncClient, url: str, body: bytes, runs: int) -> list[float]:
    """Time ``runs`` raw POSTs of ``body`` (after one warm-up)."""
    await client.post(url, content=body)
    return [await timed(lambda: client.post(url, content=body)) for _ in range(runs)]


async def ws_echo_times(url: str, runs: int) -> list[float]:
    """Time ``runs`` WebSocket echo round trips of a small message."""
    async with ws_connect(url) as ws:
        out = []
        for i in range(runs + 1):
            start = time.perf_counter()
            await ws.send(f'{{"type":"media","n":{i}}}')
            await ws.recv()
            out.append(time.perf_counter() - start)
        return out[1:]


class Phone:
    """The phone side: one state directory, one paired car, one open link."""

    def __init__(self, root: Path, car: Car) -> None:
        self.state = PhoneState(root)
        self.car = car
        self.opts = ConnectOptions(transport="lan", mdns_interface=HOST)
        self.link: CarLink | None = None
        self.paired: PairedCar | None = None
        self.first = True

    async def pair(self) -> float:
        """Pair with the car and keep the link; return the time minus the 'human'."""
        target = await resolve(self.car.endpoint, self.state, self.opts)
        human = 0.0

        async def decide(code: str) -> bool:
            nonlocal human
            start = time.perf_counter()
            await asyncio.sleep(0)  # the user's tap, instant here
            human += time.perf_counter() - start
            return True

        start = time.perf_counter()
        self.paired, self.link = await do_pair(self.state, target, self.opts, "Bench", decide)
        return time.perf_counter() - start - human

    async def sync(self, contacts: Contacts) -> float:
        """Sync once over the open link; return seconds until the car's last ack."""
        assert self.link is not None and self.paired is not None
        start = time.perf_counter()
        # The bench empties the car between runs on purpose: no mass-deletion guard.
        await sync_once(
            self.state, self.link, self.paired, contacts, first=self.first, allow_deletes=True
        )
        self.first = False
        return time.perf_counter() - start

    async def close(self) -> None:
        """Close the link."""
        if self.link is not None:
            await self.link.aclose()


def card_bytes(data: bytes, index: int) -> bytes:
    """Return the vCard bytes of card ``index`` in ``data``."""
    cards = data.split(b"BEGIN:VCARD\r\n")
    return b"BEGIN:VCARD\r\n" + cards[index + 1]


def load(data: bytes) -> Contacts:
    """Import vCard bytes as the phone would."""
    result = import_vcards(data)
    return Contacts(list(result.contacts), dict(result.photos), list(result.errors))


EMPTY = Contacts([], {})


async def bench_sync(
    phone: Phone, http: httpx.AsyncClient, base: Baseline, n: int, runs: int, target_s: float
) -> tuple[list[Figure], Contacts, bytes]:
    """Full sync of ``n`` contacts ``runs`` times (emptying the mirror in between)."""
    data = generate_vcards(n)
    contacts = load(data)
    times = []
    for _ in range(runs):
        times.append(await phone.sync(contacts))
        await phone.sync(EMPTY)  # deletes everything, so the next run is a full sync again
    await phone.sync(contacts)  # leave the mirror full for the delta figure
    base_t = await post_times(http, base.url + "/contacts", data, runs)
    value = median(times)
    print(f"  full sync {n}: runs {[round(t, 3) for t in times]} s; POST {median(base_t):.3f} s")
    fig = Figure(
        f"full_sync_{n // 1000}k_median", value, median(base_t), "s", f"<= {target_s:g} s",
        value <= target_s,
    )  # fmt: skip
    return [fig], contacts, data


async def bench_delta(
    phone: Phone, http: httpx.AsyncClient, base: Baseline, contacts: Contacts, data: bytes,
    runs: int,
) -> list[Figure]:  # fmt: skip
    """Change one contact among the mirrored ones and sync; time and bytes both ways."""
    assert phone.link is not None
    index = len(contacts.contacts) // 2
    original = contacts.contacts[index]
    times, sent, received = [], [], []
    for i in range(runs):
        changed = msgspec.structs.replace(original, fn=f"{original.fn} v{i}")
        # The phone keeps its address book (and its digest cache) between syncs.
        edited = Contacts(contacts.contacts.copy(), {}, cache=contacts.cache)
        edited.contacts[index] = changed
        s0, r0 = phone.link.bytes_sent, phone.link.bytes_received
        times.append(await phone.sync(edited))
        sent.append(phone.link.bytes_sent - s0)
        received.append(phone.link.bytes_received - r0)
    one = card_bytes(data, index)
    base_t = await post_times(http, base.url + "/contact", one, max(runs, 20))
    wire = median([s + r for s, r in zip(sent, received, strict=True)])
    print(f"  delta-of-one: {summarise_ms(times)}; sent {max(sent)} B, received {max(received)} B")
    return [
        Figure("delta1_10k_median", median(times) * 1000, median(base_t) * 1000, "ms",
               "<= 5 ms", median(times) <= 0.005),
        Figure("delta1_10k_wire_both_ways", wire, float(len(one)), "B", "<= 1024 B",
               wire <= 1024),
    ]  # fmt: skip


def now_playing(i: int) -> NowPlaying:
    """A now-playing state whose title tells samples apart."""
    return NowPlaying(
        title=f"Track {i}", artists=["Bench"], album="LAN", duration_ms=240_000,
        position_ms=i, rate=1.0, state="playing", artwork=b"", track_id=f"t{i}",
    )  # fmt: skip


async def bench_now_playing(phone: Phone, car: Car, base: Baseline, runs: int) -> list[Figure]:
    """NowPlaying from the phone link until ``/api/events`` delivers the ``media`` event."""
    assert phone.link is not None
    url = car.dashboard.replace("http://", "ws://") + "/api/events"
    times = []
    async with ws_connect(url, max_size=None) as ws:
        seen = 0
        while seen < 4:  # the snapshot: status, pairing, phones, media
            seen += json.loads(await ws.recv())["type"] in ("status", "pairing", "phones", "media")
        for i in range(runs + 1):
            start = time.perf_counter()
            await phone.link.send(now_playing(i))
            while True:
                ev = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if ev["type"] == "media" and ev["data"].get("title") == f"Track {i}":
                    break
            times.append(time.perf_counter() - start)
    times = times[1:]  # the first one warms up the car's paths
    base_t = await ws_echo_times(f"ws://{HOST}:{base.port}/", runs)
    p99 = percentile(times, 99)
    print(f"  now-playing -> dashboard: {summarise_ms(times)}; echo {summarise_ms(base_t)}")
    return [
        Figure("nowplaying_to_dashboard_p99", p99 * 1000, percentile(base_t, 99) * 1000, "ms",
               "<= 20 ms", p99 <= 0.020),
    ]  # fmt: skip


async def bench_command(
    phone: Phone, http: httpx.AsyncClient, car: Car, base: Baseline, runs: int
) -> list[Figure]:
    """POST /api/media/command until the phone link receives the MediaCommand."""
    link = phone.link
    assert link is not None

    async def received() -> None:
        while True:
            ev = await link.wait_for(MessageReceived, 5)
            if isinstance(ev.message, MediaCommand):
                return

    times = []
    for i in range(runs + 1):
        while not link.events.empty():
            link.events.get_nowait()
        start = time.perf_counter()
        waiter = asyncio.create_task(received())
        post = asyncio.create_task(
            http.post(car.dashboard + "/api/media/command", json={"action": "seek",
                                                                   "position_ms": i})
        )  # fmt: skip
        await waiter
        times.append(time.perf_counter() - start)
        (await post).raise_for_status()
    times = times[1:]
    base_t = await post_times(http, base.url + "/command", b'{"action":"seek"}', runs)
    p99 = percentile(times, 99)
    print(f"  command -> phone: {summarise_ms(times)}; POST {summarise_ms(base_t)}")
    return [
        Figure("command_to_phone_p99", p99 * 1000, percentile(base_t, 99) * 1000, "ms",
               "<= 20 ms", p99 <= 0.020),
    ]  # fmt: skip


async def bench_discovery(car: Car, work: Path, runs: int) -> list[Figure]:
    """``resolve(name)`` over mDNS, as the CLI does, from a fresh zeroconf each time."""
    state = PhoneState(work / "discover")
    opts = ConnectOptions(transport="lan", mdns_interface=HOST, discover_timeout=3.0)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        target = await resolve(CAR_NAME, state, opts)
        times.append(time.perf_counter() - start)
        assert target.endpoint == car.endpoint, target
    instance = f"carhub-{car.ready['id']}.{SERVICE_TYPE}"

    async def direct() -> None:
        azc = AsyncZeroconf(interfaces=[HOST], ip_version=IPVersion.V4Only)
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, instance)
            if not await info.async_request(azc.zeroconf, 1500):
                raise RuntimeError("direct mDNS query got no answer")
        finally:
            await azc.async_close()

    base_t = [await timed(direct) for _ in range(runs)]
    value = median(times)
    print(f"  discovery: {[round(t, 3) for t in times]} s; direct {median(base_t):.3f} s")
    return [Figure("mdns_discovery_median", value, median(base_t), "s", "<= 1 s", value <= 1.0)]


async def bench_pairing(car: Car, base: Baseline, work: Path, runs: int) -> list[Figure]:
    """Pair a fresh phone (new key) ``runs`` times; the 'human' is instant and excluded."""
    times = []
    for i in range(runs):
        phone = Phone(work / f"pair{i}", car)
        times.append(await phone.pair())
        await phone.close()

    async def connect_echo() -> None:
        async with ws_connect(f"ws://{HOST}:{base.port}/") as ws:
            await ws.send(b"hello")
            await ws.recv()

    base_t = [await timed(connect_echo) for _ in range(runs)]
    value = median(times)
    print(f"  pairing: {[round(t, 3) for t in times]} s; ws connect+echo {median(base_t):.4f} s")
    return [Figure("pairing_median", value, median(base_t), "s", "<= 1 s", value <= 1.0)]


async def bench_100k(
    phone: Phone, http: httpx.AsyncClient, car: Car, base: Baseline, n: int
) -> list[Figure]:
    """One full sync of ``n`` contacts into an emptied mirror; car peak RSS growth."""
    await phone.sync(EMPTY)
    data = generate_vcards(n)
    contacts = load(data)
    rss0 = proc_kb(car.pid, "VmRSS")
    reset_peak(car.pid)
    elapsed = await phone.sync(contacts)
    growth_mb = (proc_kb(car.pid, "VmHWM") - rss0) / 1024
    base_rss0 = proc_kb(base.proc.pid, "VmRSS")
    reset_peak(base.proc.pid)
    base_t = await post_times(http, base.url + "/contacts", data, 2)
    base_growth = (proc_kb(base.proc.pid, "VmHWM") - base_rss0) / 1024
    mb = len(data) / 1e6
    print(f"  full sync {n}: {elapsed:.2f} s ({mb:.1f} MB of vCard); POST {median(base_t):.3f} s")
    print(f"  car RSS {rss0 / 1024:.0f} MB before, peak growth {growth_mb:.1f} MB")
    await phone.sync(EMPTY)  # leave the car small again
    k = f"{n // 1000}k"
    limit = 2.0 * n / 100_000  # issue 13: 100k in <= 2 s (the --quick 20k: 0.4 s)
    return [
        Figure(f"full_sync_{k}", elapsed, median(base_t), "s", f"<= {limit:g} s",
               elapsed <= limit),
        Figure(f"car_peak_rss_growth_{k}", growth_mb, base_growth, "MB", "<= 100 MB",
               growth_mb <= 100),
    ]  # fmt: skip


async def profile_sync(phone: Phone, car: Car, contacts: Contacts, out: Path) -> None:
    """Profile one full sync and one delta-of-one: cProfile here, py-spy on the car."""
    out.mkdir(parents=True, exist_ok=True)
    await phone.sync(EMPTY)
    original = contacts.contacts[0]
    # As in bench_delta: the phone keeps its digest cache between syncs.
    edited = Contacts(contacts.contacts.copy(), {}, cache=contacts.cache)
    edited.contacts[0] = msgspec.structs.replace(original, fn=original.fn + " p")
    for name, what in (("full", contacts), ("delta", edited)):
        spy = _start_py_spy(car.pid, out / f"car_{name}.txt")
        prof = cProfile.Profile()
        prof.enable()
        elapsed = await phone.sync(what)
        prof.disable()
        prof.dump_stats(out / f"phone_{name}.prof")
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(10)
        print(f"  profiled {name} sync: {elapsed * 1000:.1f} ms (under cProfile)")
        _print_phone_profile(out / f"phone_{name}.prof")
        _print_car_profile(out / f"car_{name}.txt")
    print(f"  profiles in {out} (phone_*.prof: cProfile; car_*.txt: py-spy raw stacks)")


def _start_py_spy(pid: int, path: Path) -> subprocess.Popen[bytes] | None:
    """Start ``py-spy record`` on ``pid`` (None when py-spy is not installed)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return None
    cmd = [exe, "record", "-p", str(pid), "-o", str(path), "-f", "raw", "-r", "500"]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy needs a moment to attach before the sync starts
    return spy


def _print_phone_profile(path: Path, top: int = 14) -> None:
    """Print the project's functions with the most cumulative time (cProfile)."""
    stats = pstats.Stats(str(path))
    rows = [
        (ct, f"{Path(fn).parent.name}/{Path(fn).name}:{line}({func})")
        for (fn, line, func), (_, _, _, ct, _) in stats.stats.items()
        if str(ROOT) in fn and "/bench/" not in fn and ".venv" not in fn
    ] + [
        (ct, func) for (fn, _, func), (_, _, _, ct, _) in stats.stats.items()
        if func in ("<built-in method posix.fsync>", "<built-in method posix.replace>")
    ]  # fmt: skip
    for ct, name in sorted(rows, reverse=True)[:top]:
        print(f"    phone {ct * 1000:7.1f} ms  {name}")


def _print_car_profile(path: Path, top: int = 10) -> None:
    """Print where the car spends CPU: samples by innermost project frame (py-spy raw)."""
    if not path.exists():
        print("    car: no py-spy profile (py-spy missing or not permitted)")
        return
    innermost: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        frames = stack.split(";")
        ours = [f for f in frames if "(carhub/" in f or "(protocol/" in f]
        leaf = frames[-1].split(" (")[0]
        where = ours[-1] if ours else "outside the project"
        innermost[f"{where} -> {leaf}" if ours and ours[-1] != frames[-1] else where] += int(count)
    print(f"    car: {total} samples at 500 Hz = {total * 2} ms on CPU, by innermost car frame:")
    for frame, n in innermost.most_common(top):
        print(f"    car   {n * 2:7.0f} ms  {frame}")


async def main_async(args: argparse.Namespace) -> None:
    """Run every benchmark and print the table."""
    quick = args.quick
    work = Path(tempfile.mkdtemp(prefix="bench_lan."))
    car = Car(work / "car")
    base = Baseline()
    figures: list[Figure] = []
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            figures += await bench_discovery(car, work, 2 if quick else 5)
            figures += await bench_pairing(car, base, work, 2 if quick else 5)
            phone = Phone(work / "phone", car)
            await phone.pair()
            try:
                figs, contacts, data = await bench_sync(
                    phone, http, base, 10_000, 2 if quick else 5, 0.15
                )
                figures += figs
                figures += await bench_delta(phone, http, base, contacts, data, 5 if quick else 20)
                figures += await bench_now_playing(phone, car, base, 50 if quick else 300)
                figures += await bench_command(phone, http, car, base, 50 if quick else 300)
                if args.profile:
                    await profile_sync(phone, car, contacts, Path(args.profile))
                figures += await bench_100k(phone, http, car, base, 20_000 if quick else 100_000)
            finally:
                await phone.close()
    finally:
        car.stop()
        base.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir kept: {work}")
    print()
    print_table(figures, BASELINES)


BASELINES = {
    "full_sync_*": "raw HTTP POST (httpx, keep-alive) of the same vCard bytes to trivial uvicorn",
    "car_peak_rss_growth": "peak RSS growth of the trivial uvicorn server taking that POST",
    "delta1_10k_median": "raw HTTP POST of the one changed card's vCard bytes",
    "delta1_10k_wire": "size of that one card as vCard (sync bytes are both ways, framed, sealed)",
    "nowplaying_to_dashboard": "one WebSocket echo round trip (small JSON) to trivial uvicorn",
    "command_to_phone": "one HTTP POST round trip of a tiny JSON body to trivial uvicorn",
    "mdns_discovery": "fresh zeroconf + direct query of the car's known instance name",
    "pairing": "WebSocket connect + one echo round trip to trivial uvicorn",
}


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (CI smoke; 20k not 100k)")
    parser.add_argument("--profile", metavar="DIR", help="also profile one 10k sync into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (car logs)")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
