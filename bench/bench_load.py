"""Load: N phones syncing their books against one real car at once, then 1% deltas.

Run: ``.venv/bin/python bench/bench_load.py [--phones 8] [--contacts 10000] [--quick]``

The car is ``carhub run`` in a subprocess (``bench_lan.Car``: LAN on loopback, its RSS from
``/proc``). The phones are ``phone_bridge.engine`` in this process, as in ``bench_lan``:
each its own state directory (its own key), paired over the LAN, and its own generated
book (``generate_vcards(n, seed=100 + i)``, so no two books are alike). A sync is timed
from ``sync_once`` until its last ack (the car's commit).

Phases, all in one run against the same car:

1. one phone alone (the baseline): ``--solo-runs`` full syncs of its book into an empty
   mirror (each from a freshly imported book, so its digest cache is cold, as in phase 2),
   then as many 1% deltas (1% of its contacts renamed) in the open session;
2. all phones at once: a full sync of each book into an empty mirror, started together
   (``asyncio.gather``); every mirror is then checked;
3. all phones at once, ``--delta-rounds`` times: each renames another 1% of its book and
   syncs; every mirror is checked after the last round.

"Mirror equal to its phone": the car's SQLite file, opened read-only, holds for that phone
exactly the phone's contacts (same uids, and every stored ``Contact`` equal to the one
sent, field by field), and ``GET /api/phones/{id}/contacts`` reports the same total.

The phones share this process (one core of the machine's two): the concurrent times include
the phones waiting for each other's encoding, as well as for the car. The car's CPU seconds
(``/proc/PID/stat``) per phase are printed beside the wall times to tell the two apart.
With 8 phones, p99 of 8 (or 24) samples is close to their maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _util import Figure, median, percentile, print_table, summarise_ms  # noqa: E402
from bench_lan import EMPTY, Car, Phone, load, proc_kb, reset_peak  # noqa: E402

from phone_bridge.engine import Contacts  # noqa: E402
from phone_bridge.sample_data import generate_vcards  # noqa: E402
from protocol.contacts import Contact  # noqa: E402

_decode_contact = msgspec.msgpack.Decoder(Contact)


def car_cpu_s(pid: int) -> float:
    """Return the process's user + system CPU time in seconds (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def edit_one_percent(book: Contacts, round_: int) -> Contacts:
    """Return the book with 1% of its contacts renamed (a different 1% each round).

    The digest cache is shared with ``book``: a phone keeps its address book between syncs.
    """
    contacts = book.contacts.copy()
    step = 100
    for index in range(round_ % step, len(contacts), step):
        c = contacts[index]
        contacts[index] = msgspec.structs.replace(c, fn=f"{c.fn} r{round_}")
    return Contacts(contacts, book.photos, cache=book.cache)


def mirror_errors(db: Path, phone_id: str, book: Contacts) -> list[str]:
    """Compare the car's stored contacts for ``phone_id`` with the phone's book.

    Returns:
        One line per difference (empty when the mirror equals the book).
    """
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "SELECT uid, data FROM contacts WHERE phone_id = ?", (phone_id,)
        ).fetchall()
    finally:
        con.close()
    stored = {str(uid): _decode_contact.decode(data) for uid, data in rows}
    expected = {c.uid: c for c in book.contacts}
    errors = []
    if missing := expected.keys() - stored.keys():
        errors.append(f"{len(missing)} contacts missing, e.g. {next(iter(missing))}")
    if extra := stored.keys() - expected.keys():
        errors.append(f"{len(extra)} contacts not on the phone, e.g. {next(iter(extra))}")
    differ = [uid for uid in expected.keys() & stored.keys() if expected[uid] != stored[uid]]
    if differ:
        errors.append(f"{len(differ)} contacts differ, e.g. {differ[0]}")
    return errors


async def check_mirrors(
    http: httpx.AsyncClient, car: Car, phones: list[Phone], books: list[Contacts], what: str
) -> int:
    """Check every phone's mirror (SQLite and the REST total); return how many differ."""
    db = car_state(car) / "carhub.sqlite3"
    bad = 0
    for phone, book in zip(phones, books, strict=True):
        pid = phone.state.identity.device_id
        errors = mirror_errors(db, pid, book)
        r = await http.get(f"{car.dashboard}/api/phones/{pid}/contacts", params={"limit": 0})
        r.raise_for_status()
        if r.json()["total"] != len(book.contacts):
            errors.append(f"API total {r.json()['total']} != {len(book.contacts)}")
        if errors:
            bad += 1
            print(f"  MISMATCH {what} phone {pid}: " + "; ".join(errors))
    print(f"  {what}: {len(phones) - bad}/{len(phones)} mirrors equal to their phone")
    return bad


def car_state(car: Car) -> Path:
    """The car's state directory (``--state-dir`` of its command line)."""
    args = car.proc.args
    assert isinstance(args, list)
    return Path(args[args.index("--state-dir") + 1])


async def solo(phone: Phone, data: bytes, runs: int) -> tuple[list[float], list[float], int]:
    """Phase 1: full syncs and 1% deltas of one phone alone.

    Returns:
        Full-sync times, delta times, and the car's peak RSS (kB) over the phase.
    """
    reset_peak(phone.car.pid)
    full = []
    for _ in range(runs):
        full.append(await phone.sync(load(data)))  # a fresh import: a cold digest cache
        await phone.sync(EMPTY)
    book = load(data)
    await phone.sync(book)
    deltas = []
    for r in range(runs):  # cumulative, as in phase 3: each sync changes exactly 1%
        book = edit_one_percent(book, r)
        deltas.append(await phone.sync(book))
    peak = proc_kb(phone.car.pid, "VmHWM")
    await phone.sync(EMPTY)  # phase 2 starts from empty mirrors
    return full, deltas, peak


