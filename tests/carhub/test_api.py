"""The car's REST API through ``httpx.ASGITransport``, with SQLite in ``tmp_path``.

A real ``PhoneConnection`` talks to the engine over an in-memory ``FakeLink`` pair, so
pairing, media and unpair are the protocol's real bytes; only the sockets are missing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from carhub.api import create_app
from carhub.engine import CarConfig, Engine
from carhub.store import Store
from protocol.connection import (
    ConnectionEvent,
    ConnectionFailed,
    MessageReceived,
    PairingCode,
    PhoneConnection,
    SessionEstablished,
)
from protocol.contacts import Contact, Phone, contact_digest
from protocol.errors import Reason
from protocol.identity import Identity
from protocol.media import Artwork, ArtworkRequest, MediaCommand, NowPlaying, artwork_of
from shell.transport import BaseTransport


class FakeLink(BaseTransport):
    """One end of an in-memory byte pipe; ``None`` in a queue means the peer closed."""

    name = "fake"

    def __init__(self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None]):
        self._in, self._out = inbox, outbox
        self.peer = "fake-peer"
        self.closed = False

    @classmethod
    def pair(cls) -> tuple[FakeLink, FakeLink]:
        a: asyncio.Queue[bytes | None] = asyncio.Queue()
        b: asyncio.Queue[bytes | None] = asyncio.Queue()
        return cls(a, b), cls(b, a)

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError("closed")
        await self._out.put(data)

    async def recv(self) -> bytes:
        data = await self._in.get()
        if data is None:
            self.closed = True
            raise ConnectionError("peer closed")
        return data

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._out.put_nowait(None)


class FakePhone:
    """Drives a real ``PhoneConnection`` over a ``FakeLink`` from the test."""

    def __init__(self, engine: Engine, name: str = "Test Phone") -> None:
        self.identity = Identity.generate()
        self.conn = PhoneConnection(self.identity, name, now=time.time())
        self.link, car_end = FakeLink.pair()
        self.task = asyncio.create_task(engine.serve_link(car_end))
        self.events: list[ConnectionEvent] = []

    @property
    def id(self) -> str:
        return self.identity.device_id

    async def until(self, want: Callable[[ConnectionEvent], bool]) -> ConnectionEvent:
        """Pump bytes both ways until an event matches (5 s at most)."""
        async with asyncio.timeout(5):
            while True:
                if out := self.conn.data_to_send():
                    await self.link.send(out)
                while (ev := self.conn.next_event()) is not None:
                    self.events.append(ev)
                    if want(ev):
                        return ev
                try:
                    data = await self.link.recv()
                except ConnectionError:
                    return ConnectionFailed(ConnectionError("link closed"))  # type: ignore[arg-type]
                self.conn.receive_data(data, time.time())

    async def send(self, msg: object) -> None:
        self.conn.send(msg)  # type: ignore[arg-type]
        await self.link.send(self.conn.data_to_send())

    async def stop(self) -> None:
        """Close the phone's end and wait for the car's session task to end cleanly."""
        await self.link.close()
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = Store(tmp_path / "carhub.sqlite3")
    eng = Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(), store)
    yield eng
    await eng.shutdown()
    store.close()


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
        yield c


def seed_contacts(engine: Engine, phone_id: str, names: list[str]) -> None:
    cs = [
        Contact(uid=f"u{i}", fn=n, phones=(Phone(f"+1 555 {i:04}", "CELL"),))
        for i, n in enumerate(names)
    ]
    engine.store.add_phone(phone_id, "Phone", b"k" * 32, "fp", 1.0)
    engine.store.apply_batch(
        phone_id,
        upserts=[(c, contact_digest(c)) for c in cs],
        deletes=[],
        photos=[],
        anchor=b"\x01" * 16,
        now=2.0,
    )


# -- shapes and errors without a phone --------------------------------------------------
async def test_status_shape(client: httpx.AsyncClient, engine: Engine) -> None:
    r = await client.get("/api/status")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Test Car" and body["id"] == engine.identity.device_id
    assert body["fingerprint"] == engine.identity.fingerprint
    assert body["pairing_open"] is False and body["ble"] is None and body["lan"] is None
    assert isinstance(body["protocol_version"], int)


async def test_pairing_open_close_and_window(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/pairing/open")).json()["pairing_open"] is True
    assert (await client.post("/api/pairing/close")).json()["pairing_open"] is False
    assert (await client.post("/api/pairing/open?seconds=0.2")).json()["pairing_open"] is True
    await asyncio.sleep(0.3)
    assert (await client.get("/api/status")).json()["pairing_open"] is False
    assert (await client.post("/api/pairing/open?seconds=-1")).status_code == 422
    assert (await client.post("/api/pairing/open?seconds=soon")).status_code == 422


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/pairing/requests")).json() == []
    for method, path in [
        ("POST", "/api/pairing/requests/nope/accept"),
        ("POST", "/api/pairing/requests/nope/reject"),
        ("DELETE", "/api/phones/nope"),
        ("GET", "/api/phones/nope/contacts"),
        ("GET", f"/api/phones/nope/artwork/{'00' * 32}"),
    ]:
        r = await client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert "detail" in r.json()
    assert (await client.get("/api/phones")).json() == []


async def test_media_without_phone(client: httpx.AsyncClient) -> None:
    m = (await client.get("/api/media")).json()
    assert m["title"] is None and m["state"] == "stopped" and m["connected"] is False
    r = await client.post("/api/media/command", json={"action": "play"})
    assert r.status_code == 409 and "no phone" in r.json()["detail"]
    for bad in [{"action": "explode"}, {}, {"action": "seek", "position_ms": -1}]:
        assert (await client.post("/api/media/command", json=bad)).status_code == 422, bad


async def test_contacts_paging_search_and_limits(client: httpx.AsyncClient, engine: Engine) -> None:
    seed_contacts(engine, "p1", ["Carol", "alice", "Bob 100%", "Dave_X", "DaveYX", "Émile"])
    url = "/api/phones/p1/contacts"
    page = (await client.get(url)).json()
    assert page["total"] == 6
    assert [c["name"] for c in page["items"]] == [
        "alice",
        "Bob 100%",
        "Carol",
        "Dave_X",
        "DaveYX",
        "Émile",
    ]
    first = page["items"][0]
    assert set(first) == {"uid", "name", "phones", "emails", "org"}
    assert first["phones"] == [{"number": "+1 555 0001", "type": "CELL", "label": ""}]
    page = (await client.get(url, params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 6 and [c["name"] for c in page["items"]] == ["Bob 100%", "Carol"]
    assert (await client.get(url, params={"limit": 0})).json() == {"total": 6, "items": []}
    assert (await client.get(url, params={"offset": 10})).json()["items"] == []

    async def names(q: str) -> list[str]:
        return [c["name"] for c in (await client.get(url, params={"q": q})).json()["items"]]

    assert await names("ALICE") == ["alice"]
    assert await names("émile") == ["Émile"]
    assert await names("0%") == ["Bob 100%"]  # % is a literal, not a wildcard
    assert await names("e_x") == ["Dave_X"]  # _ is a literal, not any-one-character
    assert await names("%") == ["Bob 100%"]
    assert await names("555 0003") == ["Dave_X"]
    for bad in [{"limit": 1001}, {"limit": -1}, {"offset": -1}, {"limit": "many"}]:
        assert (await client.get(url, params=bad)).status_code == 422, bad


async def test_artwork_endpoint(client: httpx.AsyncClient, engine: Engine) -> None:
    engine.store.add_phone("p1", "Phone", b"k" * 32, "fp", 1.0)
    art = artwork_of(b"\x89PNG fake image", "image/png")
    engine.store.put_artwork("p1", art.hash, art.mime, art.data)
    r = await client.get(f"/api/phones/p1/artwork/{art.hash.hex()}")
    assert r.status_code == 200 and r.content == art.data
    assert r.headers["content-type"] == "image/png" and "max-age" in r.headers["cache-control"]
    assert (await client.get("/api/phones/p1/artwork/not-hex")).status_code == 400
    assert (await client.get(f"/api/phones/p1/artwork/{'ab' * 32}")).status_code == 404


# -- with a real protocol peer over a fake link -----------------------------------------
async def pair(client: httpx.AsyncClient, phone: FakePhone) -> None:
    code = await phone.until(lambda e: isinstance(e, PairingCode))
    assert isinstance(code, PairingCode)
    reqs = (await client.get("/api/pairing/requests")).json()
    assert [(r["phone_id"], r["code"], r["phone_name"]) for r in reqs] == [
        (phone.id, code.code, "Test Phone")
    ]
    phone.conn.confirm_pairing(True, time.time())
    assert (await client.post(f"/api/pairing/requests/{reqs[0]['id']}/accept")).json() == {
        "ok": True
    }
    assert isinstance(
        await phone.until(lambda e: isinstance(e, SessionEstablished)), SessionEstablished
    )


async def test_pair_play_command_and_unpair(client: httpx.AsyncClient, engine: Engine) -> None:
    await client.post("/api/pairing/open")
    phone = FakePhone(engine)
    await pair(client, phone)
    phones = (await client.get("/api/phones")).json()
    assert [(p["id"], p["connected"], p["transport"]) for p in phones] == [(phone.id, True, "fake")]

    art = artwork_of(b"cover bytes", "image/jpeg")
    np = NowPlaying(
        title="Song",
        artists=["A"],
        album="Al",
        duration_ms=9000,
        position_ms=500,
        rate=1.0,
        state="playing",
        artwork=art.hash,
        track_id="t1",
    )
    await phone.send(np)
    # The car asks for artwork it does not have yet.
    req = await phone.until(
        lambda e: isinstance(e, MessageReceived) and isinstance(e.message, ArtworkRequest)
    )
    assert req.message.hash == art.hash  # type: ignore[union-attr]
    await phone.send(Artwork(hash=art.hash, mime=art.mime, data=art.data))
    async with asyncio.timeout(5):
        # The URL appears once the car holds the image (it never points at a 404).
        while (m := (await client.get("/api/media")).json())["artwork_url"] is None:
            await asyncio.sleep(0.01)
    assert m["title"] == "Song"
    assert m["phone_id"] == phone.id and m["connected"] is True and m["state"] == "playing"
    async with asyncio.timeout(5):
        while (r := await client.get(m["artwork_url"])).status_code != 200:
            await asyncio.sleep(0.01)
    assert r.content == b"cover bytes"

    r = await client.post("/api/media/command", json={"action": "seek", "position_ms": 1234})
    assert r.json() == {"ok": True, "phone_id": phone.id}
    got = await phone.until(
        lambda e: isinstance(e, MessageReceived) and isinstance(e.message, MediaCommand)
    )
    assert got.message == MediaCommand(action="seek", position_ms=1234)  # type: ignore[union-attr]

    assert (await client.delete(f"/api/phones/{phone.id}")).json() == {"ok": True}
    await phone.until(lambda e: isinstance(e, ConnectionFailed) or type(e).__name__ == "Closed")
    assert (await client.get("/api/phones")).json() == []
    assert (await client.get(f"/api/phones/{phone.id}/contacts")).status_code == 404
    assert (await client.get("/api/media")).json()["title"] is None
    db = sqlite3.connect(engine.store.path)
    for table in ("phones", "contacts", "photos", "media", "artwork"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    db.close()
    await phone.stop()


async def test_rejected_on_the_car(client: httpx.AsyncClient, engine: Engine) -> None:
    await client.post("/api/pairing/open")
    phone = FakePhone(engine)
    await phone.until(lambda e: isinstance(e, PairingCode))
    rid = (await client.get("/api/pairing/requests")).json()[0]["id"]
    assert (await client.post(f"/api/pairing/requests/{rid}/reject")).status_code == 200
    failed = await phone.until(lambda e: isinstance(e, ConnectionFailed))
    assert failed.error.reason is Reason.REJECTED  # type: ignore[union-attr]
    assert (await client.get("/api/phones")).json() == []
    assert (await client.get("/api/pairing/requests")).json() == []
    await phone.stop()


async def test_pairing_refused_when_window_closed(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    phone = FakePhone(engine)
    failed = await phone.until(lambda e: isinstance(e, ConnectionFailed))
    assert failed.error.reason is Reason.PAIRING_CLOSED  # type: ignore[union-attr]
    assert (await client.get("/api/pairing/requests")).json() == []
    await phone.stop()


async def test_car_session_ends_quietly_after_a_rejection(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    await client.post("/api/pairing/open")
    phone = FakePhone(engine)
    await phone.until(lambda e: isinstance(e, PairingCode))
    rid = (await client.get("/api/pairing/requests")).json()[0]["id"]
    assert (await client.post(f"/api/pairing/requests/{rid}/reject")).status_code == 200
    failed = await phone.until(lambda e: isinstance(e, ConnectionFailed))
    assert failed.error.reason is Reason.REJECTED  # type: ignore[union-attr]
    await phone.stop()  # the car's session task must end without an exception


def test_events_websocket_snapshot_then_changes(tmp_path: Path) -> None:
    store = Store(tmp_path / "carhub.sqlite3")
    engine = Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(), store)
    with (
        TestClient(create_app(engine), base_url="http://127.0.0.1:8080") as tc,
        # TestClient's WebSocket URL is always ws://testserver: name a served host.
        tc.websocket_connect("/api/events", headers={"Host": "127.0.0.1:8080"}) as ws,
    ):
        snapshot = [ws.receive_json() for _ in range(5)]
        kinds = ["status", "pairing", "phones", "media", "notifications"]  # issue 10 added the last
        assert [e["type"] for e in snapshot] == kinds
        assert snapshot[0]["data"]["name"] == "Test Car"
        assert tc.post("/api/pairing/open").status_code == 200
        event = ws.receive_json()
        assert event == {"type": "status", "data": {**snapshot[0]["data"], "pairing_open": True}}
    store.close()


async def test_foreign_host_header_is_refused(client: httpx.AsyncClient) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
    r = await client.get("/api/status", headers={"Host": "evil.example:8080"})
    assert r.status_code == 403


async def test_cross_origin_accept_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/pairing/open", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
    ok = await client.post("/api/pairing/open", headers={"Origin": "http://127.0.0.1:8080"})
    assert ok.status_code == 200 and ok.json()["pairing_open"] is True


def test_cross_origin_event_socket_is_refused(engine: Engine) -> None:
    from starlette.websockets import WebSocketDisconnect

    headers = {"Host": "127.0.0.1:8080", "Origin": "http://evil.example"}
    with TestClient(create_app(engine)) as tc, pytest.raises(WebSocketDisconnect):  # noqa: SIM117
        with tc.websocket_connect("/api/events", headers=headers):
            pass


async def test_artwork_is_served_as_inert_image(client: httpx.AsyncClient, engine: Engine) -> None:
    engine.store.add_phone("p1", "Phone", b"k" * 32, "fp", 1.0)
    engine.store.put_artwork("p1", b"\x01" * 32, "image/png", b"png")
    r = await client.get(f"/api/phones/p1/artwork/{'01' * 32}")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'"
