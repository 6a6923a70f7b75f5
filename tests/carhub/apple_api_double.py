"""A test double of ``carhub.apple.AppleHandle``: the BLE side of an Apple-profile phone.

It records every command the engine sends, so a test asserts what reached the "phone".
Shared by tests/carhub/test_apple_api_*.py and tests/e2e/test_dashboard_apple*.py.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from carhub.apple import AppleLinkError, Profile
from carhub.views import Notification

__all__ = ["ALL_COMMANDS", "FakeAppleHandle", "note"]

ALL_COMMANDS = frozenset({"play", "pause", "toggle", "next", "previous"})


class FakeAppleHandle:
    """A connected iPhone as the engine sees it; ``fail`` makes every call an AppleLinkError."""

    transport_name = "ble"

    def __init__(
        self,
        profiles: tuple[Profile, ...] = ("ams", "ancs"),
        commands: frozenset[str] = ALL_COMMANDS,
    ) -> None:
        self.profiles = profiles
        self.commands = commands
        self.media_sent: list[str] = []
        self.actions_sent: list[tuple[int, str]] = []
        self.closed: str | None = None
        self.fail: str | None = None
        self.hang = False  # never answer (the engine's own timeout must end the wait)

    def media_commands(self) -> frozenset[str]:
        return self.commands

    async def _answer(self) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail is not None:
            raise AppleLinkError(self.fail)

    async def media_command(self, action: str) -> None:
        await self._answer()
        self.media_sent.append(action)

    async def notification_action(self, uid: int, action: Literal["positive", "negative"]) -> None:
        await self._answer()
        self.actions_sent.append((uid, action))

    def close(self, reason: str) -> None:
        self.closed = reason


def note(
    phone_id: str,
    uid: int,
    date: str = "2025-06-01T12:00:00",
    *,
    title: str = "Title",
    positive: str | None = "Reply",
    negative: str | None = "Clear",
    app: str = "Messages",
) -> Notification:
    """Build one notification as the BLE side reports it."""
    return Notification(
        phone_id=phone_id,
        uid=uid,
        app_id=f"com.apple.{app.lower()}",
        app_name=app,
        title=title,
        subtitle=f"subtitle {uid}",
        message=f"message {uid}",
        date=date,
        category="social",
        positive_action=positive,
        negative_action=negative,
    )
