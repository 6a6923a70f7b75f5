"""``/api/media``: the active phone's now-playing state and its player's controls."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from carhub.api.deps import EngineDep
from carhub.api.responses import errors
from carhub.engine import NoPhoneError
from carhub.views import CommandResult, Media, MediaCommandBody

__all__ = ["router"]

router = APIRouter()


@router.get("/api/media", response_model=Media)
async def media(engine: EngineDep) -> Media:
    return engine.media()


@router.post(
    "/api/media/command",
    response_model=CommandResult,
    responses=errors(e409="no phone is connected to take the command"),
)
async def media_command(body: MediaCommandBody, engine: EngineDep) -> CommandResult:
    """Forward a command to the phone's player (409 when no phone is connected)."""
    try:
        pid = await engine.command(body.action, body.position_ms or 0)
    except NoPhoneError as exc:
        raise HTTPException(409, str(exc)) from None
    return CommandResult(ok=True, phone_id=pid)
