"""Soak: now playing at 50 Hz from 3 phones with the dashboard open in Chromium.

Run: ``.venv/bin/python bench/bench_soak.py [--minutes 30] [--quick] [--phones 3] [--hz 50]``

The car is ``carhub run`` in a subprocess (``bench_lan.Car``); the phones are
``phone_bridge.engine`` in this process (``bench_lan.Phone``), each paired over the LAN,
each sending ``NowPlaying`` on its own link at ``--hz`` on its own schedule (offset from the
others'), as ``bench_lan`` does: every update a new title ``p{phone} #{k} g{g}``, where
``g`` numbers all updates in the order they were sent. The dashboard is open in Debian's
Chromium (Playwright, ``/usr/bin/chromium``, the e2e tests' launch arguments; never
downloaded), and a second subscriber, this process, reads ``/api/events`` itself.

Measured, for each subscriber (``page``: the frames the dashboard's own WebSocket
receives, through Playwright; ``ws``: this process's ``/api/events``):

- ``delivered``: updates whose ``media`` event reached the subscriber;
- ``coalesced``: updates not delivered by design. Every ``media`` event is the car's whole
  now-playing state (that of the phone that reported last), and the car keeps only the
  newest pending ``media`` event for a subscriber that is behind (``carhub.events``), so an
  update is legitimately replaced when a NEWER update (a higher ``g``, from any phone)
  reached the subscriber within ``--superseded-within`` seconds (1 s) of the old one
  being sent;
- ``dropped``: every other update: not delivered, and no newer state on the screen within
  that second (a lost event, or the subscriber stalled). 0 expected, per phone;
- ``wrong phone``: a ``media`` event whose ``phone_id`` is not the phone that sent it.

Also the final state: after the phones stop, ``GET /api/media``, the last ``media`` event of
each subscriber and the page's ``#np-title`` must all show the same title.

The car's RSS (``VmRSS``) is read before playing, after a warm-up (5% of the run, 5 to 60
s: first-use allocations such as SQLite's page cache are not growth), every 10 s, and at
the end while still playing; the target is end <= 105% of the warmed-up value.
``--quick`` is 10 minutes; ``--minutes 1`` is a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _util import Figure, print_table, summarise_ms  # noqa: E402
from bench_lan import Car, Phone, proc_kb  # noqa: E402

from protocol.media import NowPlaying  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@dataclass
class Sent:
    """Every update sent: by global number ``g``, its phone and its send time."""

    phone: list[int] = field(default_factory=list)
    at: list[float] = field(default_factory=list)


@dataclass
class Seen:
    """What one subscriber received: update number -> first receipt time, and oddities."""

    name: str
    at: dict[int, float] = field(default_factory=dict)
    wrong_phone: int = 0
    last_title: str = ""

    def on_frame(self, payload: str | bytes, phone_ids: list[str]) -> None:
        """Record one ``/api/events`` frame (only ``media`` events of this run count)."""
        now = time.perf_counter()
        ev = json.loads(payload)
        if ev.get("type") != "media":
            return
        title = str(ev["data"].get("title") or "")
        self.last_title = title
        parts = title.split()
        if len(parts) != 4 or parts[0] != "soak" or not parts[3].startswith("g"):
            return  # the snapshot's "nothing playing"
        g, phone = int(parts[3][1:]), int(parts[1][1:])
        self.at.setdefault(g, now)
        if ev["data"].get("phone_id") != phone_ids[phone]:
            self.wrong_phone += 1


def classify(sent: Sent, seen: Seen, n_phones: int, within: float) -> list[dict[str, int]]:
    """Count delivered, coalesced and dropped updates per phone (see the module docstring).

    Returns:
        Per phone: ``{"sent", "delivered", "coalesced", "dropped"}``.
    """
    n = len(sent.at)
    # earliest[g]: the earliest receipt of any update newer than g.
    earliest = [float("inf")] * (n + 1)
    for g in range(n - 1, -1, -1):
        earliest[g] = min(earliest[g + 1], seen.at.get(g + 1, float("inf")))
    out = [dict(sent=0, delivered=0, coalesced=0, dropped=0) for _ in range(n_phones)]
    for g in range(n):
        row = out[sent.phone[g]]
        row["sent"] += 1
        if g in seen.at:
            row["delivered"] += 1
        elif earliest[g] <= sent.at[g] + within:
            row["coalesced"] += 1
        else:
            row["dropped"] += 1
    return out


def now_playing(phone: int, k: int, g: int) -> NowPlaying:
    """The ``k``-th update of ``phone``, ``g``-th of all; its title names both."""
    return NowPlaying(
        title=f"soak p{phone} #{k} g{g}", artists=["Soak"], album=f"Phone {phone}",
        duration_ms=240_000, position_ms=(k * 20) % 240_000, rate=1.0, state="playing",
        artwork=b"", track_id=f"p{phone}t{k // 500}",
    )  # fmt: skip


async def play(
    phone: Phone, index: int, n_phones: int, hz: float, until: float, sent: Sent
) -> None:
    """Send ``NowPlaying`` at ``hz`` on an absolute schedule (a late tick is sent late)."""
    link = phone.link
    assert link is not None
    period = 1.0 / hz
    start = time.perf_counter() + period * index / n_phones
    k = 0
    while (t := start + k * period) < until:
        await asyncio.sleep(max(0.0, t - time.perf_counter()))
        while not link.events.empty():  # nothing of it is needed; a dead link raises
            ev = link.events.get_nowait()
            if isinstance(ev, BaseException):
                raise ev
        g = len(sent.at)
        sent.phone.append(index)
        sent.at.append(time.perf_counter())
        await link.send(now_playing(index, k, g))
        k += 1


async def read_events(url: str, seen: Seen, phone_ids: list[str]) -> None:
    """Subscribe to ``/api/events`` and record every media event until cancelled."""
    async with ws_connect(url, max_size=None) as ws:
        async for msg in ws:
            seen.on_frame(msg, phone_ids)


async def sample_rss(pid: int, out: list[tuple[float, int]], every: float = 10.0) -> None:
    """Append ``(time, VmRSS kB)`` of the car every ``every`` seconds until cancelled."""
    while True:
        out.append((time.perf_counter(), proc_kb(pid, "VmRSS")))
        await asyncio.sleep(every)


async def open_dashboard(pw: Any, url: str, seen: Seen, phone_ids: list[str]) -> Any:
    """Launch Chromium on the dashboard and record its WebSocket's frames into ``seen``."""
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium (never downloaded)")
    browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    page = await browser.new_page(viewport={"width": 1280, "height": 720})

    def on_ws(ws: Any) -> None:
        handler: Callable[[str | bytes], None] = lambda p: seen.on_frame(p, phone_ids)  # noqa: E731
        ws.on("framereceived", handler)

    page.on("websocket", on_ws)
    await page.goto(url + "/")
    await page.wait_for_selector("#np-title")
    return browser, page


