"""A PBAP pull's end (``classic_pull_done``): the mass-delete guard of CarHub phones, and
its deletes, orphan photos and new state in one transaction.

The Classic side is ``FakeClassicSide``; the engine, its SQLite store and its event hub are
real.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from carhub.engine import CarConfig, Engine
from carhub.store import Store, StoreError
from protocol.identity import Identity
from tests.carhub.classic_api_double import (
    FakeClassicHandle,
    FakeClassicSide,
    book_of,
    state_of,
)

PID = "a1b2c3d4e5f6"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(),
                 Store(tmp_path / "carhub.sqlite3"))  # fmt: skip
    eng.classic_bonded(PID, "Pixel 9")
    eng.classic_connected(PID, FakeClassicHandle(PID))
    yield eng
    await eng.shutdown()
    eng.store.close()


@pytest.fixture
def side(engine: Engine) -> FakeClassicSide:
    return FakeClassicSide(engine, page_size=40)


def syncs(engine: Engine, run: Any) -> list[dict[str, Any]]:
    sub = engine.hub.subscribe()
    run()
    out = []
    while not sub.empty():
        event = sub.get_nowait()
        if event["type"] == "sync":
            out.append(event["data"])
    return out


def count(engine: Engine) -> int:
    return engine.store.contacts(PID, limit=0)[0]


# -- the mass-delete guard ---------------------------------------------------------------
async def test_a_phone_sending_an_empty_book_keeps_the_cars_contacts(
    engine: Engine, side: FakeClassicSide, caplog: pytest.LogCaptureFixture
) -> None:
    # A phone whose user has not allowed contact sharing yet answers PhonebookSize 0 or 1.
    side.pull(PID, book_of(100), state_of(1))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="carhub.classic"):
        events = syncs(engine, lambda: side.pull(PID, [], state_of(2)))
    assert count(engine) == 100
    assert events == [
        {
            "phone_id": PID, "done": 100, "total": 100, "stage": "refused",
            "reason": "the phone's book would delete 100 of the car's 100 contacts",
        }
    ]  # fmt: skip
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "refused" in line.getMessage() and "A1:B2:C3:D4:E5:F6" in line.getMessage()
    assert engine.classic_book_state(PID) is None  # not state_of(2): the next one pulls again
    [phone] = engine.phones()
    assert phone.contacts == 100


async def test_after_a_refusal_the_next_connection_pulls_and_applies_the_book(
    engine: Engine, side: FakeClassicSide
) -> None:
    book = book_of(100)
    side.pull(PID, book, state_of(1))
    side.pull(PID, book[:1], state_of(2))  # refused: 99 of 100
    # The phone now shares its book with the same counters as in the refused pull: the car
    # pulls again rather than skip.
    assert side.pull(PID, book[:60], state_of(2)) == "done"
    assert count(engine) == 60 and engine.classic_book_state(PID) == state_of(2)


@pytest.mark.parametrize(
    ("before", "after", "refused"),
    [
        (30, 10, False),  # 20 deletions always pass
        (42, 20, True),  # 22 of 42: more than half and more than 20
        (100, 50, False),  # exactly half passes
        (100, 49, True),
        (20, 0, False),  # a small book may empty
    ],
)
async def test_the_guard_is_that_of_carhub_phones(
    engine: Engine, side: FakeClassicSide, before: int, after: int, refused: bool
) -> None:
    side.pull(PID, book_of(before), state_of(1))
    events = syncs(engine, lambda: side.pull(PID, book_of(after), state_of(2)))
    assert events[-1]["stage"] == ("refused" if refused else "done")
    assert count(engine) == (before if refused else after)


async def test_a_failed_pull_says_why(engine: Engine, side: FakeClassicSide) -> None:
    side.pull(PID, book_of(10), state_of(1))
    events = syncs(engine, lambda: side.pull(PID, book_of(10), state_of(2), fail_at=0))
    assert events == [
        {"phone_id": PID, "done": 10, "total": 10, "stage": "failed",
         "reason": "the phone disconnected mid-page"}
    ]  # fmt: skip


# -- one transaction -----------------------------------------------------------------------
async def test_a_full_disk_when_dropping_photos_stores_no_state(
    engine: Engine, side: FakeClassicSide
) -> None:
    side.pull(PID, book_of(30, photos=10), state_of(1))
    db = engine.store._db
    # The disk fills up exactly when the orphan photos are dropped: each delete needs a page.
    db.execute("CREATE TABLE filler (x BLOB)")
    db.execute(
        "CREATE TEMP TRIGGER fill AFTER DELETE ON main.photos"
        " BEGIN INSERT INTO filler VALUES (randomblob(8000)); END"
    )
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError):
        side.pull(PID, book_of(25), state_of(2))  # 5 contacts and all 10 photos go
    db.execute("PRAGMA max_page_count = 1073741823")
    db.execute("DROP TRIGGER fill")
    # Nothing of the pull's end was kept: no new state (the pull is reported failed and the
    # next connection pulls again), no contact deleted, no photo dropped.
    assert engine.classic_book_state(PID) is None
    assert count(engine) == 30
    assert db.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 10
    assert side.pull(PID, book_of(25), state_of(2)) == "done"
    assert engine.classic_book_state(PID) == state_of(2) and count(engine) == 25
    assert db.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 0
