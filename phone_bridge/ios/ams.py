"""The emulated iPhone's Apple Media Service: the player as AMS entities.

Remote Command (write, notify): the car writes one command id, the player obeys; the
commands the player offers are notified when the car subscribes and whenever they change.
Entity Update (write, notify): the car writes an entity and the attributes it wants; the
phone notifies their current values at once and each one again when it changes, cut to
ATT MTU - 3 and flagged truncated when it does not fit. Entity Attribute (write, read):
the car names an entity and attribute, then reads the full value (a long read if needed).
Every access needs a secure link (``LinkGuard``). AMS errors are ATT errors 0xA0-0xA2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bumble import att
from bumble.gatt import Characteristic, Service

from phone_bridge.ios.guard import LinkGuard
from protocol.apple import (
    AMS_ENTITY_ATTRIBUTE_UUID,
    AMS_ENTITY_UPDATE_UUID,
    AMS_REMOTE_COMMAND_UUID,
    AMS_SERVICE_UUID,
    AppleDataError,
    cut_utf8,
    utf8,
)
from protocol.apple.ams import (
    EntityId,
    PlaybackInfo,
    PlaybackState,
    PlayerAttribute,
    QueueAttribute,
    RemoteCommand,
    TrackAttribute,
    decode_entity_attribute_request,
    decode_register,
    decode_remote_command,
    encode_entity_update,
    encode_remote_commands,
    format_playback_info,
)
from protocol.media import MediaCommand, NowPlaying

__all__ = ["AMS_ERROR_INVALID_COMMAND", "AMS_ERROR_INVALID_STATE", "AmsServer", "entity_values"]

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]
AMS_ERROR_INVALID_STATE = 0xA0
AMS_ERROR_INVALID_COMMAND = 0xA1
AMS_ERROR_ABSENT_ATTRIBUTE = 0xA2
# The commands the player obeys, and the MediaCommand action each one is.
_ACTIONS = {
    RemoteCommand.PLAY: "play",
    RemoteCommand.PAUSE: "pause",
    RemoteCommand.TOGGLE_PLAY_PAUSE: "toggle",
    RemoteCommand.NEXT_TRACK: "next",
    RemoteCommand.PREVIOUS_TRACK: "previous",
}
_STATES = {"playing": PlaybackState.PLAYING, "paused": PlaybackState.PAUSED}
_VOLUME = "0.5"


def entity_values(np: NowPlaying | None, player_name: str, index: int, count: int) -> dict[
    tuple[int, int], str
]:
    """Every AMS attribute value of a player state, as an iPhone formats them.

    Args:
        np: what is playing (None: no player).
        player_name: the app name (Player Name).
        index: the queue index.
        count: the queue length.
    """
    playing = np is not None and np.state in _STATES
    info = (
        format_playback_info(PlaybackInfo(_STATES[np.state], np.rate if np.state == "playing"
                                          else 0.0, np.position_ms / 1000))
        if np is not None and playing else ""
    )
    return {
        (EntityId.PLAYER, PlayerAttribute.NAME): player_name if np is not None else "",
        (EntityId.PLAYER, PlayerAttribute.PLAYBACK_INFO): info,
        (EntityId.PLAYER, PlayerAttribute.VOLUME): _VOLUME if np is not None else "",
        (EntityId.QUEUE, QueueAttribute.INDEX): str(index) if np is not None else "",
        (EntityId.QUEUE, QueueAttribute.COUNT): str(count) if np is not None else "",
        (EntityId.QUEUE, QueueAttribute.SHUFFLE_MODE): "0" if np is not None else "",
        (EntityId.QUEUE, QueueAttribute.REPEAT_MODE): "0" if np is not None else "",
        (EntityId.TRACK, TrackAttribute.ARTIST): ", ".join(np.artists) if np else "",
        (EntityId.TRACK, TrackAttribute.ALBUM): np.album if np else "",
        (EntityId.TRACK, TrackAttribute.TITLE): np.title if np else "",
        (EntityId.TRACK, TrackAttribute.DURATION): (
            f"{np.duration_ms / 1000:.3f}" if np and np.duration_ms else ""
        ),
    }


class _Link:
    """What one car registered on one connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.registered: dict[int, tuple[int, ...]] = {}
        self.sent: dict[tuple[int, int], str] = {}
        self.attribute: tuple[int, int] | None = None
        self.commands: bytes | None = None  # the Remote Command value last notified


