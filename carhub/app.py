"""The car's REST API and dashboard (FastAPI). Routes only; the engine does the work.

OpenAPI docs are at ``/docs``. ``/api/events`` is a WebSocket that first sends a snapshot
(``status``, ``pairing``, ``phones``, ``media``) and then every change, ``contacts``
included, each as ``{"type": ..., "data": ...}``.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any, Literal

import segno
from fastapi import FastAPI, HTTPException, Query, Response, WebSocket, WebSocketDisconnect
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from carhub.engine import Engine, NoPhoneError

__all__ = ["create_app"]

UI_DIR = Path(__file__).parent / "ui"


class Status(BaseModel):
    id: str
    name: str
    model: str
    fingerprint: str
    protocol_version: int
    pairing_open: bool
    pairing_uri_expires_at: float | None = None
    ble: dict[str, Any] | None
    lan: dict[str, Any] | None


class PairingRequest(BaseModel):
    id: str
    phone_id: str
    phone_name: str
    phone_fingerprint: str
    code: str
    expires_at: float


class PairingUriBody(BaseModel):
    uri: str
    expires_at: float


class Phone(BaseModel):
    id: str
    name: str
    fingerprint: str
    connected: bool
    transport: str | None
    contacts: int
    last_sync: float | None


class ContactPhone(BaseModel):
    number: str
    type: str
    label: str = ""


class ContactItem(BaseModel):
    uid: str
    name: str
    phones: list[ContactPhone]
    emails: list[str]
    org: str


class ContactPage(BaseModel):
    total: int
    items: list[ContactItem]


class Media(BaseModel):
    phone_id: str | None
    title: str | None
    artists: list[str]
    album: str | None
    state: str
    position_ms: int
    duration_ms: int
    rate: float
    track_id: str | None
    artwork_url: str | None
    connected: bool


class MediaCommandBody(BaseModel):
    action: Literal["play", "pause", "toggle", "next", "previous", "seek"]
    position_ms: int | None = Field(default=None, ge=0)


class CommandResult(BaseModel):
    ok: bool
    phone_id: str


class _SameOriginGuard:
    """Refuse cross-site use of the dashboard API (pure ASGI, so WebSockets are covered).

    Any web page open in a browser on the head unit could otherwise accept a pairing
    request: browsers let pages POST and open WebSockets cross-origin. So: the Host header
    must be an allowed host (defeats DNS rebinding), and a request that carries an Origin
    must come from the dashboard's own origin (browsers always send one cross-origin).
    """

    def __init__(self, app: Any, allowed_hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.allowed = allowed_hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get("host", "")
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if self.allowed is not None and hostname not in self.allowed:
                await _refuse(scope, send, f"host {host!r} is not served")
                return
            origin = headers.get("origin")
            unsafe = scope["type"] == "websocket" or scope.get("method") not in ("GET", "HEAD")
            if unsafe and origin is not None and origin.split("://", 1)[-1] != host:
                await _refuse(scope, send, f"cross-origin request from {origin} refused")
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Any, send: Any, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def qr_svg(text: str) -> bytes:
    """Render ``text`` as a QR code SVG (error correction M, a 4-module quiet zone).

    It has a viewBox and no fixed size, so the page scales it to fit.
    """
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(
        out, kind="svg", border=4, dark="#000", light="#fff", xmldecl=False, omitsize=True
    )
    return out.getvalue()


async def _until_disconnect(ws: WebSocket) -> None:
    """Return when the client closes (anything it sends is ignored)."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def create_app(engine: Engine, allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS) -> FastAPI:
    """Build the FastAPI app around a running engine.

    Args:
        engine: the running car.
        allowed_hosts: Host header values served (DNS-rebinding defence); None serves any
            (a dashboard bound to a non-loopback address).
    """
    app = FastAPI(
        title="CarHub head unit",
        version="1",
        description="The car's REST API; the dashboard at / uses it too.",
    )
    app.add_middleware(_SameOriginGuard, allowed_hosts=allowed_hosts)

    @app.get("/api/status", response_model=Status)
    async def status() -> dict[str, Any]:
        return engine.status()

    @app.post("/api/pairing/open", response_model=Status)
    async def open_pairing(seconds: float | None = Query(None, ge=0)) -> dict[str, Any]:
        """Open the pairing window (for `seconds`, default the configured window)."""
        engine.open_pairing(seconds)
        return engine.status()

    @app.post("/api/pairing/close", response_model=Status)
    async def close_pairing() -> dict[str, Any]:
        engine.close_pairing()
        return engine.status()

    @app.post("/api/pairing/uri", response_model=PairingUriBody)
    async def pairing_uri() -> dict[str, Any]:
        """Show a fresh one-time pairing URI (QR code); opens the pairing window if closed.

        A phone that scans it pairs with no code to compare. Each call replaces the last
        URI; it expires with the pairing window and is used up by the first pairing.
        """
        uri, expires_at = engine.new_pairing_uri()
        return {"uri": uri.to_uri(), "expires_at": expires_at}

    @app.get("/api/pairing/uri.svg")
    async def pairing_qr() -> Response:
        """The current pairing URI as a QR code (SVG); 404 when none is on show."""
        current = engine.pairing_uri()
        if current is None:
            raise HTTPException(404, "no pairing QR code is on show")
        # The image holds a secret: never cache it, never treat it as anything but an image.
        return Response(
            qr_svg(current[0].to_uri()),
            media_type="image/svg+xml",
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'",
            },
        )

    @app.get("/api/pairing/requests", response_model=list[PairingRequest])
    async def pairing_requests() -> list[dict[str, Any]]:
        return engine.pairing_requests()

    @app.post("/api/pairing/requests/{request_id}/accept")
    async def accept(request_id: str) -> dict[str, bool]:
        if not engine.decide(request_id, accepted=True):
            raise HTTPException(404, f"no pending pairing request {request_id}")
        return {"ok": True}

    @app.post("/api/pairing/requests/{request_id}/reject")
    async def reject(request_id: str) -> dict[str, bool]:
        if not engine.decide(request_id, accepted=False):
            raise HTTPException(404, f"no pending pairing request {request_id}")
        return {"ok": True}

    @app.get("/api/phones", response_model=list[Phone])
    async def phones() -> list[dict[str, Any]]:
        return engine.phones()

    @app.delete("/api/phones/{phone_id}")
    async def unpair(phone_id: str) -> dict[str, bool]:
        """Unpair the phone and erase its keys, contacts, media and artwork."""
        if not engine.unpair(phone_id):
            raise HTTPException(404, f"no paired phone {phone_id}")
        return {"ok": True}

    @app.get("/api/phones/{phone_id}/contacts", response_model=ContactPage)
    async def contacts(
        phone_id: str,
        q: str = "",
        limit: int = Query(50, ge=0, le=1000),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        if engine.store.pinned_key(phone_id) is None:
            raise HTTPException(404, f"no paired phone {phone_id}")
        total, items = engine.store.contacts(phone_id, q=q, limit=limit, offset=offset)
        return {
            "total": total,
            "items": [
                {
                    "uid": c.uid,
                    "name": c.fn,
                    "phones": [
                        {"number": p.number, "type": p.type, "label": p.label} for p in c.phones
                    ],
                    "emails": [e.address for e in c.emails],
                    "org": c.org,
                }
                for c in items
            ],
        }

    @app.get("/api/phones/{phone_id}/artwork/{art_hash}")
    async def artwork(phone_id: str, art_hash: str) -> Response:
        try:
            raw = bytes.fromhex(art_hash)
        except ValueError:
            raise HTTPException(400, "artwork hash must be hex") from None
        found = engine.store.artwork(phone_id, raw)
        if found is None:
            raise HTTPException(404, "no such artwork")
        mime, data = found
        # Content-addressed, so it never changes; never sniffed or run as anything else.
        return Response(
            data,
            media_type=mime,
            headers={
                "Cache-Control": "max-age=31536000",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'",
            },
        )

    @app.get("/api/media", response_model=Media)
    async def media() -> dict[str, Any]:
        return engine.media()

    @app.post("/api/media/command", response_model=CommandResult)
    async def media_command(body: MediaCommandBody) -> dict[str, Any]:
        """Forward a command to the phone's player (409 when no phone is connected)."""
        try:
            pid = await engine.command(body.action, body.position_ms or 0)
        except NoPhoneError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"ok": True, "phone_id": pid}

    @app.websocket("/api/events")
    async def events(ws: WebSocket) -> None:
        """Live updates: a snapshot (status, pairing, phones, media), then every change."""
        await ws.accept()
        queue = engine.hub.subscribe()
        # Watch the client too, so a closed dashboard ends this handler at once.
        gone = asyncio.ensure_future(_until_disconnect(ws))
        try:
            for type_, data in (
                ("status", engine.status()),
                ("pairing", engine.pairing_requests()),
                ("phones", engine.phones()),
                ("media", engine.media()),
            ):
                await ws.send_json({"type": type_, "data": data})
            while True:
                nxt = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({nxt, gone}, return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    nxt.cancel()
                    return
                await ws.send_json(nxt.result())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            gone.cancel()
            engine.hub.unsubscribe(queue)

    # Mounted last so the API routes above win; html=True serves index.html at /.
    if UI_DIR.is_dir():
        app.mount("/", StaticFiles(directory=UI_DIR, html=True), name="ui")
    return app