async def soak(car: Car, work: Path, args: argparse.Namespace) -> list[Figure]:
    """Pair the phones, open the page, play for the run, and measure."""
    from playwright.async_api import async_playwright

    seconds = args.minutes * 60
    warmup = min(60.0, max(5.0, seconds * 0.05))
    phones = []
    for i in range(args.phones):
        phones.append(Phone(work / f"phone{i}", car))
        await phones[-1].pair()
    ids = [p.state.identity.device_id for p in phones]
    sent, ws_seen, page_seen = Sent(), Seen("ws"), Seen("page")
    rss: list[tuple[float, int]] = []
    events_url = car.dashboard.replace("http://", "ws://") + "/api/events"
    async with async_playwright() as pw:
        browser, page = await open_dashboard(pw, car.dashboard, page_seen, ids)
        reader = asyncio.create_task(read_events(events_url, ws_seen, ids))
        await asyncio.sleep(1.0)  # both subscribed before the first update
        rss_before = proc_kb(car.pid, "VmRSS")
        t0 = time.perf_counter()
        until = t0 + seconds
        players = [
            asyncio.create_task(play(p, i, args.phones, args.hz, until, sent))
            for i, p in enumerate(phones)
        ]
        await asyncio.sleep(warmup)
        rss_start = proc_kb(car.pid, "VmRSS")
        sampler = asyncio.create_task(sample_rss(car.pid, rss))
        print(f"  playing {args.phones} x {args.hz:g} Hz for {seconds:.0f} s; car RSS "
              f"{rss_before / 1024:.1f} MB before, {rss_start / 1024:.1f} MB after "
              f"{warmup:.0f} s of warm-up")  # fmt: skip
        await asyncio.gather(*players)
        elapsed = time.perf_counter() - t0
        rss_end = proc_kb(car.pid, "VmRSS")
        sampler.cancel()
        await asyncio.sleep(2.0)  # the last events reach both subscribers
        async with httpx.AsyncClient(timeout=10) as http:
            final_api = (await http.get(car.dashboard + "/api/media")).json()["title"]
        final_dom = await page.text_content("#np-title")
        reader.cancel()
        await browser.close()
    for p in phones:
        await p.close()
    rates = [sent.phone.count(i) / elapsed for i in range(args.phones)]
    print(f"  sent {len(sent.at)} updates in {elapsed:.1f} s: "
          + ", ".join(f"phone {i} {r:.1f} Hz" for i, r in enumerate(rates)))  # fmt: skip
    mbs = [kb / 1024 for _, kb in rss]
    print(f"  car RSS every 10 s: min {min(mbs):.1f} max {max(mbs):.1f} MB ({len(mbs)} samples); "
          f"end {rss_end / 1024:.1f} MB")  # fmt: skip
    lat = [ws_seen.at[g] - sent.at[g] for g in ws_seen.at if g < len(sent.at)]
    print(f"  ws: update sent -> media event: {summarise_ms(lat)}")
    final_ok = final_api == ws_seen.last_title == page_seen.last_title == final_dom
    print(f"  final title: API {final_api!r}, ws {ws_seen.last_title!r}, "
          f"page frames {page_seen.last_title!r}, page #np-title {final_dom!r}")  # fmt: skip
    figures = [
        Figure("car_rss_end_vs_start", rss_end / 1024, rss_start / 1024, "MB", "<= +5%",
               rss_end <= rss_start * 1.05),
        Figure("car_rss_end_vs_before_playing", rss_end / 1024, rss_before / 1024, "MB"),
        Figure("send_rate_all_phones", len(sent.at) / elapsed, args.hz * args.phones, "Hz"),
    ]  # fmt: skip
    for seen in (page_seen, ws_seen):
        counts = classify(sent, seen, args.phones, args.superseded_within)
        for i, c in enumerate(counts):
            print(f"  {seen.name} phone {i}: sent {c['sent']}, delivered {c['delivered']}, "
                  f"coalesced {c['coalesced']}, dropped {c['dropped']}")  # fmt: skip
            figures.append(Figure(f"{seen.name}_dropped_phone{i}", c["dropped"], c["sent"],
                                  "upd", "== 0", c["dropped"] == 0))  # fmt: skip
        delivered = sum(c["delivered"] for c in counts)
        figures.append(Figure(f"{seen.name}_delivered_all", delivered, len(sent.at), "upd"))
        figures.append(Figure(f"{seen.name}_wrong_phone", seen.wrong_phone, len(sent.at), "ev",
                              "== 0", seen.wrong_phone == 0))  # fmt: skip
    figures.append(Figure("final_state_shown", float(final_ok), 1.0, "", "== 1", final_ok))
    return figures