class AmsServer:
    """AMS on a Bumble device, driven by a ``phone_bridge.player.Player`` (or none).

    Args:
        device: the Bumble device (for notifications).
        guard: which links are secure.
        player: the player whose state AMS shows and which obeys remote commands.
        emit: called with each event (``remote-command``) for ``--json``.
        player_name: the Player Name attribute (an app name on an iPhone).
    """

    def __init__(
        self, device: Any, guard: LinkGuard, player: Any, emit: Emit, player_name: str = "Music"
    ) -> None:
        self._device = device
        self._guard = guard
        self.player: Any = None
        self._emit = emit
        self.player_name = player_name
        self._links: dict[int, _Link] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        perms = LinkGuard.PERMISSIONS
        props = Characteristic.Properties
        self.remote_command: Characteristic[bytes] = Characteristic(
            AMS_REMOTE_COMMAND_UUID, props.NOTIFY | props.WRITE | props.WRITE_WITHOUT_RESPONSE,
            perms, guard.value(write=self._on_remote_command),
        )
        self.entity_update: Characteristic[bytes] = Characteristic(
            AMS_ENTITY_UPDATE_UUID, props.NOTIFY | props.WRITE,
            perms, guard.value(write=self._on_register),
        )
        self.entity_attribute: Characteristic[bytes] = Characteristic(
            AMS_ENTITY_ATTRIBUTE_UUID, props.READ | props.WRITE | props.WRITE_WITHOUT_RESPONSE,
            perms, guard.value(read=self._read_attribute, write=self._on_attribute_request),
        )
        for ch in (self.remote_command, self.entity_update):
            guard.cccd(ch)
        self.remote_command.on(Characteristic.EVENT_SUBSCRIPTION, self._on_subscription)
        self.service = Service(
            AMS_SERVICE_UUID, [self.remote_command, self.entity_update, self.entity_attribute]
        )
        self.set_player(player)

    def attach(self, device: Any) -> None:
        """Serve on ``device`` from now on (a fresh Device after the radio restarted)."""
        self._device = device
        self._links.clear()

    def set_player(self, player: Any) -> None:
        """Switch to another player (None: no media app); cars are told what changed.

        The supported Remote Commands and every registered attribute are notified again
        where their values differ.
        """
        self.player = player
        if player is not None:
            player.subscribe(lambda _np: self._dirty.set() if self.player is player else None)
        self._dirty.set()

    def start(self) -> None:
        """Start pushing changes (call with a running loop)."""
        self._task = asyncio.create_task(self._push_loop())

    async def stop(self) -> None:
        """Stop pushing."""
        tasks = [*self._tasks, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def forget(self, connection: Any) -> None:
        """Drop what a disconnected car registered."""
        self._links.pop(connection.handle, None)

    def reset(self) -> None:
        """Forget every car's registrations (AMS was withdrawn: cars register again)."""
        self._links.clear()

    def supported_commands(self) -> frozenset[RemoteCommand]:
        """The remote commands the player offers now.

        No player or an empty playlist: none (nothing to play). One track: play, pause,
        toggle and previous (which restarts the track) but no next. More: all five.
        """
        tracks = () if self.player is None else self.player.state.tracks
        if not tracks:
            return frozenset()
        if len(tracks) == 1:
            return frozenset(_ACTIONS) - {RemoteCommand.NEXT_TRACK}
        return frozenset(_ACTIONS)

    def values(self) -> dict[tuple[int, int], str]:
        """The current value of every attribute."""
        if self.player is None:
            return entity_values(None, "", 0, 0)
        np = self.player.now_playing()
        state = self.player.state
        return entity_values(np, self.player_name, state.index, len(state.tracks))

    def _link(self, connection: Any) -> _Link:
        return self._links.setdefault(connection.handle, _Link(connection))

    # -- Remote Command -------------------------------------------------------------
    def _on_subscription(self, bearer: Any, notify: bool, _indicate: bool) -> None:
        connection = bearer.connection if att.is_enhanced_bearer(bearer) else bearer
        if notify:
            value = encode_remote_commands(self.supported_commands())
            self._link(connection).commands = value
            task = asyncio.create_task(self._notify(connection, self.remote_command, value))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_remote_command(self, connection: Any, value: bytes) -> None:
        try:
            command = decode_remote_command(bytes(value))
        except AppleDataError as exc:
            log.info("AMS: bad remote command %s: %s", bytes(value).hex(), exc)
            raise att.ATT_Error(AMS_ERROR_INVALID_COMMAND) from None
        self._emit({"event": "remote-command", "command": command.name.lower()})
        if command not in self.supported_commands():
            log.info("AMS: remote command %s is not offered; ignored", command.name)
            raise att.ATT_Error(AMS_ERROR_INVALID_STATE)
        log.info("AMS: remote command %s", command.name)
        self.player.command(MediaCommand(action=_ACTIONS[command]))  # type: ignore[arg-type]

    # -- Entity Update ----------------------------------------------------------------
    def _on_register(self, connection: Any, value: bytes) -> None:
        try:
            entity, attributes = decode_register(bytes(value))
        except AppleDataError as exc:
            log.info("AMS: bad entity update registration %s: %s", bytes(value).hex(), exc)
            raise att.ATT_Error(AMS_ERROR_INVALID_COMMAND) from None
        link = self._link(connection)
        link.registered[entity] = attributes
        for a in attributes:
            link.sent.pop((entity, a), None)  # registering asks for the current values
        log.info("AMS: car registered entity %d attributes %s", entity, list(attributes))
        self._dirty.set()

    async def _push_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            values = self.values()
            for link in list(self._links.values()):
                await self._push(link, values)

    async def _push(self, link: _Link, values: dict[tuple[int, int], str]) -> None:
        commands = encode_remote_commands(self.supported_commands())
        if link.commands is not None and link.commands != commands:
            link.commands = commands
            await self._notify(link.connection, self.remote_command, commands)
        mtu = int(link.connection.att_mtu)
        for entity, attributes in list(link.registered.items()):
            for a in attributes:
                key = (entity, a)
                if link.sent.get(key) == values[key]:
                    continue
                link.sent[key] = values[key]
                data = encode_entity_update(entity, a, values[key], max_size=mtu - 3)
                await self._notify(link.connection, self.entity_update, data)

    async def _notify(self, connection: Any, characteristic: Any, value: bytes) -> None:
        try:
            await self._device.notify_subscriber(connection, characteristic, value)
        except Exception as exc:  # the car may be gone: nothing to push to
            log.debug("AMS: notification not sent: %s", exc)

    # -- Entity Attribute -----------------------------------------------------------
    def _on_attribute_request(self, connection: Any, value: bytes) -> None:
        try:
            self._link(connection).attribute = decode_entity_attribute_request(bytes(value))
        except AppleDataError as exc:
            log.info("AMS: bad entity attribute request %s: %s", bytes(value).hex(), exc)
            raise att.ATT_Error(AMS_ERROR_INVALID_COMMAND) from None

    def _read_attribute(self, connection: Any) -> bytes:
        wanted = self._link(connection).attribute
        if wanted is None:
            raise att.ATT_Error(AMS_ERROR_ABSENT_ATTRIBUTE)
        return cut_utf8(utf8(self.values()[wanted]), 512)
