"""How fast a change reaches the car: from a CardDAV server, and from a vCard file.

Run: ``.venv/bin/python bench/bench_carddav.py [--cards 200] [--rounds 5]``

The real car (``carhub run``), a real Radicale server and ``phone-bridge run`` run as
subprocesses on loopback. Each round changes one card's name and times from the change
until the car's ``GET /api/phones/{id}/contacts?q=NAME`` shows it:

- ``carddav_change_to_car_s``: the card's file written in Radicale's storage folder (a
  change on the server), with ``run --carddav URL --carddav-interval 1``;
- ``file_change_to_car_s``: the same change saved into the vCard file, with
  ``run --contacts FILE`` (which checks the file's mtime every second).

Both are bounded below by the polling period (up to 1 s each) plus one sync; the median
of the rounds is printed with the min and max.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.helpers import Car, Phone, poll, stop, stop_all  # noqa: E402
from tests.phone_bridge.carddav_radicale import Radicale, card  # noqa: E402


def _wait_name(car: Car, pid: str, name: str) -> float:
    start = time.monotonic()
    poll(lambda: car.contacts(pid, q=name)["total"] == 1, timeout=30, what=name)
    return time.monotonic() - start


def _rounds(car: Car, pid: str, rounds: int, change: Callable[[str], None]) -> list[float]:
    out = []
    for i in range(rounds):
        name = f"Changed {i} {time.time_ns()}"
        time.sleep(random.uniform(1.0, 2.0))  # each change at a random phase of the poll
        t0 = time.monotonic()
        change(name)
        _wait_name(car, pid, name)
        out.append(time.monotonic() - t0)
    return out


def _run(phone: Phone, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    log = (phone.state_dir.parent / "run.log").open("a")
    proc = phone.popen("run", *args, stdout=subprocess.DEVNULL, stderr=log, env=env)
    log.close()
    return proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cards", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CARHUB_CARDDAV_PASSWORD": "secret"}
    os.environ["PYTHONPATH"] = str(ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="bench-carddav-"))
    server = Radicale(tmp / "radicale")
    cards = {i: card(f"uid-{i}", f"Person {i}", f"+49300{i:05d}") for i in range(a.cards)}
    for i, text in cards.items():
        server.write(f"c{i}.vcf", text)
    server.start()
    try:
        car = Car(tmp / "car", extra=["--auto-confirm"]).start()
        phone = Phone(tmp / "phone")
        phone.pair(car)
        pid = phone.status()["phone_id"]

        proc = _run(phone, car.endpoint, "--carddav", server.book_url(), "--carddav-user",
                    "alice", "--carddav-interval", "1", env=env)  # fmt: skip
        poll(lambda: car.contacts(pid)["total"] == a.cards, timeout=60, what="first sync")
        dav = _rounds(car, pid, a.rounds, lambda n: server.write("c1.vcf", card("uid-1", n)))
        stop(proc)

        vcf = tmp / "book.vcf"
        vcf.write_text("".join(cards.values()), newline="")
        proc = _run(phone, car.endpoint, "--contacts", str(vcf), env=env)

        def edit(name: str) -> None:
            cards[2] = card("uid-2", name)
            tmp_file = vcf.with_suffix(".tmp")
            tmp_file.write_text("".join(cards.values()), newline="")
            tmp_file.replace(vcf)

        time.sleep(3)  # its first sync (uid-1 goes back to "Person 1")
        poll(lambda: car.contacts(pid, q="Changed")["total"] == 0, timeout=30, what="file sync")
        files = _rounds(car, pid, a.rounds, edit)
        stop(proc)
    finally:
        stop_all()
        server.stop()
    result = {
        "cards": a.cards,
        "carddav_change_to_car_s": round(statistics.median(dav), 3),
        "carddav_min_max_s": [round(min(dav), 3), round(max(dav), 3)],
        "file_change_to_car_s": round(statistics.median(files), 3),
        "file_min_max_s": [round(min(files), 3), round(max(files), 3)],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
