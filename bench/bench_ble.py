"""BLE throughput: emulated (through the virtual radio) beside loopback TCP, and a real-PHY model.

Run: ``.venv/bin/python bench/bench_ble.py`` (from the repository root). Add ``--quick`` to
skip the 10k-contact sync.

Also measured: a real contact sync (``carhub run`` and ``phone-bridge sync --transport ble``
as subprocesses through ``carhub-radio``) counted in ATT payload bytes on the phone's btsnoop
capture, each byte count turned into real-PHY times with the model below and set beside
PBAP's "up to 10 minutes for 5,000 contacts"; and discovery-to-connected over the emulated
radio beside a loopback TCP connect.

The emulated figure is CPU-bound (no radio timing): it says how fast our stack and Bumble
move bytes, not how fast a car would. The model gives real-radio upper bounds (DESIGN.md):
one notification per link-layer packet, each packet taking data airtime + 150 us + empty
packet airtime + 150 us, with DLE 251 and MTU 247 (244 payload bytes per packet).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import median
from carhub.ble import BleCarServer, BleLink
from phone_bridge.ble import BleTransport, scan_cars
from radio import RadioServer

SIZE = 1_000_000
INFO: dict[str, object] = {"id": "0" * 16, "name": "Bench", "model": "b", "version": 1, "lan": []}
PHYS = {"1M": (1_000_000, 1), "2M": (2_000_000, 2)}  # bit/s, preamble bytes
CIS_MS = (7.5, 15.0, 30.0)
ATT_PAYLOAD = 244  # MTU 247 - 3
LL_PAYLOAD = 251  # ATT 247 + L2CAP header 4
T_IFS_US = 150


async def emulated() -> tuple[float, float]:
    """Return (phone->car, car->phone) bytes/s for 1 MB through a RadioServer."""
    server = RadioServer("127.0.0.1", 0)
    await server.start()
    spec = f"tcp-client:127.0.0.1:{server.port}"
    received = asyncio.Queue[BleLink]()
    up_done = asyncio.Event()

    async def on_link(link: BleLink) -> None:
        link.session_established()  # a raw pipe: the post-session receive bound applies
        received.put_nowait(link)
        got = 0
        while got < SIZE:
            got += len(await link.recv())
        up_done.set()

    car = BleCarServer(spec, name="Bench", device_id="0" * 16, info=INFO, on_link=on_link)
    await car.start()
    phone = await BleTransport.connect(car.address, radio=spec)
    link = await received.get()
    data = os.urandom(SIZE)
    start = time.perf_counter()
    await phone.send(data)
    await up_done.wait()
    up = SIZE / (time.perf_counter() - start)
    start = time.perf_counter()
    await link.send(data)
    got = 0
    while got < SIZE:
        got += len(await phone.recv())
    down = SIZE / (time.perf_counter() - start)
    await phone.close()
    await car.stop()
    await server.stop()
    return up, down


async def loopback_tcp() -> float:
    """Return bytes/s for the same 1 MB over a plain loopback TCP socket."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = 0
        while got < SIZE:
            got += len(await reader.read(65536))
        done.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    data = os.urandom(SIZE)
    start = time.perf_counter()
    writer.write(data)
    await writer.drain()
    await done.wait()
    rate = SIZE / (time.perf_counter() - start)
    writer.close()
    server.close()
    await server.wait_closed()
    return rate


def packet_time_us(rate: int, preamble: int) -> float:
    """Airtime of one full data packet plus its empty reply, with both IFS gaps."""
    data = (preamble + 4 + 2 + LL_PAYLOAD + 4 + 3) * 8 * 1e6 / rate
    empty = (preamble + 4 + 2 + 3) * 8 * 1e6 / rate
    return data + T_IFS_US + empty + T_IFS_US


