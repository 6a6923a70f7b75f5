"""The dashboard's same-origin guard compares scheme, host and port exactly.

Through ``TestClient`` (HTTP and the events WebSocket) and over a real uvicorn, as a
browser page on another origin would reach the ``http://`` dashboard.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from carhub.api import create_app
from carhub.engine import CarConfig, Engine
from carhub.store import Store
from protocol.identity import Identity

# Each differs from the http://127.0.0.1:8080 dashboard in exactly one part.
FOREIGN = [
    "https://127.0.0.1:8080",  # the scheme
    "http://127.0.0.1:8081",  # the port
    "http://127.0.0.1",  # the port (80 by default)
    "http://localhost:8080",  # the host
    "http://127.0.0.1:8080.evil.example",
    "http://evil.example@127.0.0.1:8080",
    "null",
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = Store(tmp_path / "carhub.sqlite3")
    yield Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(), store)
    store.close()


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_pairing_decision_from_another_origin_is_refused(engine: Engine, origin: str) -> None:
    with TestClient(create_app(engine), base_url="http://127.0.0.1:8080") as tc:
        r = tc.post("/api/pairing/open", headers={"Origin": origin})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
        assert tc.get("/api/status").json()["pairing_open"] is False


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8080", "HTTP://127.0.0.1:8080"])
def test_the_dashboard_own_origin_is_served(engine: Engine, origin: str) -> None:
    with TestClient(create_app(engine), base_url="http://127.0.0.1:8080") as tc:
        r = tc.post("/api/pairing/open", headers={"Origin": origin})
        assert r.status_code == 200 and r.json()["pairing_open"] is True


def test_the_events_socket_refuses_an_https_origin(engine: Engine) -> None:
    headers = {"Host": "127.0.0.1:8080", "Origin": "https://127.0.0.1:8080"}
    with TestClient(create_app(engine)) as tc, pytest.raises(WebSocketDisconnect):  # noqa: SIM117
        with tc.websocket_connect("/api/events", headers=headers):
            pass
    headers["Origin"] = "http://127.0.0.1:8080"
    with (
        TestClient(create_app(engine)) as tc,
        tc.websocket_connect("/api/events", headers=headers) as ws,
    ):
        assert ws.receive_json()["type"] == "status"


@pytest.fixture
async def dashboard(engine: Engine) -> AsyncIterator[str]:
    """The app on a real uvicorn on 127.0.0.1, as ``carhub run`` serves it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(engine), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        await engine.shutdown()


async def test_over_uvicorn_only_the_exact_origin_accepts(dashboard: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{dashboard}") as client:
        r = await client.post("/api/pairing/open", headers={"Origin": f"https://{dashboard}"})
        assert r.status_code == 403, r.text
        assert (await client.get("/api/status")).json()["pairing_open"] is False
        # uvicorn takes the request's scheme from a loopback client's X-Forwarded-Proto:
        # the guard must not, or https:// would pass again.
        spoofed = {"Origin": f"https://{dashboard}", "X-Forwarded-Proto": "https"}
        r = await client.post("/api/pairing/open", headers=spoofed)
        assert r.status_code == 403, r.text
        r = await client.post("/api/pairing/open", headers={"Origin": f"http://{dashboard}"})
        assert r.status_code == 200 and r.json()["pairing_open"] is True
