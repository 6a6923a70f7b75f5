"""``/api/notifications``: Apple-profile phones' notifications (ANCS) and their actions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from carhub.api.deps import EngineDep
from carhub.api.responses import errors
from carhub.apple import AppleLinkError
from carhub.apple_phones import CommandRefused, UnknownNotification
from carhub.views import CommandResult, Notification, NotificationActionBody

__all__ = ["router"]

router = APIRouter()


@router.get("/api/notifications", response_model=list[Notification])
async def notifications(engine: EngineDep) -> list[Notification]:
    """Every notification, newest `date` first (ties: the latest to arrive first)."""
    return engine.notifications()


@router.post(
    "/api/notifications/{phone_id}/{uid}/action",
    response_model=CommandResult,
    responses=errors(
        e404="no such notification is shown",
        e409="the notification has no such action, or its phone is not connected (nothing sent)",
        e502="the phone could not be asked, or did not answer in time",
    ),
)
async def notification_action(
    phone_id: str, uid: int, body: NotificationActionBody, engine: EngineDep
) -> CommandResult:
    """Perform the notification's positive or negative action on its phone (ANCS)."""
    try:
        await engine.notification_action(phone_id, uid, body.action)
    except UnknownNotification as exc:
        raise HTTPException(404, str(exc)) from None
    except CommandRefused as exc:
        raise HTTPException(409, str(exc)) from None
    except AppleLinkError as exc:
        raise HTTPException(502, f"the phone could not be asked: {exc}") from None
    return CommandResult(ok=True, phone_id=phone_id)