def model_rate(phy: str, ci_ms: float) -> float:
    """Bytes/s of ATT payload for one PHY and connection interval."""
    rate, preamble = PHYS[phy]
    per_ci = int(ci_ms * 1000 // packet_time_us(rate, preamble))
    return per_ci * ATT_PAYLOAD / (ci_ms / 1000)


BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
ATT_CID = 0x0004
WRITE_COMMAND, NOTIFICATION = 0x52, 0x1B
PBAP_5K_S = 600.0  # car manuals: 5,000 contacts "may take up to 10 minutes" over PBAP
CONNECT_RUNS = 7


def att_bytes(capture: Path) -> tuple[int, int]:
    """Return (write-command, notification) ATT value bytes in a btsnoop v1 file.

    Counts each L2CAP PDU once, from its first ACL fragment's L2CAP length, so it is right
    whatever the ACL fragment size.
    """
    data = capture.read_bytes()
    pos, writes, notes = 16, 0, 0  # 16-byte file header
    while pos + 24 <= len(data):
        incl = struct.unpack_from(">I", data, pos + 4)[0]
        rec = data[pos + 24 : pos + 24 + incl]
        pos += 24 + incl
        if len(rec) < 10 or rec[0] != 0x02:  # H4 ACL only
            continue
        boundary = (rec[2] >> 4) & 0x3
        if boundary == 0x1:  # a continuation fragment
            continue
        l2len, cid = struct.unpack_from("<HH", rec, 5)
        if cid != ATT_CID:
            continue
        value = l2len - 3  # opcode + handle
        writes += value if rec[9] == WRITE_COMMAND else 0
        notes += value if rec[9] == NOTIFICATION else 0
    return writes, notes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_sync(count: int, work: Path) -> dict[str, float]:
    """Pair a fresh phone and sync ``count`` generated contacts over BLE only.

    Returns:
        ``up``/``down`` ATT value bytes, the CLI's ``seconds`` and ``bytes``.
    """
    port = _free_port()
    spec = f"tcp-client:127.0.0.1:{port}"
    vcf = work / f"c{count}.vcf"
    with vcf.open("wb") as fh:
        subprocess.run([sys.executable, "-m", "phone_bridge.sample_data", str(count)],
                       stdout=fh, check=True, cwd=ROOT)  # fmt: skip
    procs = [subprocess.Popen([str(BIN / "carhub-radio"), "serve", "--listen",
                               f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)]  # fmt: skip
    try:
        car = subprocess.Popen(
            [str(BIN / "carhub"), "run", "--name", f"Bench {count}", "--state-dir",
             str(work / f"car{count}"), "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0",
             "--no-mdns", "--hci", spec, "--pairing", "open", "--auto-confirm", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        procs.append(car)
        assert car.stdout is not None and json.loads(car.stdout.readline())["event"] == "ready"
        phone = [str(BIN / "phone-bridge"), "--state-dir", str(work / f"phone{count}")]
        ble = ["--transport", "ble", "--radio", spec, "--json"]
        subprocess.run([*phone, "pair", f"Bench {count}", "--auto-confirm", *ble],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        cap = work / f"phone{count}.btsnoop"
        out = subprocess.run(
            [*phone, "sync", f"Bench {count}", "--contacts", str(vcf), "--btsnoop", str(cap),
             *ble], check=True, capture_output=True, text=True, timeout=600,
        ).stdout  # fmt: skip
        result = json.loads(out.strip().splitlines()[-1])
        assert result["added"] == count, result
        up, down = att_bytes(cap)
        return {"up": up, "down": down, "seconds": result["seconds"], "bytes": result["bytes"]}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(10)


async def discovery_to_connected() -> tuple[list[float], list[float]]:
    """Seconds from scan start to a connected BleTransport (each run opens its own
    controller, as the CLI does), and loopback TCP connect times as the baseline."""
    server = RadioServer("127.0.0.1", 0)
    await server.start()
    spec = f"tcp-client:127.0.0.1:{server.port}"

    async def idle(link: BleLink) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                await link.recv()

    car = BleCarServer(spec, name="Bench", device_id="1" * 16, info=INFO, on_link=idle)
    await car.start()
    ble: list[float] = []
    for _ in range(CONNECT_RUNS):
        start = time.perf_counter()
        cars = await scan_cars(5, spec, stop_when=lambda c: c.name == "Bench")
        phone = await BleTransport.connect(cars[0].address, radio=spec)
        ble.append(time.perf_counter() - start)
        await phone.close()
    await car.stop()
    await server.stop()
    tcp_server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = tcp_server.sockets[0].getsockname()[1]
    tcp: list[float] = []
    for _ in range(CONNECT_RUNS):
        start = time.perf_counter()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        tcp.append(time.perf_counter() - start)
        writer.close()
    tcp_server.close()
    await tcp_server.wait_closed()
    return ble, tcp


def print_model() -> None:
    """Print the real-PHY model used for every modelled time."""
    print("Model (DESIGN.md): one notification per link-layer packet; packet time = data")
    print("  airtime + 150 us + empty-packet airtime + 150 us; airtime = (preamble + 4 + 2 +")
    print("  payload + 4 MIC + 3 CRC) * 8 / PHY rate; DLE 251, MTU 247 (244 B ATT value per")
    print("  packet, encrypted); rate = floor(CI / t_packet) * 244 B / CI. Upper bounds.")
    for phy, (rate, preamble) in PHYS.items():
        print(f"  {phy}: t_packet = {packet_time_us(rate, preamble):.0f} us")


def print_syncs(runs: dict[int, dict[str, float]]) -> None:
    """Print air bytes, emulated times and modelled real-PHY times per sync size."""
    print("Contact sync over BLE only (phone-bridge sync --transport ble, no photos):")
    for count, r in runs.items():
        total = r["up"] + r["down"]
        print(f"  {count:>6} contacts: ATT bytes phone->car {r['up']:>10,.0f}  car->phone "
              f"{r['down']:>8,.0f}  = {total / count:6.1f} B/contact (target <= 120)")  # fmt: skip
        print(f"  {'':>6}           emulated sync time {r['seconds']:.2f} s "
              f"(CPU-bound, no radio timing)")  # fmt: skip
    print()
    print("Modelled real-PHY time for those bytes, beside PBAP (5,000 contacts in up to 600 s):")
    head = f"  {'PHY':<4}{'CI ms':>7}" + "".join(f"{f'{c} contacts':>15}" for c in runs)
    print(head + f"{'5k (scaled)':>14}{'vs PBAP 5k':>12}")
    per_contact = max((r["up"] + r["down"]) / c for c, r in runs.items())
    for phy in PHYS:
        for ci in CIS_MS:
            bps = model_rate(phy, ci)
            cells = "".join(f"{(r['up'] + r['down']) / bps:>14.2f}s" for r in runs.values())
            t5k = 5_000 * per_contact / bps
            print(f"  {phy:<4}{ci:>7}{cells}{t5k:>13.2f}s{PBAP_5K_S / t5k:>11.0f}x")  # fmt: skip
    iphone = 0.35e6 / 8  # bytes/s: what iPhones reach (DESIGN.md), not a model bound
    cells = "".join(f"{(r['up'] + r['down']) / iphone:>14.2f}s" for r in runs.values())
    t5k = 5_000 * per_contact / iphone
    print(f"  {'iPhone 0.35 Mbit/s':<11}{cells}{t5k:>13.2f}s{PBAP_5K_S / t5k:>11.0f}x")
    print("  (the model is the same both ways: writes without response fill packets as")
    print("   notifications do; almost all sync bytes go phone->car.)")


def main() -> None:
    """Print the measured figures and the model table."""
    counts = (1_000,) if "--quick" in sys.argv else (1_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {n: cli_sync(n, Path(tmp)) for n in counts}
    ble, tcp = asyncio.run(discovery_to_connected())
    print_model()
    print()
    print_syncs(runs)
    print()
    print(f"Discovery to connected, emulated radio (median of {CONNECT_RUNS}; target <= 1 s):")
    print(f"  scan + connect + MTU + GATT discovery  {median(ble) * 1e3:8.1f} ms "
          f"(min {min(ble) * 1e3:.1f}, max {max(ble) * 1e3:.1f})")  # fmt: skip
    print(f"  baseline loopback TCP connect          {median(tcp) * 1e3:8.3f} ms")
    print()
    up, down = asyncio.run(emulated())
    tcp = asyncio.run(loopback_tcp())
    print("1 MB, MTU 247, DLE 251, through carhub-radio (RadioServer) on this machine:")
    print(f"  emulated BLE phone->car (write cmd)   {up / 1e6:8.2f} MB/s")
    print(f"  emulated BLE car->phone (notify)      {down / 1e6:8.2f} MB/s")
    print(f"  baseline loopback TCP, same bytes     {tcp / 1e6:8.2f} MB/s")
    print()
    print("Real-PHY model (encrypted, DLE 251, MTU 247; upper bounds):")
    head = f"  {'PHY':<4}{'CI ms':>7}{'pkts/CI':>9}{'Mbit/s':>9}"
    print(head + f"{'1k contacts':>13}{'10k contacts':>14}")
    for phy, (rate, preamble) in PHYS.items():
        for ci in CIS_MS:
            bps = model_rate(phy, ci)
            pkts = int(ci * 1000 // packet_time_us(rate, preamble))
            t1k, t10k = 1_000 * 100 / bps, 10_000 * 100 / bps
            print(f"  {phy:<4}{ci:>7}{pkts:>9}{bps * 8 / 1e6:>9.2f}{t1k:>12.2f}s{t10k:>13.2f}s")
    print("  (contacts at ~100 B each; iPhones reach 0.3-0.4 Mbit/s with CI >= 15 ms.)")


if __name__ == "__main__":
    main()
