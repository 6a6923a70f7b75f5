"""The car as AMS (Apple Media Service) client on one bonded iPhone's encrypted link.

Theory of operation: the car subscribes to Remote Command (the commands the player offers)
and Entity Update, then registers for the player's name, playback info and volume, the
queue's index, count, shuffle and repeat, and the track's artist, album, title and
duration. Updates are decoded by ``protocol.apple.ams`` and folded by an ``AmsPlayer``,
one at a time in arrival order; a value flagged truncated is re-read in full through
Entity Attribute (a write of ``entity | attribute``, then a long read) before it is fed,
one such re-read at a time as AMS requires. Each change of the now playing goes to
``AppleEvents.apple_now_playing``.

Bumble's own ``AmsClient`` is not used: it raises on malformed bytes (inside a
notification callback) and has no timeouts. Here malformed data is logged in one line and
dropped, every ATT request has a timeout, and the queue of pending updates is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bumble.core import BaseBumbleError
from bumble.gatt_client import CharacteristicProxy
from bumble.profiles.ams import AmsProxy

from carhub.apple import AppleEvents, AppleLinkError
from protocol.apple import AppleDataError
from protocol.apple.ams import (
    ACTION_COMMANDS,
    AmsPlayer,
    EntityId,
    EntityUpdate,
    PlayerAttribute,
    QueueAttribute,
    RemoteCommand,
    TrackAttribute,
    decode_entity_attribute_value,
    decode_entity_update,
    decode_remote_commands,
    encode_entity_attribute_request,
    encode_register,
)

__all__ = ["ATT_TIMEOUT_S", "MAX_PENDING_UPDATES", "AmsLink", "ams_chars"]

log = logging.getLogger("carhub.ble.apple")

# One ATT request/response takes a few connection intervals; 5 s covers a slow phone.
ATT_TIMEOUT_S = 5.0
# A phone that floods Entity Update faster than the car folds it loses the excess.
MAX_PENDING_UPDATES = 256
REGISTRATIONS: tuple[tuple[EntityId, tuple[int, ...]], ...] = (
    (
        EntityId.PLAYER,
        (PlayerAttribute.NAME, PlayerAttribute.PLAYBACK_INFO, PlayerAttribute.VOLUME),
    ),
    (
        EntityId.QUEUE,
        (
            QueueAttribute.INDEX,
            QueueAttribute.COUNT,
            QueueAttribute.SHUFFLE_MODE,
            QueueAttribute.REPEAT_MODE,
        ),
    ),
    (
        EntityId.TRACK,
        (
            TrackAttribute.ARTIST,
            TrackAttribute.ALBUM,
            TrackAttribute.TITLE,
            TrackAttribute.DURATION,
        ),
    ),
)
_LINK_ERRORS = (BaseBumbleError, OSError, TimeoutError, asyncio.TimeoutError)


async def att(awaitable: Awaitable[Any], what: str, timeout: float = ATT_TIMEOUT_S) -> Any:
    """Await one ATT exchange with a timeout.

    Raises:
        AppleLinkError: the phone answered with an error, the link dropped, or no answer.
    """
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except _LINK_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        raise AppleLinkError(f"{what}: {detail}") from exc


def ams_chars(proxy: AmsProxy) -> tuple[CharacteristicProxy[bytes], ...]:
    """The AMS characteristics (their subscriptions are renewed on a restart)."""
    return (proxy.remote_command, proxy.entity_update, proxy.entity_attribute)


class AmsLink:
    """AMS on one phone: media commands out, now playing in.

    Args:
        proxy: the phone's AMS service, discovered (``AmsProxy``).
        phone_id: the phone's id (identity address, 12 hex digits).
        events: where the now playing goes.
        spawn: runs a task its owner cancels when the link ends.
    """

    def __init__(
        self,
        proxy: AmsProxy,
        phone_id: str,
        events: AppleEvents,
        spawn: Callable[[Awaitable[None]], None],
    ) -> None:
        self._proxy = proxy
        self.phone_id = phone_id
        self._events = events
        self._spawn = spawn
        self.player = AmsPlayer()
        self._offered: frozenset[RemoteCommand] = frozenset()
        self._updates: asyncio.Queue[bytes] = asyncio.Queue(MAX_PENDING_UPDATES)
        self._overflow_logged = False
        self._stopped = False

    async def start(self) -> None:
        """Subscribe and register (the phone then notifies every value).

        Raises:
            AppleLinkError: a subscription or registration failed.
        """
        self._spawn(self._fold())
        await att(self._proxy.remote_command.subscribe(self._on_commands), "AMS Remote Command")
        await att(self._proxy.entity_update.subscribe(self._on_update), "AMS Entity Update")
        for entity, attributes in REGISTRATIONS:
            value = encode_register(entity, attributes)
            await att(
                self._proxy.entity_update.write_value(value, with_response=True),
                f"AMS register {entity.name}",
            )

    def stop(self) -> None:
        """Stop folding updates (the link ended or the service went away)."""
        self._stopped = True
        with contextlib.suppress(asyncio.QueueFull):
            self._updates.put_nowait(b"")  # wakes the folding task to end

    def media_commands(self) -> frozenset[str]:
        """The media actions the phone's player offers now."""
        return frozenset(a for a, cmd in ACTION_COMMANDS.items() if cmd in self._offered)

    async def media_command(self, action: str) -> None:
        """Write one Remote Command.

        Raises:
            AppleLinkError: an unknown action, an ATT error or no answer in time.
        """
        command = ACTION_COMMANDS.get(action)
        if command is None:
            raise AppleLinkError(f"AMS has no {action!r} command")
        write = self._proxy.remote_command.write_value(bytes([command]), with_response=True)
        await att(write, f"AMS {action}")

    def _on_commands(self, data: bytes) -> None:
        """Remote Command notified: the commands the player offers now."""
        try:
            self._offered = decode_remote_commands(bytes(data))
        except AppleDataError as exc:
            log.warning("AMS %s: dropped a Remote Command value: %s", self.phone_id, exc)

    def _on_update(self, data: bytes) -> None:
        """Entity Update notified: queue it for the folding task (bounded)."""
        if self._stopped or not data:
            return
        try:
            self._updates.put_nowait(bytes(data))
        except asyncio.QueueFull:
            if not self._overflow_logged:
                self._overflow_logged = True
                log.warning("AMS %s: too many pending entity updates; dropping", self.phone_id)

    async def _fold(self) -> None:
        """Fold queued updates into the player, in order, until ``stop``."""
        while not self._stopped:
            data = await self._updates.get()
            if self._stopped:
                return
            try:
                update = decode_entity_update(data)
                if update.truncated:
                    update = await self._reread(update)
                changed = self.player.update(update)
            except AppleDataError as exc:
                log.warning("AMS %s: dropped an entity update: %s", self.phone_id, exc)
                continue
            except AppleLinkError as exc:
                log.warning("AMS %s: could not re-read a truncated value: %s", self.phone_id, exc)
                continue
            if changed:
                now_ms = int(time.time() * 1000)
                self._events.apple_now_playing(self.phone_id, self.player.now_playing(), now_ms)

    async def _reread(self, update: EntityUpdate) -> EntityUpdate:
        """Read a truncated value in full through Entity Attribute.

        Raises:
            AppleLinkError: the write or read failed or timed out.
            AppleDataError: the value read is malformed.
        """
        request = encode_entity_attribute_request(update.entity, update.attribute)
        char = self._proxy.entity_attribute
        await att(char.write_value(request, with_response=True), "AMS Entity Attribute write")
        value = await att(char.read_value(), "AMS Entity Attribute read")
        return decode_entity_attribute_value(update.entity, update.attribute, bytes(value))
