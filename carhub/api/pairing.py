"""``/api/pairing/...``: the pairing window, the QR code and the requests awaiting a decision."""

from __future__ import annotations

import io

from fastapi import APIRouter, HTTPException, Query, Response

from carhub.api.deps import EngineDep
from carhub.api.responses import errors
from carhub.engine import Engine
from carhub.views import PairingRequest, PairingUriBody, Status

__all__ = ["qr_svg", "router"]

router = APIRouter()
_NO_REQUEST = errors(e404="no such pairing request is pending (any more)")


class SvgResponse(Response):
    """An SVG image (so /openapi.json says ``image/svg+xml``, not JSON)."""

    media_type = "image/svg+xml"


def qr_svg(text: str) -> bytes:
    """Render ``text`` as a QR code SVG (error correction M, a 4-module quiet zone).

    It has a viewBox and no fixed size, so the page scales it to fit.

    Args:
        text: what the code holds.

    Returns:
        The SVG document.
    """
    import segno  # only when a QR code is asked for: it costs an idle car ~1 MB

    out = io.BytesIO()
    segno.make_qr(text, error="m").save(
        out, kind="svg", border=4, dark="#000", light="#fff", xmldecl=False, omitsize=True
    )
    return out.getvalue()


@router.post("/api/pairing/open", response_model=Status)
async def open_pairing(engine: EngineDep, seconds: float | None = Query(None, ge=0)) -> Status:
    """Open the pairing window (for `seconds`, default the configured window)."""
    engine.open_pairing(seconds)
    return engine.status()


@router.post("/api/pairing/close", response_model=Status)
async def close_pairing(engine: EngineDep) -> Status:
    engine.close_pairing()
    return engine.status()


@router.post("/api/pairing/uri", response_model=PairingUriBody)
async def pairing_uri(engine: EngineDep) -> PairingUriBody:
    """Show a fresh one-time pairing URI (QR code); opens the pairing window if closed.

    A phone that scans it pairs with no code to compare. Each call replaces the last
    URI; it expires with the pairing window and is used up by the first pairing.
    """
    uri, expires_at = engine.new_pairing_uri()
    return PairingUriBody(uri=uri.to_uri(), expires_at=expires_at)


@router.get(
    "/api/pairing/uri.svg",
    response_class=SvgResponse,
    responses={
        200: {
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
            "description": "The QR code, an SVG image",
        },
        **errors(image=True, e404="no pairing QR code is on show"),
    },
)
async def pairing_qr(engine: EngineDep) -> SvgResponse:
    """The current pairing URI as a QR code (SVG); 404 when none is on show."""
    current = engine.pairing_uri()
    if current is None:
        raise HTTPException(404, "no pairing QR code is on show")
    # The image holds a secret: never cache it, never treat it as anything but an image.
    return SvgResponse(
        qr_svg(current[0].to_uri()),
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


@router.get("/api/pairing/requests", response_model=list[PairingRequest])
async def pairing_requests(engine: EngineDep) -> list[PairingRequest]:
    return engine.pairing_requests()


@router.post("/api/pairing/requests/{request_id}/accept", responses=_NO_REQUEST)
async def accept(request_id: str, engine: EngineDep) -> dict[str, bool]:
    return _decide(engine, request_id, accepted=True)


@router.post("/api/pairing/requests/{request_id}/reject", responses=_NO_REQUEST)
async def reject(request_id: str, engine: EngineDep) -> dict[str, bool]:
    return _decide(engine, request_id, accepted=False)


def _decide(engine: Engine, request_id: str, *, accepted: bool) -> dict[str, bool]:
    """Pass the decision on; 404 when the request is not pending (any more)."""
    if not engine.decide(request_id, accepted=accepted):
        raise HTTPException(404, f"no pending pairing request {request_id}")
    return {"ok": True}
