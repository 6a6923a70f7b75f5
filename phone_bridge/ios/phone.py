"""``IPhone``: the emulated iPhone as a Bumble central serving AMS and ANCS.

It scans for a car soliciting ANCS, connects from a fresh resolvable private address,
asks for the MTU an iPhone asks for, waits for the car's Security Request (never pairing
first), then encrypts with its bond or pairs (``pairing``). When the link drops it scans
again and reconnects from a new private address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bumble import hci
from bumble.core import PhysicalTransport
from bumble.device import Advertisement, Connection, Device, Peer

from phone_bridge.ios.ams import AmsServer
from phone_bridge.ios.ancs import AncsServer
from phone_bridge.ios.bonds import BondStore
from phone_bridge.ios.guard import LinkGuard
from phone_bridge.ios.notifications import NotificationSpec
from phone_bridge.ios.pairing import Confirm, NumericComparison, pairing_config
from phone_bridge.ios.scan import advertised_name, matches
from phone_bridge.ios.services import ServiceTable
from radio.bdaddr import BD_ADDR_FILE, claim_address, stored_address
from radio.hci import HciSpec, open_hci

__all__ = ["IPhone", "IPhoneOptions"]

log = logging.getLogger("phone_bridge.ios")

Emit = Callable[[dict[str, Any]], None]
CONNECT_TIMEOUT_S = 10.0
PAIRING_TIMEOUT_S = 120.0  # a human reads and confirms the code
ENCRYPT_TIMEOUT_S = 10.0
MTU_TIMEOUT_S = 5.0
RECONNECT_PAUSE_S = 0.5
REOPEN_MIN_S = 0.5
REOPEN_MAX_S = 5.0


async def _refuse(_code: str) -> bool:
    return False


@dataclass
class IPhoneOptions:
    """What the emulated iPhone is and does.

    Args:
        state_dir: where its identity and bonds persist (``ios-bonds.json``, 0600).
        name: its device name (GAP).
        player: a ``phone_bridge.player.Player`` for AMS, or None (no media).
        notifications: what ANCS posts.
        confirm: asked with each pairing code (default: refuse).
        auto_confirm: accept every code (emulation only).
        car: connect only to a car with this name or id prefix.
        mtu: the ATT MTU it asks for after connecting (23 = ask nothing).
        btsnoop: capture this phone's HCI traffic here.
        emit: called with each event, for ``--json``.
        books: a ``phone_bridge.pbap.BookFile``: also serve it over PBAP on Classic; the
            device is then dual-mode and its identity is the public (BR/EDR) address.
        pbap_wait, pbap_version: with books, let the car open Classic; PBAP "1.2" or "1.1".
    """

    state_dir: Path
    name: str = "iPhone"
    player: Any = None
    notifications: Sequence[NotificationSpec] = ()
    confirm: Confirm = _refuse
    auto_confirm: bool = False
    car: str | None = None
    mtu: int = 185
    btsnoop: Path | None = None
    emit: Emit = field(default=lambda _event: None)
    books: Any = None
    pbap_wait: bool = False
    pbap_version: str = "1.2"


class IPhone:
    """An emulated iPhone on an HCI transport (``tcp-client:...`` or a ``LocalRadio``).

    ``await start()`` powers it on and starts the scan/connect loop in the background;
    ``await stop()`` disconnects and closes the transport. ``run()`` does both around a
    wait for the transport to end (the CLI).

    Args:
        radio: what ``radio.hci.open_hci`` accepts.
        options: the rest.
    """

    def __init__(self, radio: HciSpec, options: IPhoneOptions) -> None:
        self.radio = radio
        self.options = options
        self.bonds = BondStore(options.state_dir)
        self.guard = LinkGuard()
        self.device: Device | None = None
        # The services outlive each Device: the radio restarting gives a fresh one.
        self.ams = AmsServer(None, self.guard, options.player, self._emit)
        self.ancs = AncsServer(None, self.guard, options.notifications, self._emit)
        self.services: ServiceTable | None = None
        self.offered: dict[str, bool] = {"ams": True, "ancs": True}
        self.connection: Connection | None = None
        self.connected = asyncio.Event()
        self._transport: Any = None
        self._btsnoop = options.btsnoop
        self._supervisor: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # phone_bridge.pbap imports ios.pairing: imported here, not at the top (a cycle).
        from phone_bridge.pbap.service import PbapService

        self.pbap = None if options.books is None else PbapService(
            options.books, self._emit, version=options.pbap_version)

    @property
    def identity_address(self) -> str:
        """The identity address the car learns when bonding (``XX:XX:...``): with PBAP,
        the controller's public address (also its BR/EDR address) once powered on."""
        if self.pbap is not None and self.device is not None:
            return str(self.device.public_address).split("/")[0]
        return str(self.bonds.identity_address)

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            self.options.emit(event)
        except Exception as exc:  # a broken consumer must not stop the phone
            log.warning("event consumer failed: %s", exc)

    async def start(self) -> None:
        """Open the transport, power on, serve AMS/ANCS and start scanning.

        If the transport is lost later (the radio process restarts), the phone reopens it
        with backoff, powers on again with the same identity and bonds, and scans again.

        Raises:
            radio.RadioUnavailableError: the transport could not be opened.
        """
        await self._open()
        self.ams.start()
        log.info("emulated iPhone %r up: identity %s", self.options.name, self.identity_address)
        self._supervisor = asyncio.create_task(self._supervise())

    async def _open(self) -> None:
        """Open the transport and power a fresh Device on."""
        # The capture covers the first transport only: reopening would truncate the file.
        btsnoop, self._btsnoop = self._btsnoop, None
        self._transport = await open_hci(self.radio, btsnoop)
        try:
            device = self._make_device()
            await device.power_on()
            if self.pbap is not None:  # its BD_ADDR is its LE identity too: keep one for life
                await claim_address(device, stored_address(self.options.state_dir / BD_ADDR_FILE))
        except BaseException:
            await self._close_transport()
            raise
        self.device = device

    def _make_device(self) -> Device:
        device = Device.with_hci(
            self.options.name, self.bonds.identity_address,
            self._transport.source, self._transport.sink,
        )
        device.keystore = self.bonds
        device.irk = self.bonds.irk
        device.le_privacy_enabled = True
        device.le_rpa_timeout = 0  # rotated at each connection instead
        from phone_bridge.pbap.link import classic_pairing_config
        from phone_bridge.pbap.phone import prepare_classic

        delegate = NumericComparison(self._confirm, self._on_code)
        if self.pbap is not None:  # dual-mode: SSP on BR/EDR, a public identity on LE
            prepare_classic(device, self.bonds, delegate)
            self.pbap.attach(device)
        public = self.pbap is not None
        device.smp_manager.pairing_config_factory = lambda c: (
            classic_pairing_config(delegate) if c.transport == PhysicalTransport.BR_EDR
            else pairing_config(delegate, public_identity=public))
        self.ams.attach(device)
        self.ancs.attach(device)
        self.services = ServiceTable(
            device, {"ams": self.ams.service, "ancs": self.ancs.service}, self.offered)
        return device

    async def _close_transport(self) -> None:
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
        self._transport = None

    async def stop(self) -> None:
        """Disconnect, stop serving and close the transport (idempotent)."""
        tasks = [t for t in (self._supervisor, self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._supervisor = self._loop_task = None
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.disconnect(), 2)
        await self.ams.stop()
        await self.ancs.stop()
        await self._close_transport()
        self.device = None

    async def run(self) -> None:
        """Start, then serve (across radio restarts) until this task is cancelled.

        Raises:
            radio.RadioUnavailableError: the transport could not be opened at first.
        """
        await self.start()
        try:
            assert self._supervisor is not None
            await self._supervisor
        finally:
            await self.stop()

    # -- the radio coming and going -----------------------------------------------------
    async def _supervise(self) -> None:
        """Scan and connect; when the transport ends, reopen it and start over."""
        while True:
            self._loop_task = asyncio.create_task(self._loop())
            source = self._transport.source if self._transport is not None else None
            terminated = getattr(source, "terminated", None)
            if terminated is None:  # an in-process radio never drops
                await self._loop_task
                return
            lost = asyncio.ensure_future(asyncio.shield(terminated))
            try:
                done, _ = await asyncio.wait({self._loop_task, lost},
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
            if self._loop_task in done:
                self._loop_task.result()  # the loop never ends by itself: a bug surfaces
            await self._radio_lost()
            await self._reopen()

    async def _radio_lost(self) -> None:
        log.warning("radio lost: HCI transport %s closed; reopening", self.radio)
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.connection is not None:
            self._forget(self.connection)
        self._emit({"event": "disconnected", "reason": "radio lost"})
        self.device = None
        self.services = None
        await self._close_transport()

    async def _reopen(self) -> None:
        """Retry ``_open`` with backoff (0.5 s doubling to 5 s) until it works."""
        delay = REOPEN_MIN_S
        while True:
            try:
                await self._open()
            except Exception as exc:  # the radio is not back yet
                log.info("cannot reopen %s yet (%s); again in %.1f s", self.radio, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REOPEN_MAX_S)
            else:
                log.info("radio back: powered on again as %s", self.identity_address)
                return

    # -- services coming and going ------------------------------------------------------
    async def set_services(self, *, ams: bool | None = None,
                           ancs: bool | None = None) -> tuple[int, int] | None:
        """Offer or withdraw AMS and ANCS now, as iOS does, and indicate Service Changed.

        Args:
            ams: offer AMS (None: leave as is).
            ancs: offer ANCS (None: leave as is); off is "Share System Notifications" off.

        Returns:
            The affected handle range indicated to the car, or None when nothing changed
            (or the phone is not powered on: the choice then applies at power on).
        """
        wanted = {k: v for k, v in (("ams", ams), ("ancs", ancs)) if v is not None}
        ams_before = self.offered["ams"]
        self.offered.update(wanted)
        if self.services is None:
            return None
        changed = self.services.set(wanted)
        if changed is None:
            return None
        if self.offered["ams"] != ams_before:
            self.ams.reset()  # the car registers again after it rediscovers
        log.info("services now %s; Service Changed 0x%04X-0x%04X",
                 self.offered, *changed)
        self._emit({"event": "services-changed", **self.offered,
                    "start": changed[0], "end": changed[1]})
        await self.services.indicate(changed)
        return changed

    # -- pairing ----------------------------------------------------------------------
    def _on_code(self, code: str) -> None:
        log.warning("pairing code %s %s: confirm the same code on the car", code[:3], code[3:])
        self._emit({"event": "pairing-code", "code": code})

    async def _confirm(self, code: str) -> bool:
        if self.options.auto_confirm:
            return True
        return await self.options.confirm(code)

    # -- scanning and connecting ------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            await self._new_private_address()
            address = await self._scan()
            try:
                connection = await self._connect(address)
            except (hci.HCI_Error, TimeoutError) as exc:
                log.info("connection to %s failed (%s); scanning again", address, exc)
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            await self._serve(connection)
            await asyncio.sleep(RECONNECT_PAUSE_S)

    async def _new_private_address(self) -> None:
        """Take a fresh resolvable private address (Bumble's rotation sets the old one)."""
        assert self.device is not None
        address = hci.Address.generate_private_address(self.device.irk)
        await self.device.send_command(hci.HCI_LE_Set_Random_Address_Command(
            random_address=address), check_result=True)
        self.device.random_address = address
        log.debug("new private address %s", address)

    async def _scan(self) -> hci.Address:
        assert self.device is not None
        found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

        def on_advertisement(adv: Advertisement) -> None:
            if not found.done() and adv.is_connectable and matches(adv.data, self.options.car):
                log.info("found %r at %s", advertised_name(adv.data), adv.address)
                found.set_result(adv.address)

        self.device.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
        try:
            await self.device.start_scanning(own_address_type=hci.OwnAddressType.RANDOM)
            self._emit({"event": "scanning"})
            return await found
        finally:
            self.device.remove_listener(Device.EVENT_ADVERTISEMENT, on_advertisement)
            with contextlib.suppress(Exception):
                await self.device.stop_scanning()

    async def _connect(self, address: hci.Address) -> Connection:
        assert self.device is not None
        connection = await self.device.connect(
            address, own_address_type=hci.OwnAddressType.RANDOM, timeout=CONNECT_TIMEOUT_S
        )
        connection.on(connection.EVENT_SECURITY_REQUEST,
                      lambda _auth: self._spawn(self._on_security_request(connection)))
        connection.on(connection.EVENT_PAIRING, lambda keys: self._on_paired(connection, keys))
        connection.on(connection.EVENT_PAIRING_FAILURE,
                      lambda reason: self._on_pairing_failed(connection, reason))
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
                      lambda: self._spawn(self._on_encryption(connection)))
        self.connection = connection
        log.info("connected to %s from private address %s", address, self.device.random_address)
        self._emit({"event": "connected", "car": str(address),
                    "address": str(self.device.random_address)})
        self.connected.set()
        return connection

    async def _serve(self, connection: Connection) -> None:
        ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_disconnection(reason: int) -> None:
            if not ended.done():
                ended.set_result(reason)

        connection.on(connection.EVENT_DISCONNECTION, on_disconnection)
        if self.options.mtu > 23:
            try:
                await asyncio.wait_for(Peer(connection).request_mtu(self.options.mtu),
                                       MTU_TIMEOUT_S)
            except Exception as exc:  # the car may refuse or vanish: the default MTU stays
                log.info("MTU exchange failed: %s", exc)
        reason = await ended
        self._forget(connection)
        name = hci.HCI_Constant.error_name(reason)  # type: ignore[no-untyped-call]
        log.info("disconnected (%s)", name)
        self._emit({"event": "disconnected", "reason": name})

    def _forget(self, connection: Connection) -> None:
        self.connected.clear()
        self.connection = None
        self.guard.forget(connection)
        self.ams.forget(connection)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- security -----------------------------------------------------------------------
    async def _on_security_request(self, connection: Connection) -> None:
        keys = await self.bonds.get(str(connection.peer_address))
        if keys is not None and (keys.ltk or keys.ltk_central):
            log.info("security request from %s: encrypting with our bond", connection.peer_address)
            try:
                await asyncio.wait_for(connection.encrypt(), ENCRYPT_TIMEOUT_S)
                return
            except Exception as exc:  # the car lost its bond, or ignored the LTK
                log.warning("encryption with the stored bond failed (%s); pairing again", exc)
        log.info("security request from %s: pairing (LE Secure Connections)",
                 connection.peer_address)
        try:
            await asyncio.wait_for(connection.pair(), PAIRING_TIMEOUT_S)
        except Exception as exc:  # rejected, mismatch, timeout, gone: reported by the event
            log.info("pairing did not complete: %s", exc)

    def _on_paired(self, connection: Connection, keys: Any) -> None:
        authenticated = keys.ltk is not None and keys.ltk.authenticated
        if authenticated and connection.encryption:
            self.guard.secure(connection)
        log.info("bonded with %s (%s)", connection.peer_address,
                 "authenticated" if authenticated else "NOT authenticated: services stay closed")
        self._emit({"event": "bonded", "car": str(connection.peer_address),
                    "authenticated": authenticated})
        if (authenticated and self.pbap is not None and self.device is not None
                and not self.options.pbap_wait):
            from phone_bridge.pbap.link import classic_after_le

            self._spawn(classic_after_le(self.device, connection))

    def _on_pairing_failed(self, connection: Connection, reason: int) -> None:
        log.warning("pairing with %s failed: %s", connection.peer_address, reason)
        self._emit({"event": "pairing-failed", "car": str(connection.peer_address),
                    "reason": str(reason)})

    async def _on_encryption(self, connection: Connection) -> None:
        if not connection.encryption:
            self.guard.forget(connection)
            return
        keys = await self.bonds.get(str(connection.peer_address))
        if keys is not None and keys.ltk is not None and keys.ltk.authenticated:
            self.guard.secure(connection)
            log.info("link to %s encrypted with our bond", connection.peer_address)
            self._emit({"event": "encrypted", "car": str(connection.peer_address)})
