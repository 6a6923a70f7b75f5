"""``--media mpris:[NAME]``: the bridge's media player, following a real MPRIS player.

It offers what ``phone_bridge.player.Player`` offers the bridge (``artwork``, ``subscribe``,
``now_playing``, ``command``, ``run``), so the car gets the same ``NowPlaying`` and
``Artwork`` messages whichever player the phone runs.

``run`` keeps one session-bus connection. It follows every MPRIS player (names coming and
going: ``NameOwnerChanged``; their changes: ``PropertiesChanged`` and ``Seeked``), picks the
active one (``model.pick_active``) and, a moment after any change (``DEBOUNCE`` coalesces a
burst: a new track often comes as Metadata, then PlaybackStatus), re-reads its position and
tells the listeners. While a player plays, its position is also re-read every
``POLL_SECONDS``, since MPRIS never signals a position that merely moves (or a seek that a
player forgets to signal); an unchanged state is not sent again.

No bus (unset, or nothing there) and no player are not errors: one log line says so, the
car is told nothing plays, and ``run`` waits (it retries the bus every ``RETRY_SECONDS``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import msgspec

from phone_bridge.mpris.artwork import ArtCache
from phone_bridge.mpris.bus import BusUnavailable, CallFailed, MprisBus, Signal
from phone_bridge.mpris.model import (
    BUS_PREFIX,
    PlayerView,
    command_call,
    matches,
    now_playing_of,
    pick_active,
)
from protocol.media import Artwork, MediaCommand, NowPlaying, position_at, validate_command

__all__ = ["DEBOUNCE", "POLL_SECONDS", "RETRY_SECONDS", "MprisPlayer"]

log = logging.getLogger("phone_bridge.mpris")

DEBOUNCE = 0.02  # seconds: one push for a burst of signals
POLL_SECONDS = 5.0
RETRY_SECONDS = 5.0
DRIFT_MS = 1000  # a position this far from the car's extrapolation is sent again


class MprisPlayer:
    """The active MPRIS player (or ``org.mpris.MediaPlayer2.NAME``) as the bridge's player.

    Args:
        wanted: ``NAME`` (or one of its instances), or None for any player.
        address: the bus; default ``$DBUS_SESSION_BUS_ADDRESS``.
        retry: seconds between attempts to reach the bus.
    """

    def __init__(
        self, wanted: str | None = None, address: str | None = None, retry: float = RETRY_SECONDS
    ) -> None:
        self.wanted = wanted
        self.address = address
        self.retry = retry
        self._art = ArtCache()
        self._views: dict[str, PlayerView] = {}  # by bus name
        self._bus: MprisBus | None = None
        self._listeners: list[Callable[[NowPlaying], None]] = []
        self._last: tuple[NowPlaying, float] | None = None  # last sent, monotonic time
        self._following: str | None = ""  # "" = nothing logged yet
        self._said = ""
        self._again = False
        self._live = False  # following (run), not a one-off read (snapshot)
        self._push_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- what the bridge uses ------------------------------------------------------------
    @property
    def artwork(self) -> Mapping[bytes, Artwork]:
        """The covers the car may ask for, by SHA-256."""
        return self._art.images

    @property
    def label(self) -> str:
        return f"mpris:{self.wanted or ''}"

    def subscribe(self, listener: Callable[[NowPlaying], None]) -> None:
        """Call ``listener`` with the new now-playing state after every change."""
        self._listeners.append(listener)

    def now_playing(self) -> NowPlaying:
        """The followed player now (stopped and untitled when there is none)."""
        view = self._current()
        url = view.art_url if view is not None else ""
        return now_playing_of(view, self._art.known(url) or b"" if url else b"", time.monotonic())

    def command(self, cmd: MediaCommand) -> NowPlaying:
        """Pass a car command on to the player, as an MPRIS call made in the background.

        Returns:
            The state before the command: the player's own signals carry the change.

        Raises:
            MessageError: an invalid command (as ``Player.command``).
        """
        validate_command(cmd)
        self._spawn(self._command(cmd))
        return self.now_playing()

    async def run(self) -> None:
        """Follow the players until cancelled; reconnect when the bus goes away."""
        try:
            await self._run()
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                bus = await MprisBus.connect(self.address)
            except BusUnavailable as exc:
                self._say(_no_bus(exc))  # once: the retries are silent
                await asyncio.sleep(self.retry)
                continue
            try:
                await self._follow(bus)
            except CallFailed as exc:
                self._say(f"MPRIS: the session bus failed ({exc}); reconnecting")
            finally:
                bus.close()
                self._bus = None
                self._views.clear()
                self._changed()
            self._say("MPRIS: the session bus went away; reconnecting")
            await asyncio.sleep(self.retry)

    async def snapshot(self, timeout: float = 1.0) -> NowPlaying:
        """Read the players once (``sync``: one now-playing, no following).

        Returns:
            What ``now_playing`` returns afterwards; nothing plays if the bus, the players
            or the artwork take longer than ``timeout`` seconds.
        """
        try:
            await asyncio.wait_for(self._read_once(), timeout)
        except BusUnavailable as exc:
            self._say(_no_bus(exc))  # the same line as ``run``'s, so ``run`` says it once
        except (CallFailed, TimeoutError) as exc:
            self._say(
                f"MPRIS: no player read ({exc or 'timed out'}); the car is told nothing plays"
            )
        finally:
            if self._bus is not None:
                self._bus.close()
                self._bus = None
        return self.now_playing()

    # -- following -----------------------------------------------------------------------
    async def _read_once(self) -> None:
        self._bus = await MprisBus.connect(self.address)
        for name, owner in (await self._bus.players()).items():
            await self._add(name, owner)
        view = self._current()
        if view is not None and view.art_url:
            await self._art.load(view.art_url)
        self._log_following(view)

    async def _follow(self, bus: MprisBus) -> None:
        await bus.follow(self._on_signal)
        self._bus, self._live = bus, True
        self._say("MPRIS: connected to the session bus")
        for name, owner in (await bus.players()).items():
            await self._add(name, owner)
        self._changed()
        poller = self._spawn(self._poll())
        try:
            await bus.closed()
        finally:
            poller.cancel()

    async def _add(self, name: str, owner: str) -> None:
        """Start following a player that is (or just came) on the bus."""
        if not matches(name, self.wanted) or self._bus is None:
            return
        try:
            props = await self._bus.properties(owner)
        except CallFailed as exc:
            log.warning("MPRIS: cannot read %s: %s", name, exc)
            return
        now = time.monotonic()
        view = PlayerView(bus_name=name, owner=owner, read_at=now)
        view.update(props, now)
        self._views[name] = view
        # A snapshot's players are found again by ``run``: say it once, there.
        (log.info if self._live else log.debug)("MPRIS: found %s (%s)", name, view.status)
        self._changed()

    def _on_signal(self, sig: Signal) -> None:
        sender, member, body = sig
        now = time.monotonic()
        if member == "NameOwnerChanged" and len(body) == 3:
            name, old, new = (str(x) for x in body)
            gone = self._views.get(name)
            if old and gone is not None and gone.owner == old:
                del self._views[name]
                log.info("MPRIS: %s left the bus", name)
                self._changed()
            if new:
                self._spawn(self._add(name, new))
            return
        view = next((v for v in self._views.values() if v.owner == sender), None)
        if view is None:
            return  # a player we do not follow (or not read yet: _add reads it whole)
        if member == "PropertiesChanged" and len(body) == 3 and isinstance(body[1], dict):
            view.update(body[1], now)
            if body[2]:  # invalidated: the player wants them read
                self._spawn(self._refresh(view))
        elif member == "Seeked" and body and isinstance(body[0], int):
            view.seek(body[0], now)
            view.changed_at = now
        self._changed()

    async def _refresh(self, view: PlayerView) -> None:
        if self._bus is None:
            return
        try:
            view.update(await self._bus.properties(view.owner), time.monotonic())
        except CallFailed as exc:
            log.debug("MPRIS: cannot read %s: %s", view.bus_name, exc)
        self._changed()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            view = self._current()
            if view is not None and view.status == "Playing":
                self._changed()

    async def _command(self, cmd: MediaCommand) -> None:
        view, bus = self._current(), self._bus
        if view is None or bus is None:
            log.warning("MPRIS: no player to take %r from the car", cmd.action)
            return
        member, signature, body = command_call(cmd.action, cmd.position_ms, view, time.monotonic())
        try:
            await bus.call_player(view.owner, member, signature, body)
        except CallFailed as exc:
            log.warning("MPRIS: %s did not take %s: %s", view.bus_name, member, exc)
        else:
            log.info("MPRIS: car %s -> %s %s", cmd.action, view.bus_name, member)
        # A player may obey without a signal (or late): read back what it did.
        await self._refresh(view)

    # -- telling the car -----------------------------------------------------------------
    def _current(self) -> PlayerView | None:
        return pick_active(self._views.values(), self.wanted)

    def _changed(self) -> None:
        """Something changed: push once the burst is over (one task at a time)."""
        self._again = True
        if self._push_task is None or self._push_task.done():
            self._push_task = self._spawn(self._push())

    async def _push(self) -> None:
        while self._again:
            self._again = False
            await asyncio.sleep(DEBOUNCE)
            view = self._current()
            self._log_following(view)
            if view is not None and self._bus is not None:
                try:
                    view.seek(await self._bus.position(view.owner), time.monotonic())
                except CallFailed as exc:
                    log.debug("MPRIS: no position from %s: %s", view.bus_name, exc)
            art = await self._artwork(view)
            self._notify(now_playing_of(view, art, time.monotonic()))

    async def _artwork(self, view: PlayerView | None) -> bytes:
        """The cover's hash if known; a local file is read now, a URL fetched meanwhile."""
        url = view.art_url if view is not None else ""
        if not url:
            return b""
        known = self._art.known(url)
        if known is not None:
            return known
        if url.lower().startswith("file:"):
            return await self._art.load(url)

        async def fetch() -> None:
            await self._art.load(url)
            self._changed()  # the same track again, now with its cover

        self._spawn(fetch())
        return b""

    def _notify(self, np: NowPlaying) -> None:
        now = time.monotonic()
        if self._last is not None and _same(self._last, np, now):
            return
        self._last = (np, now)
        for listener in self._listeners:
            listener(np)

    # -- housekeeping --------------------------------------------------------------------
    def _log_following(self, view: PlayerView | None) -> None:
        name = view.bus_name if view is not None else None
        if name == self._following:
            return
        self._following = name
        if name is None:
            which = f"{BUS_PREFIX}{self.wanted}" if self.wanted else "player"
            log.warning("MPRIS: no %s on the session bus; waiting for one", which)
        else:
            log.info("MPRIS: following %s", name)

    def _say(self, line: str) -> None:
        """Log a bus state line once (retries repeat it silently)."""
        if line != self._said:
            self._said = line
            (log.info if "connected" in line else log.warning)("%s", line)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _no_bus(exc: BusUnavailable) -> str:
    return f"MPRIS: no D-Bus session bus ({exc}); the car shows nothing playing until there is one"


def _same(last: tuple[NowPlaying, float], np: NowPlaying, now: float) -> bool:
    """Whether ``np`` tells the car nothing new: same fields, position where expected."""
    old, at = last
    if msgspec.structs.replace(old, position_ms=np.position_ms) != np:
        return False
    expected = position_at(old, int(at * 1000), int(now * 1000))
    return abs(expected - np.position_ms) < DRIFT_MS
