"""``/api/media``: the active phone's now-playing state and its player's controls."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from carhub.api.deps import EngineDep
from carhub.api.responses import errors
from carhub.apple import AppleLinkError
from carhub.apple_phones import CommandRefused
from carhub.engine import NoPhoneError
from carhub.views import CommandResult, Media, MediaCommandBody

__all__ = ["router"]

router = APIRouter()


@router.get("/api/media", response_model=Media)
async def media(engine: EngineDep) -> Media:
    """Now playing; `source` "carhub" or "ams" (an Apple phone), null while nothing is."""
    return engine.media()


@router.post(
    "/api/media/command",
    response_model=CommandResult,
    responses=errors(
        e409="no phone is connected to take the command, or an Apple phone's player cannot"
        " take it (seek, or an action it does not offer now): nothing was sent",
        e502="the Apple phone could not be asked, or did not answer in time",
    ),
)
async def media_command(body: MediaCommandBody, engine: EngineDep) -> CommandResult:
    """Forward a command to the media source's player (409 when it cannot take it)."""
    try:
        pid = await engine.command(body.action, body.position_ms or 0)
    except (NoPhoneError, CommandRefused) as exc:
        raise HTTPException(409, str(exc)) from None
    except AppleLinkError as exc:
        raise HTTPException(502, f"the phone could not be asked: {exc}") from None
    return CommandResult(ok=True, phone_id=pid)
