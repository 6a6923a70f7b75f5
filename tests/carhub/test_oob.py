"""Pairing by QR code (OOB, PROTOCOL.md §4.1 and §5) through the car's REST API.

A real ``PhoneConnection`` holding the scanned ``PairingUri`` talks to the engine over the
in-memory ``FakeLink`` of ``test_api``; the dashboard side is ``httpx.ASGITransport``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from carhub.api import create_app, qr_svg
from carhub.engine import CarConfig, Engine
from carhub.store import Store
from protocol.connection import ConnectionFailed, PhoneConnection, SessionEstablished
from protocol.errors import Reason
from protocol.identity import Identity, PairingUri, fingerprint_hash
from tests.carhub.test_api import FakePhone

ENDPOINT = "192.0.2.7:4711"


class QrPhone(FakePhone):
    """A phone that scanned ``uri``: it asks for OOB pairing, with no code to compare."""

    def __init__(self, engine: Engine, uri: PairingUri, name: str = "QR Phone") -> None:
        super().__init__(engine, name)
        # Nothing was pumped yet, so the Hello of this connection is the first one sent.
        self.conn = PhoneConnection(self.identity, name, oob=uri, now=time.time())

    async def failure(self) -> Reason:
        ev = await self.until(lambda e: isinstance(e, ConnectionFailed | SessionEstablished))
        assert isinstance(ev, ConnectionFailed), f"expected a failure, got {ev}"
        return ev.error.reason  # type: ignore[union-attr,no-any-return]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = Store(tmp_path / "carhub.sqlite3")
    config = CarConfig(name="Test Car", state_dir=tmp_path, lan_endpoint=ENDPOINT)
    eng = Engine(config, Identity.generate(), store)
    yield eng
    await eng.shutdown()
    store.close()


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as c:
        yield c


async def show_qr(client: httpx.AsyncClient) -> PairingUri:
    r = await client.post("/api/pairing/uri")
    assert r.status_code == 200
    return PairingUri.parse(r.json()["uri"])


async def phone_ids(client: httpx.AsyncClient) -> list[str]:
    return [p["id"] for p in (await client.get("/api/phones")).json()]


async def test_uri_shape_opens_the_window_and_svg(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    assert (await client.get("/api/pairing/uri.svg")).status_code == 404
    before = time.time()
    r = await client.post("/api/pairing/uri")
    body = r.json()
    assert set(body) == {"uri", "expires_at"}
    assert body["uri"].startswith("carhub://pair?v=1&id=")
    uri = PairingUri.parse(body["uri"])
    assert uri.device_id == engine.identity.device_id
    assert uri.fingerprint_hash == fingerprint_hash(engine.identity.public_key)
    assert uri.host == ENDPOINT and len(uri.secret) == 16
    # The window was closed: the call opened it, and the code lasts as long as it does.
    status = (await client.get("/api/status")).json()
    assert status["pairing_open"] is True
    assert status["pairing_uri_expires_at"] == body["expires_at"]
    assert before + 119 < body["expires_at"] <= time.time() + 120

    svg = await client.get("/api/pairing/uri.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["cache-control"] == "no-store"
    assert svg.content.startswith(b"<svg") and svg.content == qr_svg(body["uri"])

    # Each call replaces the secret, and the picture follows.
    again = await show_qr(client)
    assert again.secret != uri.secret
    assert (await client.get("/api/pairing/uri.svg")).content == qr_svg(again.to_uri())
    assert (await client.get("/api/pairing/uri.svg")).content != svg.content


async def test_phone_with_the_uri_pairs_without_any_accept(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    phone = QrPhone(engine, await show_qr(client))
    ev = await phone.until(lambda e: isinstance(e, ConnectionFailed | SessionEstablished))
    assert isinstance(ev, SessionEstablished)
    assert (await client.get("/api/pairing/requests")).json() == []  # nothing to accept
    phones = (await client.get("/api/phones")).json()
    assert [(p["id"], p["name"], p["connected"]) for p in phones] == [(phone.id, "QR Phone", True)]
    # Used up: the dashboard stops showing it.
    assert (await client.get("/api/status")).json()["pairing_uri_expires_at"] is None
    assert (await client.get("/api/pairing/uri.svg")).status_code == 404
    await phone.stop()


async def test_second_use_of_the_same_secret_fails(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    uri = await show_qr(client)
    # This phone's connection begins (and copies the secret) before the first one pairs.
    early = QrPhone(engine, uri, "Early Copy")
    await asyncio.sleep(0.05)
    first = QrPhone(engine, uri)
    assert isinstance(
        await first.until(lambda e: isinstance(e, ConnectionFailed | SessionEstablished)),
        SessionEstablished,
    )
    assert await early.failure() is Reason.OOB_MISMATCH
    late = QrPhone(engine, uri, "Late Copy")
    assert await late.failure() is Reason.OOB_MISMATCH
    assert await phone_ids(client) == [first.id]
    for p in (first, early, late):
        await p.stop()


async def test_a_replaced_uri_no_longer_pairs(client: httpx.AsyncClient, engine: Engine) -> None:
    old = await show_qr(client)
    await show_qr(client)
    phone = QrPhone(engine, old)
    # The two ends mix different secrets into the confirmation key: the MACs differ.
    assert await phone.failure() is Reason.CONFIRMATION_FAILED
    assert await phone_ids(client) == []
    await phone.stop()


async def test_wrong_fingerprint_in_the_uri_fails(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    uri = await show_qr(client)
    other = Identity.generate()
    for forged in (
        dataclasses.replace(uri, fingerprint_hash=fingerprint_hash(other.public_key)),
        dataclasses.replace(uri, device_id=other.device_id),
    ):
        phone = QrPhone(engine, forged)
        assert await phone.failure() is Reason.OOB_MISMATCH
        await phone.stop()
    assert await phone_ids(client) == []
    # The real code was not spent by the forged attempts.
    good = QrPhone(engine, uri)
    ev = await good.until(lambda e: isinstance(e, ConnectionFailed | SessionEstablished))
    assert isinstance(ev, SessionEstablished)
    await good.stop()


async def test_no_qr_on_show_refuses_oob(client: httpx.AsyncClient, engine: Engine) -> None:
    await client.post("/api/pairing/open")
    guessed = PairingUri.create(engine.identity, ENDPOINT)  # right key, secret never shown
    phone = QrPhone(engine, guessed)
    assert await phone.failure() is Reason.OOB_MISMATCH
    assert await phone_ids(client) == []
    await phone.stop()


async def test_closing_the_window_drops_the_uri(client: httpx.AsyncClient, engine: Engine) -> None:
    uri = await show_qr(client)
    await client.post("/api/pairing/close")
    assert (await client.get("/api/pairing/uri.svg")).status_code == 404
    assert (await client.get("/api/status")).json()["pairing_uri_expires_at"] is None
    phone = QrPhone(engine, uri)
    assert await phone.failure() is Reason.PAIRING_CLOSED
    await phone.stop()


async def test_uri_expires_with_a_short_window(client: httpx.AsyncClient) -> None:
    await client.post("/api/pairing/open?seconds=0.3")
    body = (await client.post("/api/pairing/uri")).json()
    assert body["expires_at"] <= time.time() + 0.3
    await asyncio.sleep(0.4)
    assert (await client.get("/api/pairing/uri.svg")).status_code == 404