async def together(phones: list[Phone], books: list[Contacts]) -> list[float]:
    """Start one sync on every phone at the same moment; return each one's time."""
    return list(await asyncio.gather(*(p.sync(b) for p, b in zip(phones, books, strict=True))))


def figures_for(label: str, many: list[float], alone: list[float], n_phones: int) -> list[Figure]:
    """p50 and p99 of the concurrent syncs beside the same percentile of one phone alone."""
    return [
        Figure(f"{label}_{n_phones}_phones_p{p}", percentile(many, p), percentile(alone, p), "s")
        for p in (50, 99)
    ]


async def main_async(args: argparse.Namespace) -> int:
    """Run the three phases and print the table; return the number of unequal mirrors."""
    n_phones = 4 if args.quick else args.phones
    n = 2000 if args.quick else args.contacts
    work = Path(tempfile.mkdtemp(prefix="bench_load."))
    car = Car(work / "car")
    phones: list[Phone] = []
    bad, wall = 0, 0.0
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(n_phones):  # the car runs one pairing at a time
                phones.append(Phone(work / f"phone{i}", car))
                await phones[-1].pair()
            datas = [generate_vcards(n, seed=100 + i) for i in range(n_phones)]
            rss_idle = proc_kb(car.pid, "VmRSS")
            cpu0 = car_cpu_s(car.pid)
            full1, delta1, peak1 = await solo(phones[0], datas[0], args.solo_runs)
            cpu_solo = car_cpu_s(car.pid) - cpu0
            print(f"  one phone, {n}: full {summarise_ms(full1)}; delta 1% {summarise_ms(delta1)}")
            print(f"  car CPU in phase 1 ({2 * args.solo_runs + 2} syncs): {cpu_solo:.2f} s")

            books = [load(d) for d in datas]
            reset_peak(car.pid)
            cpu0, t0 = car_cpu_s(car.pid), time.perf_counter()
            full_n = await together(phones, books)
            wall, cpu_full = time.perf_counter() - t0, car_cpu_s(car.pid) - cpu0
            print(f"  {n_phones} phones at once, {n} each: {summarise_ms(full_n)}; "
                  f"all done in {wall:.2f} s, car CPU {cpu_full:.2f} s")  # fmt: skip
            bad += await check_mirrors(http, car, phones, books, "after the full syncs")

            delta_n: list[float] = []
            cpu0 = car_cpu_s(car.pid)
            for r in range(args.delta_rounds):
                books = [edit_one_percent(b, r) for b in books]
                delta_n += await together(phones, books)
            cpu_delta = car_cpu_s(car.pid) - cpu0
            print(f"  {n_phones} phones at once, 1% of {n} each, {args.delta_rounds} rounds: "
                  f"{summarise_ms(delta_n)}; car CPU {cpu_delta:.2f} s")  # fmt: skip
            bad += await check_mirrors(http, car, phones, books, "after the 1% deltas")
            peak_n = proc_kb(car.pid, "VmHWM")
            for p in phones:
                await p.close()
    finally:
        car.stop()
        shutil.rmtree(work, ignore_errors=True)
    k = f"{n // 1000}k" if n >= 1000 else str(n)
    figures = figures_for(f"full_sync_{k}", full_n, full1, n_phones)
    figures.append(Figure(f"full_sync_{k}_{n_phones}_phones_all_done", wall,
                          n_phones * median(full1), "s"))  # fmt: skip
    figures += figures_for(f"delta1pct_{k}", delta_n, delta1, n_phones)
    figures.append(Figure(f"car_peak_rss_{n_phones}_phones", peak_n / 1024, peak1 / 1024, "MB"))
    figures.append(Figure("mirrors_unequal", bad, 0, "", "== 0", bad == 0))
    print()
    print(f"car RSS idle (phones paired, nothing synced): {rss_idle / 1024:.0f} MB")
    print_table(figures, {
        "full_sync_*": f"the same percentile of {args.solo_runs} full syncs of one phone alone "
                       "(same car, same size of book, cold digest cache)",
        "full_sync_*_all_done": "the phones' count times one phone's median full sync "
                                "(the same work done one phone after the other)",
        "delta1pct_*": f"the same percentile of {args.solo_runs} 1% deltas of one phone alone",
        "car_peak_rss": "the car's peak RSS (VmHWM) over the one-phone phase",
        "mirrors_unequal": "none expected (SQLite read-only + REST total, after each phase)",
    })  # fmt: skip
    return bad


def main() -> None:
    """Parse arguments and run; exit 1 when a mirror differs from its phone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=8, help="phones at once (default 8)")
    parser.add_argument("--contacts", type=int, default=10_000, help="book size (default 10k)")
    parser.add_argument("--solo-runs", type=int, default=5, help="one-phone baseline runs")
    parser.add_argument("--delta-rounds", type=int, default=3, help="concurrent 1%% rounds")
    parser.add_argument("--quick", action="store_true", help="4 phones x 2k (CI smoke)")
    args = parser.parse_args()
    if args.quick:
        args.solo_runs = min(args.solo_runs, 3)
    sys.exit(1 if asyncio.run(main_async(args)) else 0)


if __name__ == "__main__":
    main()
