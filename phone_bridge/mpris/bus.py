"""The one adapter to D-Bus: a session-bus connection that speaks MPRIS, on dbus-fast.

Low-level messages rather than proxy objects: a proxy needs the player's introspection
data, which some players get wrong, while the MPRIS names and signatures are fixed by the
spec. Every call has a timeout (a hung player must not hang us) and every reply is
unpacked from dbus-fast's ``Variant``s into plain values here, so ``model`` never sees one.

This module imports dbus_fast at its top: it is only imported when ``--media mpris:`` is
given (``phone_bridge.mpris.open_player`` imports the player lazily).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from phone_bridge.mpris.model import BUS_PREFIX

__all__ = [
    "CALL_TIMEOUT",
    "MPRIS_PATH",
    "PLAYER_IFACE",
    "BusUnavailable",
    "CallFailed",
    "MprisBus",
    "Signal",
    "plain",
]

MPRIS_PATH = "/org/mpris/MediaPlayer2"
PLAYER_IFACE = "org.mpris.MediaPlayer2.Player"
_DBUS = "org.freedesktop.DBus"
_PROPS = "org.freedesktop.DBus.Properties"
CALL_TIMEOUT = 2.0  # seconds for any one call to the daemon or a player
# Only the signals we follow cross the socket: player names coming and going, the
# players' property changes and seeks.
_MATCH_RULES = (
    f"type='signal',sender='{_DBUS}',interface='{_DBUS}',member='NameOwnerChanged',"
    f"arg0namespace='{BUS_PREFIX.rstrip('.')}'",
    f"type='signal',interface='{_PROPS}',member='PropertiesChanged',path='{MPRIS_PATH}',"
    f"arg0='{PLAYER_IFACE}'",
    f"type='signal',interface='{PLAYER_IFACE}',member='Seeked',path='{MPRIS_PATH}'",
)


class BusUnavailable(Exception):
    """No session bus: the address is unset, or nothing answers at it."""


class CallFailed(Exception):
    """A call returned an error, timed out, or the connection went."""


# (sender, member, plain body): NameOwnerChanged, PropertiesChanged or Seeked.
Signal = tuple[str, str, list[Any]]


class MprisBus:
    """One connection to the session bus.

    Use ``await MprisBus.connect(address)``; ``on_signal`` receives every followed signal.
    """

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        self._handler: Callable[[Signal], None] | None = None

    @classmethod
    async def connect(cls, address: str | None = None) -> MprisBus:
        """Connect to ``address`` (default ``$DBUS_SESSION_BUS_ADDRESS``).

        Raises:
            BusUnavailable: no address, or the connection or authentication failed.
        """
        address = address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not address:
            raise BusUnavailable("DBUS_SESSION_BUS_ADDRESS is not set")
        try:
            bus = MessageBus(bus_address=address)
            await asyncio.wait_for(bus.connect(), CALL_TIMEOUT)
        except (OSError, TimeoutError, DBusError, ValueError, EOFError) as exc:
            detail = str(exc) or type(exc).__name__
            raise BusUnavailable(f"cannot connect to {address}: {detail}") from exc
        except Exception as exc:  # dbus-fast's auth and address errors have no common base
            raise BusUnavailable(f"cannot connect to {address}: {exc}") from exc
        return cls(bus)

    async def follow(self, on_signal: Callable[[Signal], None]) -> None:
        """Subscribe to the MPRIS signals and hand each to ``on_signal``.

        Raises:
            CallFailed: the daemon refused a match rule.
        """
        self._handler = on_signal
        self._bus.add_message_handler(self._on_message)
        for rule in _MATCH_RULES:
            await self._call(_DBUS, "/org/freedesktop/DBus", _DBUS, "AddMatch", "s", [rule])

    def _on_message(self, msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL or self._handler is None:
            return
        if msg.member in ("NameOwnerChanged", "PropertiesChanged", "Seeked"):
            self._handler((msg.sender or "", msg.member, [plain(v) for v in msg.body]))

    async def players(self) -> dict[str, str]:
        """Every MPRIS player now on the bus, as {bus name: unique owner name}."""
        reply = await self._call(_DBUS, "/org/freedesktop/DBus", _DBUS, "ListNames")
        found: dict[str, str] = {}
        for name in reply[0] if reply else []:
            if isinstance(name, str) and name.startswith(BUS_PREFIX):
                try:
                    owner = await self._call(
                        _DBUS, "/org/freedesktop/DBus", _DBUS, "GetNameOwner", "s", [name]
                    )
                except CallFailed:
                    continue  # it left between the two calls
                found[name] = str(owner[0])
        return found

    async def properties(self, owner: str) -> dict[str, Any]:
        """``GetAll`` of the player interface, as plain values."""
        reply = await self._call(owner, MPRIS_PATH, _PROPS, "GetAll", "s", [PLAYER_IFACE])
        props = reply[0] if reply else {}
        return props if isinstance(props, dict) else {}

    async def position(self, owner: str) -> int:
        """The player's ``Position`` in µs (never signalled, so read when needed)."""
        reply = await self._call(owner, MPRIS_PATH, _PROPS, "Get", "ss", [PLAYER_IFACE, "Position"])
        value = reply[0] if reply else 0
        return int(value) if isinstance(value, int | float) else 0

    async def call_player(self, owner: str, member: str, signature: str, body: list[Any]) -> None:
        """Call a method of ``org.mpris.MediaPlayer2.Player``.

        Raises:
            CallFailed: the player answered with an error, or not in time.
        """
        await self._call(owner, MPRIS_PATH, PLAYER_IFACE, member, signature, body)

    async def _call(
        self,
        dest: str,
        path: str,
        iface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
    ) -> list[Any]:
        msg = Message(
            destination=dest,
            path=path,
            interface=iface,
            member=member,
            signature=signature,
            body=body or [],
        )
        try:
            reply = await asyncio.wait_for(self._bus.call(msg), CALL_TIMEOUT)
        except TimeoutError as exc:
            raise CallFailed(f"{member}: no answer in {CALL_TIMEOUT:.0f} s") from exc
        except Exception as exc:  # the connection went: dbus-fast raises assorted errors
            raise CallFailed(f"{member}: {type(exc).__name__}: {exc}") from exc
        if reply is None:
            raise CallFailed(f"{member}: no reply")
        if reply.message_type is MessageType.ERROR:
            detail = reply.body[0] if reply.body else ""
            raise CallFailed(f"{member}: {reply.error_name} {detail}".rstrip())
        return [plain(v) for v in reply.body]

    @property
    def connected(self) -> bool:
        return bool(self._bus.connected)

    async def closed(self) -> None:
        """Return when the connection is gone (the daemon stopped, or ``close``)."""
        try:
            await self._bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        except Exception:  # an unclean end is still an end: the caller reconnects
            return

    def close(self) -> None:
        """Disconnect (idempotent)."""
        if self._bus.connected:
            self._bus.disconnect()


def plain(value: Any) -> Any:
    """Unpack dbus-fast's ``Variant``s (at any depth) into plain Python values."""
    if isinstance(value, Variant):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
