"""The head-unit dashboard in Debian's Chromium, driven by Playwright, against real processes.

A real car (``carhub run``) and a real phone (``phone-bridge pair`` / ``run``) run as
subprocesses; the test only clicks and reads the page as a car user would, and checks the
car's REST API where the page's claim must be backed by the phone (Next really changed the
track). Screenshots of each step land in ``artifacts/screenshots/``.

Chromium is never downloaded: the test uses ``/usr/bin/chromium`` and FAILS (not skips) when
it is missing, because CI installs it and a silent skip would hide a broken dashboard.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from phone_bridge.media_source import load_tracks
from phone_bridge.sample_data import generate_vcards

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MEDIA = ROOT / "samples" / "media"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
N_CONTACTS = 2000
PHONE_NAME = "E2E Phone"
T = TypeVar("T")


# -- helpers ----------------------------------------------------------------------------
def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@dataclass
class Proc:
    """A CLI subprocess whose stdout and stderr go to files we can poll without blocking."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def start(tmp: Path, label: str, argv: list[str], stdin: bool = False) -> Proc:
    out, err = tmp / f"{label}.out", tmp / f"{label}.err"
    with out.open("wb") as o, err.open("wb") as e:
        popen = subprocess.Popen(
            argv,
            cwd=tmp,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return Proc(popen, out, err)


# -- fixtures ---------------------------------------------------------------------------
@dataclass
class Car:
    proc: Proc
    dashboard: str
    endpoint: str
    id: str

    def api(self, path: str) -> Any:
        return get_json(self.dashboard.rstrip("/") + path)


@pytest.fixture
def car(tmp_path: Path) -> Iterator[Car]:
    """A real car with pairing open, no auto-confirm, no mDNS (phones dial its endpoint)."""
    argv = [str(BIN / "carhub"), "run", "--name", "Test Car", "--state-dir", "car",
            "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0", "--no-mdns",
            "--pairing", "open", "--json"]  # fmt: skip
    proc = start(tmp_path, "car", argv)
    try:
        ready = wait_for(
            "the car's ready line", lambda: _event(proc, "ready") or _dead(proc, "car")
        )
        yield Car(proc, ready["dashboard"], ready["endpoint"], ready["id"])
    finally:
        proc.stop()


def _event(proc: Proc, name: str) -> dict[str, Any] | None:
    return next((j for j in proc.json_lines() if j.get("event") == name), None)


def _dead(proc: Proc, label: str) -> None:
    if proc.popen.poll() is not None:
        pytest.fail(f"{label} exited {proc.popen.returncode}: {proc.stderr()[-2000:]}")


@pytest.fixture
def page() -> Iterator[Any]:
    """A 1280x720 Chromium page; fails loudly when the system Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium); "
            "the dashboard test never downloads a browser"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 720})
            pg.set_default_timeout(15_000)
            yield pg
        finally:
            browser.close()


@pytest.fixture
def contacts_file(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.vcf"
    path.write_bytes(generate_vcards(N_CONTACTS))
    return path


def shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / name))


def by_id(pg: Any, name: str) -> Any:
    return pg.get_by_test_id(name)


def text_of(pg: Any, name: str) -> str:
    return str(by_id(pg, name).first.inner_text()).strip()


def sample_position(pg: Any) -> tuple[int, float]:
    """Return (the shown position in ms, the page's clock in ms), read together."""
    pos, now = pg.evaluate(
        "() => { tickMedia(); return [Number(document.getElementById('np-progress')"
        ".dataset.positionMs), performance.now()]; }"
    )
    return int(pos), float(now)


def position_ms(pg: Any) -> int:
    return int(by_id(pg, "np-progress").get_attribute("data-position-ms") or 0)


# -- the scenario -----------------------------------------------------------------------
def test_dashboard_pair_sync_media_unpair(
    car: Car, page: Any, contacts_file: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    phone_cli = [str(BIN / "phone-bridge"), "--state-dir", "phone"]
    tracks, _ = load_tracks(MEDIA)
    first, second = tracks[0], tracks[1]

    # 1. The dashboard shows the car; pairing is open (opened from the page if not).
    page.goto(car.dashboard)
    expect(by_id(page, "car-name")).to_have_text("Test Car")
    if by_id(page, "pairing-state").get_attribute("data-state") != "open":
        by_id(page, "open-pairing").click()
    expect(by_id(page, "pairing-state")).to_have_attribute("data-state", "open")
    assert car.api("/api/status")["pairing_open"] is True

    # 2. The phone asks to pair; the page shows the phone's code; Accept on the page.
    pair = start(
        tmp_path, "pair", [*phone_cli, "pair", car.endpoint, "--name", PHONE_NAME], stdin=True
    )
    try:
        match = wait_for(
            "the phone's pairing prompt",
            lambda: re.search(r"Pairing code: (\d{3} \d{3})", pair.stderr()) or _dead(pair, "pair"),
        )
        phone_code = match.group(1)
        request = by_id(page, "pairing-requests")
        expect(request).to_be_visible()
        expect(by_id(page, "pairing-code")).to_have_text(phone_code)
        expect(request).to_contain_text(PHONE_NAME)
        shot(page, "01-pairing-request.png")
        by_id(page, "accept").click()
        assert pair.popen.stdin is not None
        pair.popen.stdin.write(b"y\n")
        pair.popen.stdin.close()
        rc = pair.popen.wait(20)
        assert rc == 0, f"phone-bridge pair exited {rc}: {pair.stderr()[-2000:]}"
    finally:
        pair.stop()
    expect(request).to_be_hidden()
    phone_row = by_id(page, "phone")
    expect(phone_row).to_have_count(1)
    expect(phone_row).to_contain_text(PHONE_NAME)
    phone_id = phone_row.get_attribute("data-phone-id")
    assert [p["id"] for p in car.api("/api/phones")] == [phone_id]
    shot(page, "02-paired.png")

    run_args = ["--name", PHONE_NAME, "--json", "--contacts", str(contacts_file)]
    run_args += ["--media", str(MEDIA)]
    # 3. The phone syncs 2000 contacts and starts its player; the page lists them.
    run = start(
        tmp_path,
        "run",
        [*phone_cli, "run", car.endpoint, *run_args],
    )
    try:
        wait_for(
            "the phone's 'synced' event",
            lambda: _event(run, "synced") or _dead(run, "run"),
            timeout=30,
        )
        expect(phone_row).to_have_attribute("data-connected", "true")
        expect(by_id(page, "contacts-count")).to_have_text(str(N_CONTACTS))
        expect(by_id(page, "contact")).not_to_have_count(0)
        # A name from the page itself, so the search is for something known to exist.
        name = text_of(page, "contact-name")
        expected = car.api(f"/api/phones/{phone_id}/contacts?limit=0&q={_q(name)}")["total"]
        assert 0 < expected < N_CONTACTS
        by_id(page, "contacts-search").fill(name)
        expect(by_id(page, "contacts-count")).to_have_text(str(expected))
        names = by_id(page, "contact-name").all_inner_texts()
        assert names and all(name.casefold() in n.casefold() for n in names), names
        shot(page, "03-contacts.png")

        # 4. Now playing: the first track with artwork, moving; Next; pause.
        expect(by_id(page, "np-title")).to_have_text(first.title)
        expect(by_id(page, "np-artists")).to_have_text(", ".join(first.artists))
        art = by_id(page, "np-artwork")
        expect(art).to_be_visible()
        page.wait_for_function(
            "() => { const i = document.getElementById('np-artwork');"
            " return i.complete && i.naturalWidth > 0; }"
        )
        expect(by_id(page, "btn-playpause")).to_have_attribute("data-state", "playing")
        pos0, t0 = sample_position(page)
        page.wait_for_timeout(1500)
        pos1, t1 = sample_position(page)
        # Measured against the page's own clock, so a loaded CI machine cannot fake a stall.
        assert t1 - t0 >= 1400 and abs((pos1 - pos0) - (t1 - t0)) < 300, (pos0, pos1, t0, t1)
        shot(page, "04-now-playing.png")

        track_before = car.api("/api/media")["track_id"]
        assert track_before == first.track_id
        by_id(page, "btn-next").click()
        expect(by_id(page, "np-title")).to_have_text(second.title)
        expect(by_id(page, "np-artists")).to_have_text(", ".join(second.artists))
        assert car.api("/api/media")["track_id"] == second.track_id  # the phone really moved
        shot(page, "05-after-next.png")

        by_id(page, "btn-playpause").click()
        expect(by_id(page, "btn-playpause")).to_have_attribute("data-state", "paused")
        assert car.api("/api/media")["state"] == "paused"
        paused_at = position_ms(page)
        page.wait_for_timeout(1000)
        assert position_ms(page) == paused_at, "progress kept moving while paused"

        # 5. Unpair from the page: two taps; the phone and its contacts are gone.
        unpair = by_id(page, "unpair")
        unpair.click()
        expect(unpair).to_have_attribute("data-confirm", "true")
        assert len(car.api("/api/phones")) == 1, "one tap must not unpair"
        unpair.click()
        expect(by_id(page, "phone")).to_have_count(0)
        expect(by_id(page, "contact")).to_have_count(0)
        expect(by_id(page, "contacts-count-wrap")).to_be_hidden()
        assert car.api("/api/phones") == []
        with pytest.raises(urllib.error.HTTPError) as err:
            car.api(f"/api/phones/{phone_id}/contacts")
        assert err.value.code == 404
    finally:
        run.stop()
    assert car.proc.popen.poll() is None, "the car died during the scenario"


def _q(s: str) -> str:
    from urllib.parse import quote

    return quote(s)
