# ruff: noqa: F811  (the live_car and page fixtures are imported, then requested)
"""The dashboard's Classic (PBAP) parts in Debian's Chromium, against a real running car.

As in test_dashboard_apple.py, the car is a real ``CarRunner`` on a loop in a thread; the
Classic radio is the only double: the test reports into the engine through
``ClassicEvents`` exactly as ``carhub.pbap`` does (on the car's loop). The real radio path
is the lead's e2e tests'. The page is only clicked and read, as a car user would.
"""

from __future__ import annotations

import time
from typing import Any

from carhub.classic import CallEntry, PulledPage
from tests.carhub.classic_api_double import FakeClassicHandle, FakeClassicSide, book_of, state_of
from tests.e2e.test_dashboard_apple import LiveCar, live_car, page, shot  # noqa: F401

PID = "0a1b2c3d4e5f"
ADDR = "0A:1B:2C:3D:4E:5F"
NAME = "Test Pixel"


def test_ssp_pairing_pull_progress_and_recent_calls(live_car: LiveCar, page: Any) -> None:
    from playwright.sync_api import expect

    car, tid = live_car, page.get_by_test_id
    side = FakeClassicSide(car.engine)
    car.call(car.engine.classic_attach, "00:1a:7d:da:71:13", side.connect)
    page.goto(car.dashboard)
    expect(tid("car-name")).to_have_text("Test Car")

    # 1. An SSP numeric comparison is a Bluetooth pairing request; Accept answers it.
    answers: list[bool] = []
    car.call(car.engine.classic_pairing_requested, PID, NAME, "204816",
             time.time() + 60, answers.append)  # fmt: skip
    expect(tid("pairing-request")).to_have_attribute("data-method", "ssp")
    expect(tid("pairing-method")).to_contain_text("Bluetooth Classic")
    expect(tid("pairing-fingerprint")).to_have_text(ADDR)
    expect(tid("pairing-code")).to_have_text("204 816")
    tid("accept").click()
    expect(tid("pairing-requests")).to_be_hidden()
    assert answers == [True]

    # 2. Bonded and connected: the phone shows with PBAP; no pull yet, no bar.
    handle = FakeClassicHandle(ADDR)
    car.call(car.engine.classic_bonded, PID, NAME)
    car.call(car.engine.classic_connected, PID, handle)
    expect(tid("phone")).to_have_attribute("data-connected", "true")
    expect(tid("phone-profiles")).to_have_attribute("data-profiles", "pbap")
    expect(tid("phone-state")).to_have_text("CLASSIC")
    expect(tid("recent-calls")).to_be_visible()
    expect(tid("calls-empty")).to_be_visible()
    expect(tid("sync-progress")).to_be_hidden()

    # 3. The first page: the bar says how far, and its names are listed at once.
    book = book_of(30)
    first = PulledPage("contacts", book[:10], owner="Owner Name", done=10, total=30)
    car.call(car.engine.classic_page, PID, first)
    bar = tid("sync-progress")
    expect(bar).to_have_attribute("data-stage", "contacts")
    expect(bar).to_have_attribute("data-done", "10")
    expect(tid("sync-label")).to_have_text("Downloading contacts · 10 of 30")
    expect(tid("contacts-count")).to_have_text("10")
    expect(tid("contact-name").first).to_have_text("Contact 0000")
    width = page.locator("#sync-fill").evaluate("e => e.getBoundingClientRect().width")
    track = page.locator(".sync-bar").evaluate("e => e.getBoundingClientRect().width")
    assert 0.2 < width / track < 0.45, (width, track)  # a third, as the label says
    shot(page, "classic-01-progress.png")

    # 4. The rest of the book, the calls, done: the bar is full and the calls are listed.
    car.call(car.engine.classic_page, PID,
             PulledPage("contacts", book[10:], done=30, total=30))  # fmt: skip
    today = time.strftime("%Y-%m-%d")
    calls = [CallEntry("Bob Jones", "+441632960001", "missed", f"{today}T08:15:00"),
             CallEntry("", "+441632960002", "outgoing", f"{today}T07:05:00")]  # fmt: skip
    car.call(car.engine.classic_calls, PID, calls)
    car.call(car.engine.classic_pull_done, PID, state_of(1), frozenset(c.uid for c in book))
    expect(bar).to_have_attribute("data-stage", "done")
    expect(tid("sync-label")).to_have_text("Up to date")
    page.wait_for_function(  # full once its transition ends
        "() => { const f = document.getElementById('sync-fill');"
        " const w = (e) => e.getBoundingClientRect().width;"
        " return w(f) >= w(f.parentElement) - 1; }"
    )
    expect(tid("contacts-count")).to_have_text("30")
    expect(tid("phone-contacts")).to_have_attribute("data-count", "30")
    rows = tid("call")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-type", "missed")
    expect(rows.nth(0).get_by_test_id("call-name")).to_have_text("Bob Jones")
    expect(rows.nth(0).get_by_test_id("call-time")).to_have_text("8:15")
    expect(rows.nth(1).get_by_test_id("call-name")).to_have_text("+441632960002")
    expect(tid("contacts-search")).to_be_enabled()
    shot(page, "classic-02-done-and-calls.png")

    # 5. A reconnect with nothing changed, then a pull that stops: each says so.
    assert side.pull(PID, book, state_of(1)) == "skipped"
    expect(tid("sync-label")).to_have_text("Unchanged since the last download")
    assert side.pull(PID, book_of(40), state_of(2), fail_at=0) == "failed"
    expect(bar).to_have_attribute("data-stage", "failed")
    expect(tid("sync-label")).to_have_text("Download stopped")
    expect(tid("contacts-count")).to_have_text("30")  # the contacts it had stay

    # 6. Unpair from the page: the phone, its contacts and calls are gone.
    erased: list[str] = []
    car.call(car.engine.on_unpair, erased.append)
    tid("unpair").click()
    tid("unpair").click()
    expect(tid("phone")).to_have_count(0)
    expect(tid("recent-calls")).to_be_hidden()
    assert erased == [PID] and handle.closed == "unpaired"
