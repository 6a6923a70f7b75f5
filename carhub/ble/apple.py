"""One LE connection that may be an Apple-profile phone (an iPhone with no CarHub app).

Theory of operation: the iPhone is the central and the GATT *server*; the car stays the
peripheral and is the GATT client. On every connection the car looks for AMS and ANCS on
the peer (``discover_service_and_create_proxy``, with timeouts; never
``discover_services()`` first, which broke proxy creation in Bumble 0.0.236). A peer with
neither is left to the CarHub path (``carhub.ble.server``: it must subscribe to
channel_out). With one, the car:

1. subscribes to the peer's Service Changed (best effort), to follow AMS/ANCS that come
   and go;
2. makes one harmless ATT request of a profile (a Data Source or Entity Update CCCD
   write). Only when that is refused with Insufficient Authentication (0x05) or
   Insufficient Encryption (0x0F) does it send an SMP Security Request
   (``request_pairing()``), as Apple's accessory guidelines require. A bonded phone then
   encrypts with its stored key (no code); a new one pairs by numeric comparison through
   the dashboard (``carhub.ble.bonds``). A refusal, a failure or a timeout is reported
   with ``apple_pairing_failed`` and the link is dropped; nothing is stored;
3. on the encrypted, bonded link registers itself with ``apple_connected`` as the phone's
   ``AppleHandle``, starts ``AmsLink`` and ``AncsLink``, and leaves the intake gate.

The phone id is ``apple_phone_id`` of the identity address, which Bumble resolves from the
private address through the IRK on every reconnect; during the first pairing only the
private address is known, and the pairing request shows that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from bumble.att import ATT_Error, ErrorCode
from bumble.device import Connection, Peer
from bumble.gatt import (
    GATT_DEVICE_NAME_CHARACTERISTIC,
    GATT_GENERIC_ATTRIBUTE_SERVICE,
    GATT_SERVICE_CHANGED_CHARACTERISTIC,
)
from bumble.keys import KeyStore
from bumble.profiles.ams import AmsProxy

from carhub.apple import AppleEvents, AppleLinkError, Profile, apple_phone_id
from carhub.ble.ams_client import ATT_TIMEOUT_S, AmsLink, ams_chars, att
from carhub.ble.ancs_client import AncsLink, AncsProxy
from carhub.ble.bonds import DECISION_TIMEOUT_S
from carhub.ble.link import BleLink
from carhub.ble.rediscovery import SETTLE_S, ChangedRange, forget

__all__ = ["DISCOVERY_TIMEOUT_S", "SECURITY_TIMEOUT_S", "ApplePhone"]

log = logging.getLogger("carhub.ble.apple")

# Service discovery is a handful of ATT round trips; a peer slower than this is not served.
DISCOVERY_TIMEOUT_S = 5.0
# From the Security Request to an encrypted, bonded link: the car user's answer plus the
# SMP exchange and key distribution.
SECURITY_TIMEOUT_S = DECISION_TIMEOUT_S + 10.0
_NEEDS_SECURITY = (ErrorCode.INSUFFICIENT_AUTHENTICATION, ErrorCode.INSUFFICIENT_ENCRYPTION)
_MAX_NAME = 64
T = TypeVar("T")


class ApplePhone:
    """One connection, classified; if it is an Apple-profile phone, its ``AppleHandle``.

    Args:
        connection: the LE connection (the car is peripheral).
        link: the connection's ``BleLink`` (its gate ticket, its disconnect).
        events: the engine.
        keystore: the car's bonds.
        app_names: app display names by phone id, kept across reconnects.
        spawn: runs a task its owner (the server) cancels on stop.
    """

    transport_name = "ble"

    def __init__(
        self,
        connection: Connection,
        link: BleLink,
        events: AppleEvents,
        keystore: KeyStore,
        app_names: dict[str, dict[str, str]],
        spawn: Callable[[Awaitable[None]], asyncio.Task[None]],
    ) -> None:
        self._server_spawn = spawn
        self.connection = connection
        self.link = link
        self._events = events
        self._keystore = keystore
        self._app_names = app_names
        self.profiles: tuple[Profile, ...] = ()
        self.phone_name = "iPhone"
        self.refusal = ""
        self.compared = False
        self.up = False
        self._peer = Peer(connection)
        self._ams_proxy: AmsProxy | None = None
        self._ancs_proxy: AncsProxy | None = None
        self._ams: AmsLink | None = None
        self._ancs: AncsLink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._classified: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._security: asyncio.Queue[str] = asyncio.Queue()
        self._pairing_started = False
        self._rediscovery = asyncio.Lock()
        self._changed = ChangedRange()
        self.started = asyncio.Event()
        self._watch(connection)

    @property
    def phone_id(self) -> str:
        """The phone's id: its identity address once known, else its connection address."""
        return apple_phone_id(str(self.connection.peer_address))

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Classify the connection and, for an Apple-profile phone, serve it (a task)."""
        self.spawn(self._run())

    async def is_apple(self) -> bool:
        """Wait until the connection is classified: whether it offers AMS or ANCS."""
        return await asyncio.shield(self._classified)

    def paired_by_comparison(self) -> None:
        """The car user accepted this link's numeric-comparison code."""
        self.compared = True

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run ``coro`` in a task that ends with this connection."""
        task = self._server_spawn(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def gone(self) -> None:
        """The connection ended (or the radio went away): stop everything, keep the bond."""
        if not self._classified.done():
            self._classified.set_result(False)
        self._stop_profiles()
        for task in list(self._tasks):
            task.cancel()
        if self.up:
            self.up = False
            log.info("BLE Apple phone %s disconnected", self.phone_id)
            self._events.apple_disconnected(self.phone_id, self)

    async def _run(self) -> None:
        """Classify, secure and serve; any failure ends this connection only."""
        try:
            await self._classify_and_serve()
        except Exception:  # a bug, not the phone's bytes: end this link, keep the car
            log.exception("BLE phone %s: Apple-profile handling failed", self.phone_id)
            await self.link.close()

    async def _classify_and_serve(self) -> None:
        found = False
        try:
            found = await self._discover()
        finally:
            if not self._classified.done():
                self._classified.set_result(found)
        if not found:
            return
        await self._watch_service_changed()
        if not await self._secure():
            await self.link.close()
            return
        await self._serve()

    async def _serve(self) -> None:
        """Register with the engine first (it drops values of phones it does not know), then
        start AMS/ANCS, which notify at once; ``started`` is set when both are running."""
        found: tuple[tuple[Profile, object], ...] = (
            ("ams", self._ams_proxy),
            ("ancs", self._ancs_proxy),
        )
        self.profiles = tuple(p for p, proxy in found if proxy is not None)
        self._events.apple_connected(self.phone_id, self)
        self.up = True  # from here on, the end of the link is reported as a disconnect
        announced = self.profiles
        await self._start_profiles()
        if not self.profiles:
            log.warning(
                "BLE Apple phone %s: neither AMS nor ANCS started; disconnecting", self.phone_id
            )
            await self.link.close()
            return
        log.info("BLE Apple phone %s up (%s)", self.phone_id, ", ".join(self.profiles))
        if self.profiles != announced:  # one of them did not start
            self._events.apple_connected(self.phone_id, self)
        self.link.leave()
        self.started.set()

    # -- discovery -----------------------------------------------------------------------
    async def _discover(self) -> bool:
        """Find AMS and ANCS on the peer (each bounded); True if either is there."""
        self._ams_proxy = await self._find(AmsProxy, "AMS")
        self._ancs_proxy = await self._find(AncsProxy, "ANCS")
        if self._ams_proxy is None and self._ancs_proxy is None:
            return False
        with contextlib.suppress(AppleLinkError):
            read = self._peer.gatt_client.read_characteristics_by_uuid(
                GATT_DEVICE_NAME_CHARACTERISTIC, None
            )
            names = await att(read, "Device Name", DISCOVERY_TIMEOUT_S)
            if names:
                text = bytes(names[0])[: _MAX_NAME * 4].decode("utf-8", errors="replace")
                self.phone_name = text.strip()[:_MAX_NAME] or self.phone_name
        log.info("BLE phone %s offers %s", self.link.peer_address, self._offered())
        return True

    async def _find(self, proxy_class: type[T], what: str) -> T | None:
        """Discover one profile's service and characteristics, or None."""
        try:
            found = self._peer.discover_service_and_create_proxy(proxy_class)  # type: ignore[type-var]
            return await att(found, f"{what} discovery", DISCOVERY_TIMEOUT_S)  # type: ignore[no-any-return]
        except AppleLinkError as exc:
            log.info("BLE phone %s: no usable %s (%s)", self.link.peer_address, what, exc)
            return None

    def _offered(self) -> str:
        names = [n for n, p in (("AMS", self._ams_proxy), ("ANCS", self._ancs_proxy)) if p]
        return " and ".join(names)

    async def _watch_service_changed(self) -> None:
        """Subscribe to the peer's Service Changed indications, if it has them."""
        try:
            services = await att(
                self._peer.discover_service(GATT_GENERIC_ATTRIBUTE_SERVICE), "GATT service"
            )
            if not services:
                return
            chars = await att(
                services[0].discover_characteristics([GATT_SERVICE_CHANGED_CHARACTERISTIC]),
                "Service Changed discovery",
            )
            if chars:
                sub = self._peer.subscribe(chars[0], self._on_service_changed, prefer_notify=False)
                await att(sub, "Service Changed subscription")
        except AppleLinkError as exc:
            log.info("BLE phone %s: no Service Changed (%s)", self.phone_id, exc)

    def _on_service_changed(self, value: bytes) -> None:
        """Rediscover AMS/ANCS when the phone's services change."""
        if len(value) != 4:
            log.warning(
                "BLE phone %s: dropped a Service Changed value of %d bytes",
                self.phone_id,
                len(value),
            )
            return
        start, end = struct.unpack("<HH", bytes(value))
        log.info("BLE phone %s: services changed (0x%04x-0x%04x)", self.phone_id, start, end)
        if self._changed.add(start, end):
            self.spawn(self._rediscover())

    async def _rediscover(self) -> None:
        """Drop what the phone changed, discover AMS/ANCS again and restart them."""
        async with self._rediscovery:
            await asyncio.sleep(SETTLE_S)  # one rediscovery for a burst of indications
            start, end = self._changed.take()
            ams, ancs = self._ams_proxy, self._ancs_proxy
            chars = [*(ancs.chars.all() if ancs else ()), *(ams_chars(ams) if ams else ())]
            forget(self._peer.gatt_client, start, end, chars)
            was_up = self.up
            self._stop_profiles()
            await self._discover()
            if was_up:
                await self._start_profiles()
                self._events.apple_connected(self.phone_id, self)

    # -- security ------------------------------------------------------------------------
    def _watch(self, connection: Connection) -> None:
        """Turn the connection's security events into ``_security`` items."""
        put = self._security.put_nowait
        connection.on(connection.EVENT_PAIRING_START, self._on_pairing_start)
        connection.on(connection.EVENT_PAIRING, lambda _keys: put("paired"))
        connection.on(connection.EVENT_PAIRING_FAILURE, lambda reason: put(f"failed:{reason}"))
        connection.on(
            connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
            lambda: put("encrypted" if connection.is_encrypted else "plain"),
        )
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_FAILURE, lambda e: put(f"encfail:{e}"))

    def _on_pairing_start(self) -> None:
        self._pairing_started = True

    async def _secure(self) -> bool:
        """Get an encrypted link with a stored bond (asking for security only if refused)."""
        needs = await self._probe()
        if needs is None:
            return False
        if needs:
            log.info(
                "BLE phone %s refused access without security; sending a Security Request",
                self.phone_id,
            )
            self.connection.request_pairing()
            if not await self._await_security():
                return False
        if not self.connection.is_encrypted:
            log.warning("BLE phone %s serves AMS/ANCS on a plain link; not served", self.phone_id)
            return False
        return await self._check_bond()

    async def _probe(self) -> bool | None:
        """One ATT request that needs security: True if refused for it, None on other errors."""
        char = (
            self._ancs_proxy.chars.data_source
            if self._ancs_proxy is not None
            else self._ams_proxy.entity_update  # type: ignore[union-attr]
        )
        try:
            await asyncio.wait_for(char.subscribe(), ATT_TIMEOUT_S)
        except ATT_Error as exc:
            if exc.error_code in _NEEDS_SECURITY:
                return True
            log.warning("BLE phone %s: first request refused (%s)", self.phone_id, exc)
            return None
        except Exception as exc:  # a timeout or a dropped link: nothing to serve
            log.warning(
                "BLE phone %s: first request failed (%s)", self.phone_id, type(exc).__name__
            )
            return None
        return False

    async def _await_security(self) -> bool:
        """Wait for the phone to encrypt (bonded) or to pair; report a failure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SECURITY_TIMEOUT_S
        encrypted = paired = False
        while not (paired or (encrypted and not self._pairing_started)):
            try:
                item = await asyncio.wait_for(self._security.get(), deadline - loop.time())
            except TimeoutError:
                what = (
                    "pairing did not complete"
                    if self._pairing_started
                    else "the phone did not answer the Security Request"
                )
                return self._failed(f"{what} within {SECURITY_TIMEOUT_S:.0f} s")
            if item == "encrypted":
                encrypted = True
            elif item == "paired":
                paired = True
            elif item.startswith("failed:"):
                return self._failed(self.refusal or f"pairing failed (SMP error {item[7:]})")
            elif item.startswith("encfail:"):
                # The phone's stored key is unknown here; a phone then pairs anew.
                log.info(
                    "BLE phone %s: encryption with its stored key failed (%s)",
                    self.phone_id,
                    item[8:],
                )
        if paired:
            if not self.compared:  # belt and braces: only a compared code makes a bond
                await self._erase_keys()
                return self._failed("the bond was not made by numeric comparison")
            self._events.apple_bonded(self.phone_id, self.phone_name)
        return True

    def _failed(self, reason: str) -> bool:
        log.warning("BLE phone %s: not bonded: %s", self.phone_id, reason)
        self._events.apple_pairing_failed(self.phone_id, reason)
        return False

    async def _check_bond(self) -> bool:
        """Whether the encrypted link has a bond the car and the engine both know."""
        keys = await self._keystore.get(str(self.connection.peer_address))
        if keys is None:
            return self._failed("the link is encrypted but the car holds no bond for it")
        if not self._events.apple_is_bonded(self.phone_id):
            if self.compared:  # the phone paired before the car asked; the code was compared
                self._events.apple_bonded(self.phone_id, self.phone_name)
                return True
            await self._erase_keys()
            return self._failed("a bond the car no longer lists (unpaired); pair again")
        return True

    async def _erase_keys(self) -> None:
        with contextlib.suppress(KeyError):
            await self._keystore.delete(str(self.connection.peer_address))

    # -- profiles --------------------------------------------------------------------------
    async def _start_profiles(self) -> None:
        """Start AMS and ANCS clients; a profile that fails to start is left out."""
        profiles: list[Profile] = []
        if self._ams_proxy is not None:
            ams = AmsLink(self._ams_proxy, self.phone_id, self._events, self.spawn)
            if await self._start(ams, "AMS"):
                self._ams = ams
                profiles.append("ams")
        if self._ancs_proxy is not None:
            names = self._app_names.setdefault(self.phone_id, {})
            ancs = AncsLink(self._ancs_proxy.chars, self.phone_id, self._events, self.spawn, names)
            if await self._start(ancs, "ANCS"):
                self._ancs = ancs
                profiles.append("ancs")
        self.profiles = tuple(profiles)

    async def _start(self, client: AmsLink | AncsLink, what: str) -> bool:
        try:
            await client.start()
        except AppleLinkError as exc:
            client.stop()
            log.warning("BLE Apple phone %s: %s did not start: %s", self.phone_id, what, exc)
            return False
        return True

    def _stop_profiles(self) -> None:
        for client in (self._ams, self._ancs):
            if client is not None:
                client.stop()
        self._ams = self._ancs = None
        self.profiles = ()

    # -- AppleHandle -----------------------------------------------------------------------
    def media_commands(self) -> frozenset[str]:
        """The media actions the phone's AMS offers now."""
        return self._ams.media_commands() if self._ams is not None else frozenset()

    async def media_command(self, action: str) -> None:
        """Send one AMS Remote Command. Raises ``AppleLinkError``."""
        if self._ams is None:
            raise AppleLinkError("the phone offers no AMS now")
        await self._ams.media_command(action)

    async def notification_action(self, uid: int, action: Literal["positive", "negative"]) -> None:
        """Perform a notification's action through ANCS. Raises ``AppleLinkError``."""
        if self._ancs is None:
            raise AppleLinkError("the phone offers no ANCS now")
        await self._ancs.notification_action(uid, action)

    def close(self, reason: str) -> None:
        """Disconnect the phone (in the background)."""
        log.info("BLE Apple phone %s: closing (%s)", self.phone_id, reason)
        self.link.evict()
