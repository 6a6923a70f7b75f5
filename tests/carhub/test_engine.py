"""The car engine: pairing window, pending requests, media, unpair.

Who may pair (gate, rate limits, one at a time, the QR secret) is ``protocol.admission``'s,
tested in ``tests/protocol/test_admission.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from carhub.engine import CarConfig, Engine, NoPhoneError, PendingPairing
from carhub.events import Subscription
from carhub.store import Store
from carhub.views import PairingRequest
from protocol.identity import Identity
from protocol.media import MediaCommand, NowPlaying
from protocol.messages import Message


class FakeSession:
    """Stands in for a PhoneSession: records decisions, sent messages and closes."""

    transport_name = "fake"

    def __init__(self) -> None:
        self.decisions: list[bool] = []
        self.sent: list[Message] = []
        self.closed: list[str] = []

    def confirm_pairing(self, accepted: bool) -> None:
        self.decisions.append(accepted)

    async def send(self, msg: Message) -> None:
        self.sent.append(msg)

    def close(self, reason: str) -> None:
        self.closed.append(reason)


def make_engine(tmp_path: Path, **cfg: object) -> Engine:
    store = Store(tmp_path / "car.sqlite3")
    return Engine(CarConfig(name="Test Car", state_dir=tmp_path, **cfg), Identity.generate(), store)  # type: ignore[arg-type]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = make_engine(tmp_path)
    yield eng  # type: ignore[misc]
    eng.store.close()


def request(engine: Engine, session: FakeSession, phone_id: str = "p1") -> PendingPairing:
    shown = PairingRequest(
        id=engine.new_request_id(),
        phone_id=phone_id,
        phone_name="Phone",
        phone_fingerprint="fp",
        code="123456",
        expires_at=time.time() + 60,
    )
    req = PendingPairing(shown, session)  # type: ignore[arg-type]
    engine.add_pending(req)
    return req


def drain(q: Subscription) -> list[dict[str, object]]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def playing(state: str = "playing", position_ms: int = 1000, rate: float = 1.0) -> NowPlaying:
    return NowPlaying(
        title="Song",
        artists=["A", "B"],
        album="Al",
        duration_ms=60_000,
        position_ms=position_ms,
        rate=rate,
        state=state,
        artwork=b"\x07" * 32,
        track_id="t1",
    )


def test_pairing_window_closes_after_its_timeout(engine: Engine) -> None:
    seen: list[bool] = []
    engine.on_pairing_change(seen.append)
    q = engine.hub.subscribe()
    assert engine.pairing_open is False
    engine.open_pairing(0.2)
    assert engine.pairing_open is True and seen == [True]
    assert [e["data"]["pairing_open"] for e in drain(q)] == [True]  # type: ignore[index]
    time.sleep(0.3)
    assert engine.pairing_open is False and seen == [True, False]
    assert [e["data"]["pairing_open"] for e in drain(q)] == [False]  # type: ignore[index]


def test_window_of_zero_stays_open_until_closed(engine: Engine) -> None:
    engine.open_pairing(0)
    time.sleep(0.05)
    assert engine.pairing_open is True
    engine.close_pairing()
    assert engine.pairing_open is False


def test_pending_request_accept_reject_and_unknown(engine: Engine) -> None:
    engine.open_pairing(0)
    q = engine.hub.subscribe()
    s1, s2 = FakeSession(), FakeSession()
    r1, r2 = request(engine, s1), request(engine, s2, "p2")
    assert [r.id for r in engine.pairing_requests()] == [r1.id, r2.id]
    assert "session" not in engine.pairing_requests()[0].model_dump()
    assert engine.decide(r1.id, accepted=True) is True
    assert engine.decide(r2.id, accepted=False) is True
    assert engine.decide(r1.id, accepted=True) is False  # already decided
    assert (s1.decisions, s2.decisions) == ([True], [False])
    assert engine.pairing_requests() == []
    # Coalesced: a subscriber that did not read in between sees only the latest list.
    assert [e["data"] for e in drain(q) if e["type"] == "pairing"] == [[]]


def test_closing_the_window_rejects_pending_requests(engine: Engine) -> None:
    engine.open_pairing(0)
    s = FakeSession()
    request(engine, s)
    engine.close_pairing()
    assert s.decisions == [False] and engine.pairing_requests() == []


def test_drop_pending_forgets_a_gone_session(engine: Engine) -> None:
    engine.open_pairing(0)
    s1, s2 = FakeSession(), FakeSession()
    request(engine, s1)
    r2 = request(engine, s2)
    engine.drop_pending(s1)  # type: ignore[arg-type]
    assert [r.id for r in engine.pairing_requests()] == [r2.id]


def test_auto_confirm_accepts_at_once(tmp_path: Path) -> None:
    eng = make_engine(tmp_path, auto_confirm=True, pairing_open=True)
    s = FakeSession()
    request(eng, s)
    assert s.decisions == [True] and eng.pairing_requests() == []
    eng.store.close()


def test_media_is_extrapolated_while_playing_only(engine: Engine) -> None:
    assert engine.media().title is None and engine.media().state == "stopped"
    engine.store.add_phone("p1", "Phone", b"k" * 32, "fp", 1.0)
    engine.connected["p1"] = FakeSession()  # type: ignore[assignment]
    now_ms = int(time.time() * 1000)
    engine.now_playing("p1", playing(rate=2.0), now_ms - 1000)
    m = engine.media()
    assert 2900 <= m.position_ms <= 3200  # 1000 + 1 s x rate 2
    assert m.artists == ["A", "B"] and m.connected is True
    assert m.artwork_url is None  # not stored yet: a URL would 404 on the page
    engine.store.put_artwork("p1", b"\x07" * 32, "image/png", b"png")
    assert engine.media().artwork_url == f"/api/phones/p1/artwork/{'07' * 32}"
    engine.now_playing("p1", playing("paused"), now_ms - 5000)
    assert engine.media().position_ms == 1000


async def test_command_goes_to_the_active_phone(engine: Engine) -> None:
    with pytest.raises(NoPhoneError):
        await engine.command("play")
    a, b = FakeSession(), FakeSession()
    engine.connected.update({"a": a, "b": b})  # type: ignore[dict-item]
    engine.now_playing("b", playing(), int(time.time() * 1000))
    assert await engine.command("seek", 4200) == "b"
    assert b.sent == [MediaCommand(action="seek", position_ms=4200)] and a.sent == []
    del engine.connected["b"]  # the media phone left: fall back to a connected one
    assert await engine.command("next") == "a"
    assert a.sent == [MediaCommand(action="next")]


def test_unpair_erases_and_drops_the_connection(engine: Engine) -> None:
    engine.store.add_phone("p1", "Phone", b"k" * 32, "fp", 1.0)
    s = FakeSession()
    engine.connected["p1"] = s  # type: ignore[assignment]
    engine.now_playing("p1", playing(), int(time.time() * 1000))
    q = engine.hub.subscribe()
    assert engine.phones()[0].connected is True and engine.phones()[0].transport == "fake"
    assert engine.unpair("p1") is True
    assert s.closed == ["unpaired"] and "p1" not in engine.connected
    assert engine.phones() == [] and engine.media().phone_id is None
    types = [e["type"] for e in drain(q)]
    assert "phones" in types and "media" in types
    assert engine.unpair("p1") is False


def test_a_new_connection_replaces_the_old_one(engine: Engine) -> None:
    engine.store.add_phone("p1", "Phone", b"k" * 32, "fp", 1.0)
    old, new = FakeSession(), FakeSession()
    engine.phone_connected("p1", old)  # type: ignore[arg-type]
    engine.phone_connected("p1", new)  # type: ignore[arg-type]
    assert old.closed == ["replaced by a new connection"] and engine.connected["p1"] is new
    engine.phone_disconnected("p1", old)  # type: ignore[arg-type]  # a late goodbye is ignored
    assert engine.connected["p1"] is new


def test_slow_dashboard_subscriber_keeps_the_newest_event_of_each_kind(engine: Engine) -> None:
    q = engine.hub.subscribe()
    engine.hub.publish("pairing", [{"id": "r1"}])
    for i in range(300):  # a burst of other events never evicts the pairing update
        engine.hub.publish("media", {"title": str(i)})
        engine.open_pairing(0)
        engine.close_pairing()
    engine.hub.publish("contacts", {"phone_id": "a", "total": 1})
    engine.hub.publish("contacts", {"phone_id": "b", "total": 2})
    events = drain(q)
    assert [e["data"] for e in events if e["type"] == "pairing"] == [[{"id": "r1"}]]
    assert [e["data"] for e in events if e["type"] == "media"] == [{"title": "299"}]
    assert [e["data"]["pairing_open"] for e in events if e["type"] == "status"] == [False]  # type: ignore[index]
    assert len([e for e in events if e["type"] == "contacts"]) == 2  # one per phone


def test_a_restarted_car_shows_the_last_track_paused(tmp_path: Path) -> None:
    first = make_engine(tmp_path)
    first.store.add_phone("p1", "Phone", b"k" * 32, "fp", 1.0)
    first.connected["p1"] = FakeSession()  # type: ignore[assignment]
    first.now_playing("p1", playing(position_ms=1000), int(time.time() * 1000) - 2000)
    first.store.close()
    again = make_engine(tmp_path)
    m = again.media()
    assert m.phone_id == "p1" and m.state == "paused" and m.connected is False
    assert m.position_ms == 1000  # the last position the phone reported
    again.store.close()
