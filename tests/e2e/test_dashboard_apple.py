"""The dashboard's Apple-profile parts in Debian's Chromium, against a real running car.

The car is a real ``CarRunner`` (its uvicorn, engine and SQLite store) on an event loop in
a thread of this process; the BLE side is the only double: the test reports into the
engine through ``AppleEvents`` exactly as ``carhub.ble`` does (on the car's loop), and a
``FakeAppleHandle`` records what the car sends to the "iPhone". The page is only clicked
and read, as a car user would. Screenshots land in ``artifacts/screenshots/``.

Chromium is never downloaded: the test FAILS when ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from carhub.engine import CarConfig, Engine
from carhub.runner import CarRunner, RunOptions
from protocol.media import NowPlaying
from tests.carhub.apple_api_double import FakeAppleHandle, note

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
PID = "f0e1d2c3b4a5"
PHONE_NAME = "Test iPhone"
T = TypeVar("T")


@dataclass
class LiveCar:
    """A running car and a way to call its engine on its own loop (as the BLE side does)."""

    runner: CarRunner
    loop: asyncio.AbstractEventLoop
    dashboard: str

    @property
    def engine(self) -> Engine:
        return self.runner.engine

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)


@pytest.fixture
def live_car(tmp_path: Path) -> Iterator[LiveCar]:
    umask = os.umask(0o022)
    os.umask(umask)  # CarRunner narrows the umask for the car's files: give it back after
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="car", daemon=True)
    thread.start()
    config = CarConfig(name="Test Car", state_dir=tmp_path / "car", pairing_open=True)
    runner = CarRunner(config, RunOptions(listen="127.0.0.1:0", ui="127.0.0.1:0", mdns=False))
    try:
        asyncio.run_coroutine_threadsafe(runner.start(), loop).result(15)
        runner.engine.apple_enabled = True
        yield LiveCar(runner, loop, f"http://127.0.0.1:{runner.ui_port}/")
    finally:
        asyncio.run_coroutine_threadsafe(runner.stop(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        os.umask(umask)


@pytest.fixture
def page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 720})
            pg.set_default_timeout(15_000)
            yield pg
        finally:
            browser.close()


def wait_for(what: str, probe: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def shot(pg: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / name))


def test_le_sc_pairing_notifications_and_ams_on_the_dashboard(live_car: LiveCar, page: Any) -> None:
    from playwright.sync_api import expect

    car, tid = live_car, page.get_by_test_id
    page.goto(car.dashboard)
    expect(tid("car-name")).to_have_text("Test Car")
    expect(tid("notifications")).to_be_hidden()  # no Apple phone yet: the page as it was

    # 1. An LE SC numeric comparison shows as a Bluetooth pairing request; Accept answers it.
    answers: list[bool] = []
    car.call(car.engine.apple_pairing_requested, PID, PHONE_NAME, "482916",
             time.time() + 60, answers.append)  # fmt: skip
    request = tid("pairing-request")
    expect(request).to_have_attribute("data-method", "le-sc")
    expect(tid("pairing-method")).to_contain_text("Bluetooth LE Secure Connections")
    expect(tid("pairing-code")).to_have_text("482 916")
    expect(tid("pairing-fingerprint")).to_have_text("F0:E1:D2:C3:B4:A5")
    expect(request).to_contain_text(PHONE_NAME)
    shot(page, "apple-01-le-sc-request.png")
    tid("accept").click()
    expect(tid("pairing-requests")).to_be_hidden()
    assert answers == [True]

    # 2. Bonded and connected: the phone shows with its profiles.
    handle = FakeAppleHandle(profiles=("ams", "ancs"))
    car.call(car.engine.apple_bonded, PID, PHONE_NAME)
    car.call(car.engine.apple_connected, PID, handle)
    phone = tid("phone")
    expect(phone).to_have_attribute("data-connected", "true")
    expect(tid("phone-profiles")).to_have_attribute("data-profiles", "ams,ancs")
    expect(tid("phone-state")).to_have_text("BLE")
    expect(tid("notifications")).to_be_visible()
    expect(tid("notifications-empty")).to_be_visible()

    # 3. Notifications appear, newest first, with what the phone sent.
    today = time.strftime("%Y-%m-%d")
    older = note(PID, 11, f"{today}T08:05:00", title="Older", positive="Call", negative=None)
    car.call(car.engine.apple_notification, older)
    car.call(car.engine.apple_notification, note(PID, 12, f"{today}T09:30:00", title="Lunch?"))
    cards = tid("notification")
    expect(cards).to_have_count(2)
    first = cards.nth(0)
    expect(first).to_have_attribute("data-uid", "12")
    expect(first.get_by_test_id("notification-title")).to_have_text("Lunch?")
    expect(first.get_by_test_id("notification-app")).to_have_text("Messages")
    expect(first.get_by_test_id("notification-subtitle")).to_have_text("subtitle 12")
    expect(first.get_by_test_id("notification-message")).to_have_text("message 12")
    expect(first.get_by_test_id("notification-time")).to_have_text("9:30")
    expect(cards.nth(1).get_by_test_id("notification-negative")).to_have_count(0)
    for button in (first.get_by_test_id("notification-positive"),
                   first.get_by_test_id("notification-negative")):  # fmt: skip
        box = button.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44, box
    shot(page, "apple-02-notifications.png")

    # 4. An action button sends the action to the phone; the phone removes it; it goes.
    first.get_by_test_id("notification-negative").click()
    wait_for("the action to reach the phone", lambda: handle.actions_sent == [(12, "negative")])
    car.call(car.engine.apple_notification_removed, PID, 12)
    expect(cards).to_have_count(1)
    expect(cards.nth(0)).to_have_attribute("data-uid", "11")

    # 5. AMS now playing drives the player, with a moving bar; Next goes to the phone.
    np = NowPlaying(title="Blue Train", artists=["John Coltrane"], album="Blue Train",
                    duration_ms=643_000, position_ms=60_000, rate=1.0, state="playing",
                    artwork=b"", track_id="bt")  # fmt: skip
    car.call(car.engine.apple_now_playing, PID, np, int(time.time() * 1000))
    expect(tid("np-title")).to_have_text("Blue Train")
    expect(page.locator("#np-source")).to_contain_text("AMS")
    pos0 = int(tid("np-progress").get_attribute("data-position-ms") or 0)
    page.wait_for_timeout(800)
    assert int(tid("np-progress").get_attribute("data-position-ms") or 0) > pos0 + 400
    tid("btn-next").click()
    wait_for("Next to reach the phone", lambda: handle.media_sent == ["next"])
    shot(page, "apple-03-now-playing.png")

    # 6. Unpair from the page: the phone, its notifications and its track are gone.
    erased: list[str] = []
    car.call(car.engine.on_unpair, erased.append)
    tid("unpair").click()
    tid("unpair").click()
    expect(tid("phone")).to_have_count(0)
    expect(tid("notifications")).to_be_hidden()
    expect(tid("np-title")).to_have_text("Nothing playing")
    assert erased == [PID] and handle.closed == "unpaired"
