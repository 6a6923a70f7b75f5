"""``/api/events``: the dashboard's live updates over a WebSocket."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from carhub.api.deps import EngineDep
from carhub.engine import Engine
from carhub.events import make_event

__all__ = ["router"]

router = APIRouter()


@router.websocket("/api/events")
async def events(ws: WebSocket, engine: EngineDep) -> None:
    """Live updates: a snapshot (status, pairing, phones, media, notifications), then changes."""
    await ws.accept()
    queue = engine.hub.subscribe()
    # Watch the client too, so a closed dashboard ends this handler at once.
    gone = asyncio.ensure_future(_until_disconnect(ws))
    try:
        for event in _snapshot(engine):
            await ws.send_json(event)
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


def _snapshot(engine: Engine) -> list[dict[str, object]]:
    """The events a new dashboard starts from: the current state of every kind."""
    return [
        make_event("status", engine.status()),
        make_event("pairing", engine.pairing_requests()),
        make_event("phones", engine.phones()),
        make_event("media", engine.media()),
        make_event("notifications", engine.notifications()),
    ]


async def _until_disconnect(ws: WebSocket) -> None:
    """Return when the client closes (anything it sends is ignored)."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
