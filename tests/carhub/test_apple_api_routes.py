# ruff: noqa: F811  (the engine and client fixtures of test_api are imported, then requested)
"""The REST API and ``/api/events`` for Apple-profile phones, through ``httpx.ASGITransport``.

The engine is real; the BLE side is ``FakeAppleHandle``, fed through ``AppleEvents`` as
``carhub.ble`` feeds it, so each status code is checked against what reached the "phone".
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from carhub.api import create_app
from carhub.engine import CarConfig, Engine
from carhub.store import Store
from protocol.identity import Identity
from protocol.media import NowPlaying
from tests.carhub.apple_api_double import FakeAppleHandle, note
from tests.carhub.test_api import client, engine  # noqa: F401

PID = "a1b2c3d4e5f6"


@pytest.fixture
def iphone(engine: Engine) -> FakeAppleHandle:
    engine.apple_bonded(PID, "Ann's iPhone")
    handle = FakeAppleHandle(commands=frozenset({"play", "pause", "next"}))
    engine.apple_connected(PID, handle)
    return handle


def playing() -> NowPlaying:
    return NowPlaying(
        title="Song", artists=["A", "B"], album="Album", duration_ms=180_000,
        position_ms=30_000, rate=1.0, state="playing", artwork=b"", track_id="t1",
    )  # fmt: skip


async def test_status_phones_and_contacts_of_an_apple_phone(
    client: httpx.AsyncClient, engine: Engine, iphone: FakeAppleHandle
) -> None:
    assert (await client.get("/api/status")).json()["apple"] is False
    engine.apple_enabled = True
    assert (await client.get("/api/status")).json()["apple"] is True
    engine.store.add_phone("c1", "Pixel", b"k" * 32, "fp", 1.0)
    phones = (await client.get("/api/phones")).json()
    assert [p["profiles"] for p in phones] == [["carhub"], ["ams", "ancs"]]
    assert phones[1] == {
        "id": PID, "name": "Ann's iPhone", "fingerprint": "A1:B2:C3:D4:E5:F6", "connected": True,
        "transport": "ble", "contacts": 0, "last_sync": None, "profiles": ["ams", "ancs"],
        "owner": None,
    }  # fmt: skip
    # No contacts source: an empty page, not a 404 (the dashboard selects the phone).
    r = await client.get(f"/api/phones/{PID}/contacts")
    assert r.status_code == 200 and r.json() == {"total": 0, "items": []}


async def test_le_sc_request_accept_and_reject_through_the_api(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    await client.post("/api/pairing/open")
    answers: list[bool] = []
    for _ in range(2):
        engine.apple_pairing_requested(PID, "iPhone", "246810", time.time() + 30, answers.append)
    first, second = (await client.get("/api/pairing/requests")).json()
    assert first["method"] == "le-sc" and first["phone_fingerprint"] == "A1:B2:C3:D4:E5:F6"
    assert (await client.post(f"/api/pairing/requests/{first['id']}/accept")).status_code == 200
    assert (await client.post(f"/api/pairing/requests/{second['id']}/reject")).status_code == 200
    assert answers == [True, False]
    assert (await client.post(f"/api/pairing/requests/{first['id']}/accept")).status_code == 404


async def test_media_from_ams_and_its_commands(
    client: httpx.AsyncClient, engine: Engine, iphone: FakeAppleHandle
) -> None:
    empty = (await client.get("/api/media")).json()
    assert empty["source"] is None and empty["phone_id"] is None and empty["title"] is None
    engine.apple_now_playing(PID, playing(), int(time.time() * 1000))
    m = (await client.get("/api/media")).json()
    assert (m["source"], m["phone_id"], m["title"], m["artists"], m["state"]) == (
        "ams", PID, "Song", ["A", "B"], "playing",
    )  # fmt: skip
    assert set(m) == {
        "phone_id", "title", "artists", "album", "state", "position_ms", "duration_ms",
        "rate", "track_id", "artwork_url", "connected", "source",
    }  # fmt: skip

    r = await client.post("/api/media/command", json={"action": "next"})
    assert r.status_code == 200 and r.json() == {"ok": True, "phone_id": PID}
    r = await client.post("/api/media/command", json={"action": "seek", "position_ms": 1000})
    assert r.status_code == 409 and "AMS has no seek" in r.json()["detail"]
    r = await client.post("/api/media/command", json={"action": "previous"})
    assert r.status_code == 409 and "does not offer previous" in r.json()["detail"]
    iphone.fail = "the link is gone"
    r = await client.post("/api/media/command", json={"action": "play"})
    assert r.status_code == 502 and "the link is gone" in r.json()["detail"]
    assert iphone.media_sent == ["next"]


async def test_notifications_list_and_actions(
    client: httpx.AsyncClient, engine: Engine, iphone: FakeAppleHandle
) -> None:
    assert (await client.get("/api/notifications")).json() == []
    engine.apple_notification(note(PID, 1, "2025-06-01T09:00:00", negative=None))
    engine.apple_notification(note(PID, 2, "2025-06-01T10:00:00"))
    listed = (await client.get("/api/notifications")).json()
    assert [n["uid"] for n in listed] == [2, 1]
    assert listed[1] == {
        "phone_id": PID, "uid": 1, "app_id": "com.apple.messages", "app_name": "Messages",
        "title": "Title", "subtitle": "subtitle 1", "message": "message 1",
        "date": "2025-06-01T09:00:00", "category": "social", "positive_action": "Reply",
        "negative_action": None,
    }  # fmt: skip

    url = f"/api/notifications/{PID}"
    r = await client.post(f"{url}/2/action", json={"action": "negative"})
    assert r.status_code == 200 and r.json() == {"ok": True, "phone_id": PID}
    assert iphone.actions_sent == [(2, "negative")]
    r = await client.post(f"{url}/1/action", json={"action": "negative"})
    assert r.status_code == 409 and "no negative action" in r.json()["detail"]
    assert (await client.post(f"{url}/3/action", json={"action": "positive"})).status_code == 404
    r = await client.post("/api/notifications/ffffffffffff/1/action", json={"action": "positive"})
    assert r.status_code == 404
    for bad in ({"action": "maybe"}, {}, None):
        assert (await client.post(f"{url}/1/action", json=bad)).status_code == 422
    assert (await client.post(f"{url}/x/action", json={"action": "positive"})).status_code == 422
    iphone.fail = "ATT timeout"
    r = await client.post(f"{url}/1/action", json={"action": "positive"})
    assert r.status_code == 502 and "ATT timeout" in r.json()["detail"]
    engine.apple_disconnected(PID, iphone)  # its notifications go with the link
    r = await client.post(f"{url}/1/action", json={"action": "positive"})
    assert r.status_code == 404
    assert (await client.get("/api/notifications")).json() == []
    assert iphone.actions_sent == [(2, "negative")]


async def test_unpair_of_an_apple_phone(
    client: httpx.AsyncClient, engine: Engine, iphone: FakeAppleHandle
) -> None:
    erased: list[str] = []
    engine.on_unpair(erased.append)
    engine.apple_notification(note(PID, 1))
    engine.apple_now_playing(PID, playing(), int(time.time() * 1000))
    assert (await client.delete(f"/api/phones/{PID}")).status_code == 200
    assert erased == [PID] and iphone.closed == "unpaired"
    assert (await client.get("/api/phones")).json() == []
    assert (await client.get("/api/notifications")).json() == []
    assert (await client.get("/api/media")).json()["title"] is None
    assert (await client.delete(f"/api/phones/{PID}")).status_code == 404
    assert (await client.get(f"/api/phones/{PID}/contacts")).status_code == 404


def test_events_carry_notifications_in_the_snapshot_and_on_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "carhub.sqlite3")
    engine = Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(), store)
    engine.apple_bonded(PID, "iPhone")
    engine.apple_connected(PID, FakeAppleHandle())
    engine.apple_notification(note(PID, 5))
    with (
        TestClient(create_app(engine), base_url="http://127.0.0.1:8080") as tc,
        tc.websocket_connect("/api/events", headers={"Host": "127.0.0.1:8080"}) as ws,
    ):
        snapshot = {e["type"]: e["data"] for e in (ws.receive_json() for _ in range(5))}
        assert [n["uid"] for n in snapshot["notifications"]] == [5]
        assert snapshot["phones"][0]["profiles"] == ["ams", "ancs"]
        # A change from the BLE side (here from the test's thread, as a plain call would).
        tc.portal.call(engine.apple_notification_removed, PID, 5)  # type: ignore[union-attr]
        assert ws.receive_json() == {"type": "notifications", "data": []}
    store.close()


# -- /openapi.json -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("post", "/api/notifications/{phone_id}/{uid}/action", {"404", "409", "422", "502"}),
        ("post", "/api/media/command", {"409", "422", "502"}),
        ("get", "/api/notifications", set()),
    ],
)
async def test_new_routes_describe_their_refusals(
    engine: Engine, method: str, path: str, codes: set[str]
) -> None:
    spec = create_app(engine).openapi()
    responses = spec["paths"][path][method]["responses"]
    assert codes | {"200", "403"} == set(responses)
    for code in codes - {"422"}:
        ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ErrorBody", (code, ref)


async def test_the_new_fields_are_in_the_schemas(engine: Engine) -> None:
    schemas = create_app(engine).openapi()["components"]["schemas"]
    assert schemas["Media"]["properties"]["source"]["anyOf"] == [
        {"enum": ["carhub", "ams"], "type": "string"},
        {"type": "null"},
    ]
    assert schemas["PairingRequest"]["properties"]["method"]["enum"] == ["carhub", "le-sc", "ssp"]
    assert "profiles" in schemas["Phone"]["required"]
    assert schemas["Status"]["properties"]["apple"]["type"] == "boolean"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/api/notifications", "GET"),
        ("DELETE", "/api/notifications", "GET"),
        ("GET", f"/api/notifications/{PID}/1/action", "POST"),
    ],
)
async def test_a_405_on_the_new_routes_allows_what_the_path_serves(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    r = await client.request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == allow
