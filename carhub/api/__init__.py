"""The car's REST API and dashboard (FastAPI). Routes only; the engine does the work.

One ``APIRouter`` per resource (FastAPI's "Bigger Applications" layout), each reaching the
engine through ``EngineDep``; the shapes they return are the models in ``carhub.views``::

    status    GET  /api/status
    pairing   POST /api/pairing/open, /close, /uri;  GET /api/pairing/uri.svg;
              GET  /api/pairing/requests;  POST .../{request_id}/accept, /reject
    phones    GET  /api/phones;  DELETE /api/phones/{phone_id};
              GET  /api/phones/{phone_id}/contacts, /calls, /artwork/{art_hash}
    classic   POST /api/classic/connect
    media     GET  /api/media;  POST /api/media/command
    notifications  GET /api/notifications;  POST .../{phone_id}/{uid}/action
    events    WS   /api/events

OpenAPI docs are at ``/docs``; every route lists the 4xx it can answer (``responses``),
and a method a path does not serve gets 405 with ``Allow`` naming the ones it does.
The dashboard's files are served at ``/``, but never under ``/api/``. ``/api/events`` is
a WebSocket that first sends a snapshot (``status``, ``pairing``, ``phones``, ``media``,
``notifications``) and then every change, ``contacts`` and ``pairing_failed`` (``{phone_id,
reason}``: a Bluetooth bond that did not happen) included, each as ``{"type": ..., "data": ...}``.

Apple-profile (AMS/ANCS) phones: ``GET /api/phones`` lists them with ``profiles`` (a subset
of ``["ams", "ancs"]``; CarHub phones say ``["carhub"]``) and their identity address as
``fingerprint``; their LE SC codes are pairing requests with ``method`` "le-sc". ``GET
/api/media`` says whose player it shows in ``source``: "carhub", "ams", or null while no
phone has reported a track (``phone_id`` is null then too). Refusals of a command to a
phone: 409 when nothing was sent (no phone connected, a ``seek`` for an AMS player, which
has none, an action the player or the notification does not offer, the phone not
connected); 502 when the phone was asked and failed or did not answer in time.
``GET /api/notifications`` is newest ``date`` first, ties newest arrival first.

Bluetooth Classic (PBAP) phones: ``GET /api/phones`` lists them with ``profiles`` including
"pbap" (one entry with "ams"/"ancs" when the same address is a bonded Apple phone),
``transport`` "classic" while connected, and ``owner`` (every phone has the field: the name
on the phone's own card, null when unknown). Their contacts are at ``.../contacts`` as for
any phone, their recent calls at ``.../calls``; SSP codes are pairing requests with
``method`` "ssp"; ``GET /api/status`` says ``classic`` (the car's address, or null);
``POST /api/classic/connect`` answers 202 at once (400 for a bad address, 409 when Classic
is off). ``/api/events`` adds ``sync`` (``{phone_id, done, total, stage}``, stage
"contacts", "photos", "done", "skipped" or "failed") and ``calls`` (``{phone_id, total}``),
each coalesced per phone like ``contacts``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from carhub.api import classic, events, media, notifications, pairing, phones, status
from carhub.api.guard import LOOPBACK_HOSTS, SameOriginGuard
from carhub.api.pairing import qr_svg
from carhub.api.responses import GUARDED
from carhub.api.routing import UiMount, method_not_allowed
from carhub.engine import Engine

__all__ = ["LOOPBACK_HOSTS", "create_app", "qr_svg"]

UI_DIR = Path(__file__).parent.parent / "ui"
# In this order, which is also the order of /openapi.json's paths.
ROUTERS = (
    status.router,
    pairing.router,
    phones.router,
    media.router,
    notifications.router,
    classic.router,
    events.router,
)


def create_app(engine: Engine, allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS) -> FastAPI:
    """Build the FastAPI app around a running engine.

    Args:
        engine: the running car.
        allowed_hosts: Host header values served (DNS-rebinding defence); None serves any
            (a dashboard bound to a non-loopback address).

    Returns:
        The ASGI app: the API, its docs at ``/docs`` and the dashboard at ``/``.
    """
    app = FastAPI(
        title="CarHub head unit",
        version="1",
        description="The car's REST API; the dashboard at / uses it too.",
    )
    app.state.engine = engine
    app.add_middleware(SameOriginGuard, allowed_hosts=allowed_hosts)
    app.add_exception_handler(HTTPException, method_not_allowed)
    for router in ROUTERS:
        app.include_router(router, responses=GUARDED)
    # Mounted last so the API routes above win; html=True serves index.html at /.
    if UI_DIR.is_dir():
        app.router.routes.append(UiMount("/", StaticFiles(directory=UI_DIR, html=True), name="ui"))
    return app
