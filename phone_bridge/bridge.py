"""``phone-bridge run``: stay connected to a car, keep it in sync, obey its commands.

One coroutine per connection consumes the link's events (so nothing is read twice): it
runs the opening contacts sync, then handles media commands and artwork requests, and
re-syncs whenever the vCard file changes. A file version that is refused (cut short, no
readable card, or a sync that would delete more than half of the car's copy without
``--allow-deletes``) is logged as one line and sends nothing; the bridge keeps running and
syncs the next good version. With a ``ContactFeed`` (CardDAV) instead of a file, the feed
polls on its own and the loop wakes when it has a new version. The simulated player pushes
now-playing state on its own. When the car goes away the bridge reconnects with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from phone_bridge.client import CarLink, LinkClosed
from phone_bridge.connect import CarNotFound, ConnectOptions, resolve
from phone_bridge.engine import (
    EXIT_NOT_PAIRED,
    EXIT_PAIRING,
    BridgeError,
    Contacts,
    backoff_delays,
    do_pair,
    explain,
    load_contacts,
    open_session,
    sync_once,
)
from phone_bridge.errors import TooManyDeletes
from phone_bridge.player import MediaPlayer
from phone_bridge.state import PairedCar, PhoneState
from protocol.connection import ConnectionEvent, MessageReceived
from protocol.errors import ProtocolError
from protocol.media import ArtworkRequest, MediaCommand, NowPlaying
from protocol.messages import Message
from protocol.sync import DigestCache, SyncSummary
from shell.errors import TransportError

__all__ = ["Bridge", "BridgeOptions"]

log = logging.getLogger("phone_bridge")
WATCH_SECONDS = 1.0


class ContactFeed(Protocol):
    """A contact source that polls by itself (``phone_bridge.carddav.CardDavFeed``)."""

    changed: asyncio.Event  # set when ``take`` has a new version

    def latest(self) -> Contacts: ...

    def take(self) -> Contacts | None: ...

    async def run(self) -> None: ...


@dataclass
class BridgeOptions:
    car: str | None
    contacts: Path | None  # None: the contacts come from ``feed``
    media: Path | None
    name: str
    auto_confirm: bool = False
    connect: ConnectOptions | None = None
    allow_deletes: bool = False  # let a sync delete over half of the car's copy
    feed: ContactFeed | None = None  # instead of the file


class Bridge:
    """The long-running phone side."""

    def __init__(
        self,
        state: PhoneState,
        options: BridgeOptions,
        player: MediaPlayer | None,
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        self.state = state
        self.opts = options
        self.connect = options.connect or ConnectOptions()
        self.player = player
        self.emit = emit
        self._link: CarLink | None = None
        self._connected = False  # the current attempt got a session (resets the backoff)
        self._sends: set[asyncio.Task[None]] = set()
        self._digests = DigestCache()
        if player is not None:
            player.subscribe(self._push_now_playing)

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns only on a fatal error."""
        delays = backoff_delays()
        attempt = 0
        while True:
            self._connected = False
            try:
                await self._connect_and_serve()
            # LinkClosed and CarNotFound are BridgeErrors too: this clause comes first.
            except (TransportError, LinkClosed, TimeoutError, CarNotFound, ProtocolError) as exc:
                log.warning("connection lost: %s", explain(exc))
            except BridgeError as exc:
                if exc.code in (EXIT_PAIRING, EXIT_NOT_PAIRED) and not self.opts.auto_confirm:
                    raise
                log.warning("%s", exc)
            # A link that came up resets the backoff: the next outage starts short again.
            attempt = 0 if self._connected else attempt
            delay = delays[min(attempt, len(delays) - 1)]
            attempt += 1
            log.info("reconnecting in %.1f s", delay)
            self.emit({"event": "disconnected", "retry_in": round(delay, 2)})
            await asyncio.sleep(delay)

    async def _connect_and_serve(self) -> None:
        target = await resolve(self.opts.car, self.state, self.connect)
        if target.paired is None:
            if not self.opts.auto_confirm:
                raise BridgeError(
                    f"not paired with {target.label}; run 'pair' first", EXIT_NOT_PAIRED
                )
            car, link = await do_pair(
                self.state, target, self.connect, self.opts.name, self._auto_accept
            )
            self.emit({"event": "paired", "car": car.id, "name": car.name})
        else:
            car = target.paired
            try:
                link = await open_session(self.state, target, self.connect, self.opts.name)
            except ProtocolError as exc:
                err = explain(exc)
                if err.code == EXIT_NOT_PAIRED and self.opts.auto_confirm:
                    # The car forgot us (unpaired on the car): pair again in the lab.
                    self.state.forget_car(car.id)
                raise err from exc
        self._link, self._connected = link, True
        log.info("connected to %r over %s", car.name, link.transport.name)
        self.emit({"event": "connected", "car": car.id, "transport": link.transport.name})
        try:
            await self._serve(link, car)
        finally:
            self._link = None
            await link.aclose()

    async def _auto_accept(self, code: str) -> bool:
        log.warning("AUTO-CONFIRM (emulation only): accepting pairing code %s", code)
        return True

    async def _serve(self, link: CarLink, car: PairedCar) -> None:
        feed = self.opts.feed
        contacts, mtime = (self._fed(feed.latest()), 0.0) if feed else self._load()
        await self._sync(link, car, contacts, first=True)
        if self.player is not None:
            await self._send_now_playing(link, self.player.now_playing())
        while True:
            ev = await self._next_event(link)
            if isinstance(ev, MessageReceived):
                await self._on_message(ev.message)
            if feed is not None:
                fresh = feed.take()
                if fresh is not None:
                    await self._sync(link, car, self._fed(fresh), first=False)
                continue
            assert self.opts.contacts is not None
            new_mtime = _mtime(self.opts.contacts)
            if new_mtime != mtime:
                mtime = new_mtime
                try:
                    contacts, mtime = self._load()
                except BridgeError as exc:
                    # Keep the car's copy as it is; the next good save syncs again.
                    log.error("%s; the car keeps its current contacts", exc)
                    continue
                log.info("%s changed; syncing", self.opts.contacts)
                await self._sync(link, car, contacts, first=False)

    async def _next_event(self, link: CarLink) -> ConnectionEvent | None:
        """The next event within WATCH_SECONDS; None on a timeout or a new feed version."""
        feed = self.opts.feed
        if feed is None:
            try:
                return await link.next_event(WATCH_SECONDS)
            except TimeoutError:
                return None
        # Cancelling a wait on the link's queue loses no event, so racing the feed is safe.
        get = asyncio.ensure_future(link.next_event(WATCH_SECONDS))
        fed = asyncio.ensure_future(feed.changed.wait())
        try:
            done, _ = await asyncio.wait({get, fed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (get, fed):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                        await task
        if get not in done:
            return None
        try:
            return get.result()
        except TimeoutError:
            return None

    def _fed(self, contacts: Contacts) -> Contacts:
        contacts.cache = self._digests  # unchanged cards are not encoded again
        return contacts

    def _load(self) -> tuple[Contacts, float]:
        assert self.opts.contacts is not None
        mtime = _mtime(self.opts.contacts)
        contacts = load_contacts(self.opts.contacts, allow_empty=self.opts.allow_deletes)
        contacts.cache = self._digests  # unchanged cards are not encoded again
        for err in contacts.errors:
            log.warning("%s: skipped card at %s", self.opts.contacts, err)
        for err in contacts.warnings:
            log.warning("%s: skipped %s (card kept)", self.opts.contacts, err)
        return contacts, mtime

    async def _sync(
        self, link: CarLink, car: PairedCar, contacts: Contacts, *, first: bool
    ) -> None:
        start = time.perf_counter()
        try:
            summary = await sync_once(
                self.state,
                link,
                car,
                contacts,
                first=first,
                other=self._on_message,
                allow_deletes=self.opts.allow_deletes,
            )
        except TooManyDeletes as exc:
            # Nothing was sent and the session is fine: wait for the next good save.
            source = self.opts.contacts or "CardDAV"
            log.error("%s: %s; the car keeps its current contacts", source, exc)
            self.emit({"event": "refused", "car": car.id, "error": str(exc), "exit_code": exc.code})
            return
        elapsed = time.perf_counter() - start
        log.info("sync complete: %s in %.2f s", _describe(summary, len(contacts.errors)), elapsed)
        self.emit(
            {
                "event": "synced",
                "car": car.id,
                "added": summary.added,
                "changed": summary.changed,
                "deleted": summary.deleted,
                "unchanged": summary.unchanged,
                "skipped": len(contacts.errors),
                "skipped_lines": len(contacts.warnings),
                "seconds": round(elapsed, 3),
            }
        )

    async def _on_message(self, msg: Message) -> None:
        link = self._link
        if link is None:
            return
        if isinstance(msg, MediaCommand) and self.player is not None:
            try:
                self.player.command(msg)  # the listener pushes the new state
            except ProtocolError as exc:
                log.warning("ignored bad command from the car: %s", exc)
        elif isinstance(msg, ArtworkRequest) and self.player is not None:
            art = self.player.artwork.get(msg.hash)
            if art is not None:
                await link.send(art)

    def _push_now_playing(self, np: NowPlaying) -> None:
        link = self._link
        if link is None:
            return
        task = asyncio.get_running_loop().create_task(self._send_now_playing(link, np))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send_now_playing(self, link: CarLink, np: NowPlaying) -> None:
        try:
            await link.send(np)
        except (TransportError, LinkClosed, ProtocolError) as exc:
            log.debug("now-playing not sent: %s", exc)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def _describe(s: SyncSummary, skipped: int) -> str:
    return (
        f"{s.added} added, {s.changed} changed, {s.deleted} deleted, "
        f"{s.unchanged} unchanged, {skipped} skipped, {s.photos_sent} photos"
    )
