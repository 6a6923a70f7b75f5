"""/openapi.json says what the API really answers: its refusals, its media types, its 405s.

Each claim is checked twice: in ``app.openapi()`` and by a real request through
``TestClient``, so the description and the behaviour cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carhub.api import create_app
from carhub.engine import CarConfig, Engine
from carhub.store import Store
from protocol.identity import Identity

# (method, path template, a concrete path, the status a request gets, why)
REFUSALS = [
    ("post", "/api/pairing/requests/{request_id}/accept", "/api/pairing/requests/nope/accept", 404),
    ("post", "/api/pairing/requests/{request_id}/reject", "/api/pairing/requests/nope/reject", 404),
    ("get", "/api/pairing/uri.svg", "/api/pairing/uri.svg", 404),
    ("delete", "/api/phones/{phone_id}", "/api/phones/nope", 404),
    ("get", "/api/phones/{phone_id}/contacts", "/api/phones/nope/contacts", 404),
    ("get", "/api/phones/{phone_id}/artwork/{art_hash}", "/api/phones/p/artwork/zz", 400),
    ("get", "/api/phones/{phone_id}/artwork/{art_hash}", "/api/phones/p/artwork/01", 404),
    ("post", "/api/media/command", "/api/media/command", 409),
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    store = Store(tmp_path / "carhub.sqlite3")
    engine = Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(), store)
    yield create_app(engine)
    store.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1:8080") as tc:
        yield tc


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    assert ref.startswith("#/components/schemas/"), schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


@pytest.mark.parametrize(("method", "template", "path", "status"), REFUSALS)
def test_every_refusal_is_described_and_answered(
    app: FastAPI, client: TestClient, method: str, template: str, path: str, status: int
) -> None:
    spec = app.openapi()
    described = spec["paths"][template][method]["responses"][str(status)]
    schema = _resolve(spec, described["content"]["application/json"]["schema"])
    assert schema["required"] == ["detail"] and "detail" in schema["properties"]
    body = {"action": "play"} if path == "/api/media/command" else None
    r = client.request(method.upper(), path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"detail"} and isinstance(r.json()["detail"], str)


def test_the_qr_code_is_described_as_svg_and_served_as_svg(
    app: FastAPI, client: TestClient
) -> None:
    ok = app.openapi()["paths"]["/api/pairing/uri.svg"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["image/svg+xml"]
    assert client.post("/api/pairing/uri").status_code == 200
    r = client.get("/api/pairing/uri.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert r.text.startswith("<svg")


def test_artwork_is_described_as_an_image(app: FastAPI) -> None:
    ok = app.openapi()["paths"]["/api/phones/{phone_id}/artwork/{art_hash}"]["get"]
    assert list(ok["responses"]["200"]["content"]) == ["image/*"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/status", "GET"),
        ("GET", "/api/pairing/open", "POST"),
        ("GET", "/api/phones/nope", "DELETE"),
        ("POST", "/api/phones", "GET"),
        ("DELETE", "/api/media/command", "POST"),
        ("POST", "/api/pairing/uri.svg", "GET"),
    ],
)
def test_a_405_allows_what_the_path_serves(
    app: FastAPI, client: TestClient, method: str, path: str, allow: str
) -> None:
    r = client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    # And the description agrees: the path's operations are exactly the allowed methods.
    ops = {m.upper() for m in app.openapi()["paths"][path.replace("nope", "{phone_id}")]}
    assert ops == set(allow.split(", "))


def test_the_dashboard_files_are_still_served_but_not_under_api(client: TestClient) -> None:
    assert client.get("/").headers["content-type"].startswith("text/html")
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
