"""The engine's Apple-profile bookkeeping (``AppleEvents``), driven as the BLE side drives it.

The BLE side is a ``FakeAppleHandle`` that records what the engine sends; the engine, its
SQLite store and its event hub are real.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from carhub import apple_phones
from carhub.apple import AppleLinkError
from carhub.apple_phones import MAX_NOTIFICATIONS, CommandRefused, UnknownNotification
from carhub.engine import CarConfig, Engine, NoPhoneError
from carhub.events import Subscription
from carhub.store import Store
from protocol.identity import Identity
from protocol.media import NowPlaying
from tests.carhub.apple_api_double import FakeAppleHandle, note

PID = "a1b2c3d4e5f6"
PID2 = "0a0b0c0d0e0f"


def make_engine(tmp_path: Path, **config: Any) -> Engine:
    store = Store(tmp_path / "carhub.sqlite3")
    return Engine(
        CarConfig(name="Test Car", state_dir=tmp_path, **config), Identity.generate(), store
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    eng = make_engine(tmp_path)
    yield eng
    await eng.shutdown()
    eng.store.close()


def connect(engine: Engine, pid: str = PID, **kw: Any) -> FakeAppleHandle:
    engine.apple_bonded(pid, f"iPhone {pid[:2]}")
    handle = FakeAppleHandle(**kw)
    engine.apple_connected(pid, handle)
    return handle


def drain(sub: Subscription) -> dict[str, Any]:
    """The latest event of each kind that arrived since the last drain."""
    out: dict[str, Any] = {}
    while not sub.empty():
        ev = sub.get_nowait()
        out[ev["type"]] = ev["data"]
    return out


def track(title: str = "Song", state: str = "playing", pos: int = 10_000) -> NowPlaying:
    return NowPlaying(
        title=title, artists=["Artist"], album="Album", duration_ms=200_000,
        position_ms=pos, rate=1.0, state=state, artwork=b"", track_id="t-" + title,
    )  # fmt: skip


# -- phones -------------------------------------------------------------------------------
async def test_a_bonded_phone_is_listed_with_its_profiles_connected_or_not(
    engine: Engine, tmp_path: Path
) -> None:
    sub = engine.hub.subscribe()
    engine.apple_bonded(PID, "Ann's iPhone")
    assert engine.apple_is_bonded(PID) and not engine.apple_is_bonded(PID2)
    [phone] = engine.phones()
    assert phone.model_dump() == {
        "id": PID, "name": "Ann's iPhone", "fingerprint": "A1:B2:C3:D4:E5:F6",
        "connected": False, "transport": None, "contacts": 0, "last_sync": None, "profiles": [],
        "owner": None,
    }  # fmt: skip
    assert drain(sub)["phones"][0]["id"] == PID
    handle = FakeAppleHandle(profiles=("ams", "ancs"))
    engine.apple_connected(PID, handle)
    [phone] = drain(sub)["phones"]
    assert (phone["connected"], phone["transport"], phone["profiles"]) == (
        True,
        "ble",
        ["ams", "ancs"],
    )
    # The phone stops offering AMS: the same handle reports again.
    handle.profiles = ("ancs",)
    engine.apple_connected(PID, handle)
    assert drain(sub)["phones"][0]["profiles"] == ["ancs"]
    engine.apple_disconnected(PID, handle)
    [phone] = drain(sub)["phones"]
    assert (phone["connected"], phone["transport"], phone["profiles"]) == (False, None, ["ancs"])
    # The last known profiles survive a restart of the car.
    engine.store.close()
    again = make_engine(tmp_path)
    try:
        assert [p.profiles for p in again.phones()] == [["ancs"]]
    finally:
        again.store.close()


async def test_carhub_phones_say_carhub(engine: Engine) -> None:
    engine.store.add_phone("c1", "Pixel", b"k" * 32, "fp", 1.0)
    connect(engine)
    assert [(p.id, p.profiles) for p in engine.phones()] == [
        ("c1", ["carhub"]),
        (PID, ["ams", "ancs"]),
    ]


async def test_a_link_of_a_phone_that_never_bonded_is_not_listed(engine: Engine) -> None:
    engine.apple_connected(PID, FakeAppleHandle())
    assert engine.phones() == []
    engine.apple_notification(note(PID, 1))
    assert engine.notifications() == []


async def test_a_new_link_replaces_the_old_one_and_a_stale_disconnect_is_ignored(
    engine: Engine,
) -> None:
    old = connect(engine)
    new = FakeAppleHandle()
    engine.apple_connected(PID, new)
    assert old.closed == "replaced by a new connection" and new.closed is None
    engine.apple_disconnected(PID, old)  # the old link's end, reported late
    assert engine.phones()[0].connected is True


# -- pairing ------------------------------------------------------------------------------
async def test_le_sc_request_is_shown_and_the_answer_reaches_the_ble_side(engine: Engine) -> None:
    assert engine.apple_may_bond() is False
    engine.open_pairing()
    assert engine.apple_may_bond() is True
    answers: list[bool] = []
    sub = engine.hub.subscribe()
    engine.apple_pairing_requested(PID, "Ann's iPhone", "123456", time.time() + 30, answers.append)
    [shown] = drain(sub)["pairing"]
    assert shown["method"] == "le-sc" and shown["code"] == "123456"
    assert shown["phone_fingerprint"] == "A1:B2:C3:D4:E5:F6" and shown["phone_id"] == PID
    assert answers == []
    assert engine.decide(shown["id"], accepted=True) is True
    assert answers == [True] and engine.pairing_requests() == []
    assert engine.decide(shown["id"], accepted=False) is False  # answered once only
    assert answers == [True]


async def test_le_sc_reject_withdraw_and_window_close(engine: Engine) -> None:
    engine.open_pairing()
    answers: list[tuple[str, bool]] = []

    def ask(pid: str) -> Callable[[], None]:
        return engine.apple_pairing_requested(
            pid, "iPhone", "000001", time.time() + 30, lambda ok: answers.append((pid, ok))
        )

    ask(PID)
    engine.decide(engine.pairing_requests()[0].id, accepted=False)
    assert answers == [(PID, False)]
    withdraw = ask(PID2)
    withdraw()
    assert engine.pairing_requests() == [] and answers == [(PID, False)]
    withdraw()  # twice is harmless
    ask(PID)
    engine.close_pairing()
    assert answers == [(PID, False), (PID, False)] and engine.pairing_requests() == []


async def test_auto_confirm_accepts_an_le_sc_code_at_once(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, auto_confirm=True, pairing_open=True)
    answers: list[bool] = []
    engine.apple_pairing_requested(PID, "iPhone", "654321", time.time() + 30, answers.append)
    assert answers == [True] and engine.pairing_requests() == []
    engine.store.close()


async def test_a_failed_bond_drops_its_request_and_says_why(engine: Engine) -> None:
    engine.open_pairing()
    engine.apple_pairing_requested(PID, "iPhone", "111111", time.time() + 30, lambda ok: None)
    sub = engine.hub.subscribe()
    engine.apple_pairing_failed(PID, "the codes did not match")
    events = drain(sub)
    assert events["pairing"] == []
    assert events["pairing_failed"] == {"phone_id": PID, "reason": "the codes did not match"}
    assert engine.phones() == []


# -- notifications --------------------------------------------------------------------------
async def test_notifications_newest_date_first_ties_by_arrival(engine: Engine) -> None:
    connect(engine, PID)
    connect(engine, PID2)
    sub = engine.hub.subscribe()
    engine.apple_notification(note(PID, 1, "2025-06-01T10:00:00"))
    engine.apple_notification(note(PID2, 1, "2025-06-01T12:00:00"))
    engine.apple_notification(note(PID, 2, "2025-06-01T11:00:00"))
    engine.apple_notification(note(PID, 3, "2025-06-01T11:00:00"))  # same date, later arrival
    order = [(n.phone_id, n.uid) for n in engine.notifications()]
    assert order == [(PID2, 1), (PID, 3), (PID, 2), (PID, 1)]
    assert [(n["phone_id"], n["uid"]) for n in drain(sub)["notifications"]] == order
    # Modified: new content, same place among equal dates.
    engine.apple_notification(note(PID, 2, "2025-06-01T11:00:00", title="edited"))
    assert [(n.uid, n.title) for n in engine.notifications()][1:3] == [(3, "Title"), (2, "edited")]
    engine.apple_notification_removed(PID, 3)
    assert [(n["phone_id"], n["uid"]) for n in drain(sub)["notifications"]] == [
        (PID2, 1), (PID, 2), (PID, 1),
    ]  # fmt: skip
    engine.apple_notification_removed(PID, 99)  # unknown: nothing happens
    assert sub.empty()
    engine.apple_notifications_reset(PID)
    assert [(n["phone_id"], n["uid"]) for n in drain(sub)["notifications"]] == [(PID2, 1)]


async def test_notifications_are_bounded_per_phone_oldest_arrival_dropped(engine: Engine) -> None:
    connect(engine)
    for uid in range(MAX_NOTIFICATIONS + 5):
        engine.apple_notification(note(PID, uid, "2025-06-01T10:00:00"))
    uids = [n.uid for n in engine.notifications()]
    assert len(uids) == MAX_NOTIFICATIONS
    assert uids[0] == MAX_NOTIFICATIONS + 4 and min(uids) == 5


async def test_notifications_go_with_the_link_and_their_actions_are_refused(
    engine: Engine,
) -> None:
    handle = connect(engine)
    engine.apple_notification(note(PID, 7, negative=None))
    await engine.notification_action(PID, 7, "positive")
    assert handle.actions_sent == [(7, "positive")]
    with pytest.raises(CommandRefused, match="no negative action"):
        await engine.notification_action(PID, 7, "negative")
    with pytest.raises(UnknownNotification):
        await engine.notification_action(PID, 8, "positive")
    engine.apple_disconnected(PID, handle)
    assert engine.notifications() == []  # nothing shown that the car could not act on
    with pytest.raises(UnknownNotification):
        await engine.notification_action(PID, 7, "positive")
    assert handle.actions_sent == [(7, "positive")]


async def test_ancs_withdrawn_takes_the_phones_notifications_with_it(engine: Engine) -> None:
    handle = connect(engine)
    engine.apple_notification(note(PID, 7))
    handle.profiles = ("ams",)  # Service Changed: ANCS gone, AMS stays
    engine.apple_connected(PID, handle)
    assert engine.notifications() == []
    assert next(p for p in engine.phones() if p.id == PID).profiles == ["ams"]


async def test_an_action_the_phone_never_answers_ends_as_a_link_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apple_phones, "PEER_TIMEOUT", 0.05)
    handle = connect(engine)
    handle.hang = True
    engine.apple_notification(note(PID, 1))
    with pytest.raises(AppleLinkError, match="did not answer"):
        await engine.notification_action(PID, 1, "positive")


# -- media --------------------------------------------------------------------------------
async def test_ams_now_playing_is_the_media_with_source_ams(engine: Engine) -> None:
    assert engine.media().source is None and engine.media().phone_id is None
    handle = connect(engine)
    now_ms = int(time.time() * 1000)
    engine.apple_now_playing(PID, track(pos=10_000), now_ms - 2000)
    m = engine.media()
    assert (m.source, m.phone_id, m.title, m.artists, m.connected) == (
        "ams", PID, "Song", ["Artist"], True,
    )  # fmt: skip
    assert 11_900 <= m.position_ms <= 12_500  # elapsed + 2 s at rate 1
    assert m.artwork_url is None
    # The link ends: the track stays, paused where it was.
    engine.apple_disconnected(PID, handle)
    m = engine.media()
    assert (m.state, m.connected) == ("paused", False) and 11_900 <= m.position_ms <= 12_600
    time.sleep(0.2)
    assert abs(engine.media().position_ms - m.position_ms) < 5
    # Reported while away (or after unpair): ignored.
    engine.apple_now_playing(PID, track("Other"), now_ms)
    assert engine.media().title == "Song"


async def test_media_commands_go_to_the_ams_phone_within_what_it_offers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NoPhoneError):
        await engine.command("play")
    handle = connect(engine, commands=frozenset({"play", "pause", "next"}))
    engine.apple_now_playing(PID, track(), int(time.time() * 1000))
    assert await engine.command("next") == PID
    assert handle.media_sent == ["next"]
    with pytest.raises(CommandRefused, match="no seek"):
        await engine.command("seek", 5000)
    with pytest.raises(CommandRefused, match="does not offer previous"):
        await engine.command("previous")
    assert handle.media_sent == ["next"]
    handle.fail = "ATT error 0x0e"
    with pytest.raises(AppleLinkError, match="0x0e"):
        await engine.command("play")
    handle.fail = None
    handle.hang = True
    monkeypatch.setattr(apple_phones, "PEER_TIMEOUT", 0.05)
    with pytest.raises(AppleLinkError, match="did not answer"):
        await engine.command("pause")


async def test_the_only_connected_apple_phone_takes_commands_without_a_track(
    engine: Engine,
) -> None:
    handle = connect(engine)
    assert await engine.command("play") == PID and handle.media_sent == ["play"]


# -- unpair, status ------------------------------------------------------------------------
async def test_unpair_erases_everything_calls_listeners_and_closes_the_link(
    engine: Engine,
) -> None:
    erased: list[str] = []
    engine.on_unpair(erased.append)
    handle = connect(engine)
    connect(engine, PID2)
    engine.apple_notification(note(PID, 1))
    engine.apple_notification(note(PID2, 2))
    engine.apple_now_playing(PID, track(), int(time.time() * 1000))
    sub = engine.hub.subscribe()
    assert engine.unpair(PID) is True
    events = drain(sub)
    assert [p["id"] for p in events["phones"]] == [PID2]
    assert [n["uid"] for n in events["notifications"]] == [2]
    assert events["media"]["title"] is None and events["media"]["source"] is None
    assert erased == [PID] and handle.closed == "unpaired"
    assert not engine.apple_is_bonded(PID)
    # Nothing of it comes back from a late report of the BLE side.
    engine.apple_notification(note(PID, 3))
    engine.apple_now_playing(PID, track(), int(time.time() * 1000))
    assert [n.uid for n in engine.notifications()] == [2] and engine.media().title is None
    assert engine.unpair(PID) is False and erased == [PID]


async def test_status_says_whether_apple_support_is_on(engine: Engine) -> None:
    assert engine.status().apple is False
    engine.apple_enabled = True
    assert engine.status().apple is True