async def main_async(args: argparse.Namespace) -> bool:
    """Run the soak and print the table; return whether every target was met."""
    work = Path(tempfile.mkdtemp(prefix="bench_soak."))
    car = Car(work / "car")
    try:
        figures = await soak(car, work, args)
    finally:
        car.stop()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print_table(figures, {
        "car_rss_end_vs_start": "the car's RSS after the warm-up, while playing",
        "car_rss_end_vs_before_playing": "the car's RSS with phones paired, nothing played",
        "send_rate_all_phones": "the rate asked for (phones x --hz)",
        "*_dropped_phoneN": "that phone's updates sent (ratio: the dropped share)",
        "*_delivered_all": "updates sent; the rest were coalesced (superseded) or dropped",
        "*_wrong_phone": "updates sent",
    })  # fmt: skip
    return all(f.met is not False for f in figures)


def main() -> None:
    """Parse arguments and run; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="how long to play (default 30; 10 --quick)")
    parser.add_argument("--quick", action="store_true", help="10 minutes")
    parser.add_argument("--phones", type=int, default=3, help="phones playing (default 3)")
    parser.add_argument("--hz", type=float, default=50.0, help="updates per second per phone")
    parser.add_argument("--superseded-within", type=float, default=1.0, metavar="S",
                        help="an update not delivered is coalesced if a newer one arrived "
                             "within S seconds (default 1)")  # fmt: skip
    args = parser.parse_args()
    if args.minutes is None:
        args.minutes = 10.0 if args.quick else 30.0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(0 if asyncio.run(main_async(args)) else 1)


if __name__ == "__main__":
    main()
