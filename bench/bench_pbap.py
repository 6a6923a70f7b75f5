"""PBAP over the emulated Classic link beside CarHub's own protocol over the emulated BLE link.

Run: ``.venv/bin/python bench/bench_pbap.py [--count N]`` (from the repository root).

Every part is a real process: ``carhub-radio``, ``carhub run --hci ... --auto-confirm`` and
``phone-bridge emulate android --car ADDRESS --auto-confirm --btsnoop ...``; the baseline
is ``phone-bridge pair`` + ``sync --transport ble`` of the same generated contacts (the
run of ``bench_ble.cli_sync``). The human is left out: both sides auto-confirm.

Figures (each beside its same-run baseline):

- ``pull_5k_emulated``: from the phone's ``connected`` line (its ACL is up) to the car's
  ``sync`` event with stage ``done`` on ``/api/events``: SSP, SDP, RFCOMM, OBEX CONNECT,
  the probe, the text pages, the photo pages and the call history, stored. Baseline: the
  CarHub phone's own ``seconds`` for syncing the same book over the emulated BLE link.
  Both are CPU-bound here (no radio timing): the modelled rows are the radio figures.
- ``pull_5k_air_*``: the bytes the phone's capture holds, on a modelled radio. Classic
  EDR: every L2CAP PDU goes in the fewest baseband packets of the best type for its size
  (2-DH1/3/5 for 2M: 54/367/679 B in 1/3/5 slots; 3-DH1/3/5 for 3M: 83/552/1021 B), each
  packet taking its slots plus one 625 us slot for the peer's poll or reply; one link,
  no retransmission, no other traffic: an upper bound on speed. LE 2M (baseline):
  ``bench_ble.model_rate`` at a 15 ms connection interval, for the ATT bytes of the
  CarHub sync (244 B per packet, DLE 251).
- ``reconnect_unchanged``: the phone restarted with the same book: connected → ``sync``
  stage ``skipped`` (PBAP 1.2 with counters: one probe). Baseline: the same restart of a
  PBAP 1.1 phone (``--pbap-version 1.1``, no counters), which the car must re-pull whole,
  as AOSP's car client does on every connection. Both emulated and modelled on the air.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _util import Figure, print_table  # noqa: E402
from bench_ble import _free_port, cli_sync, model_rate  # noqa: E402

BIN = Path(sys.executable).parent
CALLS = ROOT / "samples" / "calls.vcf"
SLOT_S = 625e-6
# (max payload bytes, slots) per EDR packet type, smallest first.
EDR = {
    "EDR 2M": ((54, 1), (367, 3), (679, 5)),
    "EDR 3M": ((83, 1), (552, 3), (1021, 5)),
}
LE_CI_MS = 15.0


def edr_seconds(pdus: list[int], phy: str) -> float:
    """Modelled air time of L2CAP PDUs (sizes with their 4-byte header) on one EDR link."""
    types = EDR[phy]
    total = 0.0
    for size in pdus:
        left = size
        while left > 0:
            payload, slots = next((t for t in types if t[0] >= left), types[-1])
            total += (slots + 1) * SLOT_S
            left -= payload
    return total


def acl_pdus(capture: Path) -> list[int]:
    """L2CAP PDU sizes (header included) of every ACL packet in a btsnoop v1 capture."""
    data = capture.read_bytes()
    pos, out = 16, []
    while pos + 24 <= len(data):
        incl = struct.unpack_from(">I", data, pos + 4)[0]
        rec = data[pos + 24 : pos + 24 + incl]
        pos += 24 + incl
        if len(rec) < 9 or rec[0] != 0x02:  # H4 ACL only
            continue
        if (rec[2] >> 4) & 0x3 == 0x1:  # a continuation fragment: counted with its start
            continue
        out.append(struct.unpack_from("<H", rec, 5)[0] + 4)
    return out


class Lab:
    """A radio and a car; phones come and go. Every process is stopped at the end."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen[Any]] = []
        port = _free_port()
        self.spec = f"tcp-client:127.0.0.1:{port}"
        self._spawn([str(BIN / "carhub-radio"), "serve", "--listen", f"127.0.0.1:{port}"])
        time.sleep(0.5)
        car = self._spawn(
            [str(BIN / "carhub"), "run", "--name", "Bench PBAP", "--state-dir",
             str(work / "car"), "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0", "--no-mdns",
             "--hci", self.spec, "--pairing", "open", "--pairing-window", "0",
             "--auto-confirm", "--json"], stdout=subprocess.PIPE,
        )  # fmt: skip
        assert car.stdout is not None
        ready = json.loads(car.stdout.readline())
        self.url = ready["dashboard"].rstrip("/")
        self.classic = ready["classic"]
        assert self.classic, ready

    def _spawn(self, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(args, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                text=True, **kw)  # fmt: skip
        self.procs.append(proc)
        return proc

    def phone(self, name: str, book: Path, *extra: str) -> subprocess.Popen[str]:
        """Start (or restart) emulated phone ``name``; its capture is ``name-N.btsnoop``."""
        n = len(list(self.work.glob(f"{name}-*.btsnoop")))
        return self._spawn(
            [str(BIN / "phone-bridge"), "--state-dir", str(self.work / name), "emulate",
             "android", "--radio", self.spec, "--contacts", str(book), "--calls", str(CALLS),
             "--car", self.classic, "--auto-confirm", "--json", "--name", name,
             "--btsnoop", str(self.work / f"{name}-{n}.btsnoop"), *extra],
            stdout=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def _time_pull(lab: Lab, name: str, book: Path, stage: str, *extra: str) -> float:
    """Seconds from the phone's ``connected`` line to the car's ``sync`` event ``stage``."""
    async with ws_connect(lab.url.replace("http", "ws", 1) + "/api/events") as ws:
        phone = lab.phone(name, book, *extra)
        assert phone.stdout is not None
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, phone.stdout.readline)
            if not line:
                raise RuntimeError(f"phone {name} exited before connecting")
            if json.loads(line).get("event") == "connected":
                start = time.monotonic()
                break
        async with asyncio.timeout(600):
            while True:
                event = json.loads(await ws.recv())
                data = event["data"]
                if event["type"] == "sync" and data.get("stage") in (stage, "failed"):
                    if data["stage"] == "failed":
                        raise RuntimeError(f"the pull from {name} failed: {data}")
                    elapsed = time.monotonic() - start
                    break
    phone.terminate()
    phone.wait(10)
    await asyncio.sleep(1.0)  # the car sees the phone leave before the next start
    return elapsed


def _air(lab: Lab, name: str, index: int) -> dict[str, float]:
    pdus = acl_pdus(lab.work / f"{name}-{index}.btsnoop")
    return {phy: edr_seconds(pdus, phy) for phy in EDR} | {"bytes": float(sum(pdus))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="contacts in the book")
    args = parser.parse_args()
    n = args.count
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        book = work / "book.vcf"
        with book.open("wb") as fh:
            subprocess.run([sys.executable, "-m", "phone_bridge.sample_data", str(n)],
                           stdout=fh, check=True, cwd=ROOT)  # fmt: skip
        ble = cli_sync(n, work)  # the baseline: CarHub's protocol over emulated BLE
        lab = Lab(work)
        try:
            first = asyncio.run(_time_pull(lab, "p12", book, "done"))
            skip = asyncio.run(_time_pull(lab, "p12", book, "skipped"))
            asyncio.run(_time_pull(lab, "p11", book, "done", "--pbap-version", "1.1"))
            repull = asyncio.run(_time_pull(lab, "p11", book, "done", "--pbap-version", "1.1"))
            air_first, air_skip = _air(lab, "p12", 0), _air(lab, "p12", 1)
            air_repull = _air(lab, "p11", 1)
        finally:
            lab.stop()
    le_s = (ble["up"] + ble["down"]) / model_rate("2M", LE_CI_MS)
    figures += [
        Figure(f"pull_{n}_emulated", first, ble["seconds"], "s"),
        Figure(f"pull_{n}_air_edr2m_vs_le2m", air_first["EDR 2M"], le_s, "s"),
        Figure(f"pull_{n}_air_edr3m_vs_le2m", air_first["EDR 3M"], le_s, "s"),
        Figure(f"pull_{n}_air_bytes", air_first["bytes"], ble["up"] + ble["down"], "B"),
        Figure("reconnect_unchanged_emulated", skip, repull, "s"),
        Figure("reconnect_unchanged_air_edr2m", air_skip["EDR 2M"], air_repull["EDR 2M"], "s"),
        Figure("reconnect_unchanged_air_bytes", air_skip["bytes"], air_repull["bytes"], "B"),
    ]
    print(f"PBAP pull of {n} generated contacts (the generator makes no photos, so the photo")
    print("probe finds none), then the call history, from an emulated Android phone, beside")
    print("CarHub's own sync of the same book over BLE.")
    print_table(figures, {
        "pull rows": f"CarHub's own protocol, the same {n} contacts over the emulated BLE link "
                     f"(air: LE 2M at a {LE_CI_MS:.0f} ms connection interval, 244 B per packet)",
        "reconnect rows": "a PBAP 1.1 phone (no counters): the whole book again, as AOSP does",
        "air model": "EDR: each L2CAP PDU in the fewest packets of the best 2-/3-DHx type, "
                     "each packet its slots + one 625 us poll slot; one link, no retries",
    })  # fmt: skip
    if not all(math.isfinite(f.value) for f in figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
