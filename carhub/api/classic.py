"""``/api/classic/...``: car-initiated Bluetooth Classic (PBAP) connections."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from carhub.api.deps import EngineDep
from carhub.api.responses import errors
from carhub.classic_phones import ClassicNotReady
from carhub.views import ClassicConnectBody
from protocol.gatt import BD_ADDR

__all__ = ["router"]

router = APIRouter()


@router.post(
    "/api/classic/connect",
    status_code=202,
    response_model=ClassicConnectBody,
    responses=errors(
        e400="`address` is not a Bluetooth address (AA:BB:CC:DD:EE:FF)",
        e409="Bluetooth Classic is off on this car (no radio, or --no-classic)",
    ),
)
async def connect(body: ClassicConnectBody, engine: EngineDep) -> ClassicConnectBody:
    """Connect to a phone over Bluetooth Classic, pair if needed (SSP) and pull its book.

    Answers 202 at once: the pairing request, `sync` progress and the phone in
    `GET /api/phones` follow as events; a phone that does not answer is logged.
    """
    if not BD_ADDR.fullmatch(body.address):
        raise HTTPException(400, f"not a Bluetooth address: {body.address[:40]!r}")
    try:
        address = engine.classic_connect(body.address)
    except ClassicNotReady as exc:
        raise HTTPException(409, str(exc)) from None
    return ClassicConnectBody(address=address)
