"""The car's BLE peripheral: a Bumble GATT server that moves CarHub's byte stream.

Theory of operation: the car advertises every 20-30 ms, so phones find it in well under a
second: the ANCS solicitation and its name, then in the scan response the AMS solicitation
and 6 bytes of CarHub service data (``carhub.ble.advertising``, PROTOCOL.md §1.2). Its GATT
service has:

    info         READ                     JSON {id, name, model, version, lan}
    channel_in   WRITE WITHOUT RESPONSE   phone -> car stream chunks
    channel_out  NOTIFY                   car -> phone stream chunks

Each connected phone gets its own ``BleLink`` (``carhub.ble.link``); ``on_link`` is called
once the phone has subscribed to ``channel_out`` (before that the car could not answer).
The link only moves bytes: the protocol layer feeds ``recv()`` chunks to a ``FrameDecoder``.

Any nearby device can connect and write, so a connection holds bounded state only (see
``BleLink``), and a connection that has not subscribed within ``subscribe_timeout`` is
disconnected (the controller has few LE connection slots).

On every connection the car also looks for AMS and ANCS on the peer: an iPhone with no
CarHub app is served as an Apple-profile phone (``carhub.ble.apple``), bonded by LE Secure
Connections numeric comparison (``carhub.ble.bonds``; keys in ``STATE/bonds.json``), and
is not dropped for not subscribing. Both kinds of phone can be connected at once.

BR/EDR connections, and their pairing configs, go to the optional ``carhub.pbap.ClassicCar``
(the controller is then dual-mode); this server keeps LE connections only. Bumble's GATT
server does not enforce attribute permissions (``carhub.ble.perms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bumble import hci
from bumble.core import PhysicalTransport
from bumble.device import AdvertisingType, Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.pairing import PairingConfig

from carhub.apple import AppleEvents
from carhub.ble.advertising import (
    ADV_INTERVAL_MAX_MS,
    ADV_INTERVAL_MIN_MS,
    advertising_data,
    plain_address,
    scan_response_data,
    static_address,
)
from carhub.ble.apple import ApplePhone
from carhub.ble.bonds import (
    drop_unknown_bonds,
    erase_bonds,
    le_pairing_config,
    load_irk,
    open_keystore,
    session_proxy,
)
from carhub.ble.link import BleLink
from carhub.ble.perms import deny_read, deny_write
from carhub.pbap import ClassicCar
from protocol.gatt import CHANNEL_IN_UUID, CHANNEL_OUT_UUID, INFO_UUID, SERVICE_UUID, encode_info
from radio.dual_mode import DualModeDevice
from radio.hci import HciSpec, open_hci
from shell.chunks import MAX_QUEUED_BYTES
from shell.errors import TransportError
from shell.gate import IntakeGate

__all__ = ["MAX_QUEUED_BYTES", "SUBSCRIBE_TIMEOUT_S", "BleCarServer", "LinkHandler"]

log = logging.getLogger("carhub.ble")

# Reopening a lost HCI transport (the radio process restarted, a dongle re-plugged):
# back off from 0.5 s to 5 s so a dead radio costs little CPU but a restart is seen quickly.
_REOPEN_MIN_S = 0.5
_REOPEN_MAX_S = 5.0
# A real phone subscribes within a second of connecting (MTU exchange, discovery, CCCD
# write); 10 s leaves room for a slow one and frees a squatted connection slot quickly.
SUBSCRIBE_TIMEOUT_S = 10.0

LinkHandler = Callable[[BleLink], Awaitable[None]]


class BleCarServer:
    """The car's GATT peripheral.

    Args:
        hci: a Bumble transport string (``tcp-client:127.0.0.1:7000``, ``usb:0``,
            ``hci-socket:0``) or a ``radio.LocalRadio`` for in-process tests.
        name: the car's name, sent in the scan response.
        device_id: the 16-hex-digit device id; its first 8 digits are the short id.
        info: the info JSON object (id, name, model, version, lan).
        on_link: awaited in a task for each phone once it can receive notifications.
        btsnoop: optional btsnoop capture of this car's HCI traffic.
        subscribe_timeout: seconds a connection may take to subscribe to channel_out
            before the car disconnects it.
        max_queued_bytes: the most a phone's unread writes may hold (counting
            ``shell.chunks.CHUNK_OVERHEAD`` per chunk) before the car disconnects it,
            once its session is up (less before, see ``carhub.ble.link``).
        gate: counts each connection from the LE connection until its session is up
            (an Apple-profile phone: its encrypted, bonded link) and disconnects the ones
            it displaces; None counts nothing.
        apple: the engine's side of Apple-profile phones (AMS/ANCS); None serves none
            (and refuses every pairing).
        state_dir: where the bonds live (``bonds.json``, 0600) and the car's IRK; None
            keeps them in memory.
        classic: makes the controller dual-mode (info gains ``classic``, its BD_ADDR) and
            gets BR/EDR connections; LE and Classic bonds share its key store. None: LE only.
    """

    def __init__(
        self,
        hci: HciSpec,
        *,
        name: str,
        device_id: str,
        info: dict[str, object],
        on_link: LinkHandler,
        btsnoop: Path | None = None,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT_S,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        gate: IntakeGate | None = None,
        apple: AppleEvents | None = None,
        state_dir: Path | None = None,
        classic: ClassicCar | None = None,
    ) -> None:
        self._hci = hci
        self._apple = apple
        self._classic = classic
        self._keystore = classic.keystore if classic is not None else open_keystore(state_dir)
        self._irk = load_irk(state_dir)
        self._phones: dict[int, ApplePhone] = {}
        self._app_names: dict[str, dict[str, str]] = {}
        if apple is not None:
            apple.on_unpair(self._on_unpair)
        self._gate = gate
        self._name = name
        self._device_id = device_id
        self._info_fields = dict(info)
        self._info = encode_info(info)
        self._version = int(str(info["version"]))
        self._on_link = on_link
        self._btsnoop = btsnoop
        self.subscribe_timeout = subscribe_timeout
        self.max_queued_bytes = max_queued_bytes
        self._pairing_open = False
        self._links: dict[int, BleLink] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._adv_lock = asyncio.Lock()
        self._transport: Any = None
        self._device: Device | None = None
        self._running = False
        self.address = ""
        self._out: Characteristic[bytes] = Characteristic(
            CHANNEL_OUT_UUID,
            Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            CharacteristicValue(read=deny_read, write=deny_write),
        )
        self._service = Service(SERVICE_UUID, [self._info_char(), self._in_char(), self._out])

    async def start(self) -> None:
        """Open the HCI transport, register the service and start advertising.

        If the transport is lost later (the radio process restarts), the car reopens it by
        itself with backoff and advertises again at the same address.

        Raises:
            radio.RadioUnavailableError: the transport could not be opened.
        """
        self._out.on(self._out.EVENT_SUBSCRIPTION, self._on_subscription)
        self._running = True
        if self._apple is not None or self._classic is not None:
            keep = self._classic.is_bonded if self._classic is not None else None
            await drop_unknown_bonds(self._keystore, self._apple, keep)
        await self._open()
        self._spawn(self._watch_transport())
        log.info("BLE car %s advertising as %s", self._name, self.address)

    async def _open(self) -> None:
        """Open the transport, power a fresh Device on and advertise."""
        # The capture covers the first transport only: reopening would truncate the file.
        btsnoop, self._btsnoop = self._btsnoop, None
        self._transport = await open_hci(self._hci, btsnoop)
        # A static random address derived from the device id: the car keeps one address
        # across restarts of itself and of the radio (emulated controllers get a new public
        # address per connection), so a phone's remembered address stays valid.
        device = DualModeDevice.with_hci(
            self._name,
            static_address(self._device_id),
            self._transport.source,
            self._transport.sink,
        )
        device.add_service(self._service)
        # Bonds: loaded (and the resolving list filled) at power-on; LE SC numeric
        # comparison only, each pairing shown on the dashboard (carhub.ble.bonds).
        device.keystore = self._keystore
        device.irk = self._irk
        device.pairing_config_factory = self._pairing_config
        device.smp_session_proxy = session_proxy(self._classic.is_live if self._classic else None)
        device.on(device.EVENT_CONNECTION, self._on_connection)
        self._device = device
        if self._classic is not None:
            self._classic.attach(device)
        await device.power_on()
        if self._classic is not None:
            await self._classic.powered_on()
            self._info = encode_info({**self._info_fields, "classic": self._classic.address})
        self._own_type = hci.OwnAddressType.RANDOM
        self.address = plain_address(device.random_address)
        await self._advertise()

    async def _watch_transport(self) -> None:
        """Reopen the HCI transport whenever it is lost, until ``stop``."""
        while self._running:
            source = self._transport.source if self._transport is not None else None
            terminated = getattr(source, "terminated", None)
            if terminated is None:
                return  # an in-process radio never drops
            await asyncio.shield(terminated)
            if not self._running:
                return
            log.warning("BLE: HCI transport %s lost; reopening", self._hci)
            for link in list(self._links.values()):
                link.mark_closed()
            self._links.clear()
            for phone in list(self._phones.values()):
                phone.gone()
            self._phones.clear()
            if self._classic is not None:
                self._classic.detach()
            self._device = None
            with contextlib.suppress(Exception):
                await self._transport.close()
            self._transport = None
            await self._reopen()

    async def _reopen(self) -> None:
        """Retry ``_open`` with backoff until it works or the car stops."""
        delay = _REOPEN_MIN_S
        while self._running:
            try:
                await self._open()
            except Exception as exc:  # any failure to reach the radio: try again later
                if self._transport is not None:
                    with contextlib.suppress(Exception):
                        await self._transport.close()
                    self._transport = None
                log.info("BLE: cannot reopen %s yet (%s)", self._hci, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _REOPEN_MAX_S)
            else:
                log.info("BLE: transport reopened; advertising as %s again", self.address)
                return

    async def stop(self) -> None:
        """Stop advertising, end every link and close the transport."""
        self._running = False
        for link in list(self._links.values()):
            await link.close()
        if self._classic is not None:
            await self._classic.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._device is not None:
            with contextlib.suppress(Exception):
                await self._device.stop_advertising()
        if self._transport is not None:
            await self._transport.close()
            self._transport = None
        self._device = None

    def set_pairing_open(self, open_: bool) -> None:
        """Set the pairing flag in the advertised service data (re-advertises).

        Args:
            open_: whether the pairing window is open.
        """
        self._pairing_open = open_
        if self._running:
            self._spawn(self._advertise())

    @property
    def links(self) -> list[BleLink]:
        """The phones connected now."""
        return list(self._links.values())

    async def notify(self, connection: Connection, chunk: bytes) -> None:
        """Send one notification on channel_out to ``connection``.

        Raises:
            TransportError: the radio is gone (its HCI transport is being reopened).
        """
        if self._device is None:
            raise TransportError("BLE radio gone")
        await self._device.notify_subscriber(connection, self._out, chunk)

    def advertising_data(self) -> bytes:
        """Return the advertising payload: flags, the ANCS solicitation and the name."""
        return advertising_data(self._name)

    def scan_response_data(self) -> bytes:
        """Return the scan response: the AMS solicitation and the CarHub service data."""
        return scan_response_data(self._version, self._device_id, pairing_open=self._pairing_open)

    def _info_char(self) -> Characteristic[bytes]:
        """The READ-only info characteristic."""
        return Characteristic(
            INFO_UUID,
            Characteristic.Properties.READ,
            Characteristic.READABLE,
            CharacteristicValue(read=lambda _conn: self._info, write=deny_write),
        )

    def _in_char(self) -> Characteristic[bytes]:
        """The WRITE WITHOUT RESPONSE channel_in characteristic."""
        return Characteristic(
            CHANNEL_IN_UUID,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue(read=deny_read, write=self._on_channel_in),
        )

    def _on_channel_in(self, connection: Connection, value: bytes) -> None:
        """Route a phone's write to its link (dropped if the link is gone)."""
        link = self._links.get(connection.handle)
        if link is not None:
            link.on_write(value)

    def _on_connection(self, connection: Connection) -> None:
        """Create a link for a new phone and keep advertising for the next one."""
        if connection.transport == PhysicalTransport.BR_EDR:
            if self._classic is not None:
                self._classic.on_connection(connection)
            return
        if connection.role != hci.Role.PERIPHERAL:
            return
        link = BleLink(
            connection,
            notify=self.notify,
            spawn=self._spawn_none,
            max_queued_bytes=self.max_queued_bytes,
        )
        self._links[connection.handle] = link
        if self._gate is not None:
            link.leave = self._gate.enter(link.peer_address, link.evict)
        connection.on(connection.EVENT_DISCONNECTION, lambda _r: self._on_gone(connection))
        log.info("BLE phone %s connected", link.peer_address)
        if self._apple is not None:
            phone = ApplePhone(
                connection, link, self._apple, self._keystore, self._app_names, self._spawn
            )
            self._phones[connection.handle] = phone
            phone.start()
        self._spawn(self._subscribe_deadline(link))
        # A connection stops connectable advertising; restart it so more phones can join.
        self._spawn(self._advertise())

    async def _subscribe_deadline(self, link: BleLink) -> None:
        """Disconnect ``link`` if it has not subscribed within ``subscribe_timeout``."""
        # A link counts as subscribed once closed too, so this task never outlives it.
        if not await link.wait_subscribed(self.subscribe_timeout):
            phone = self._phones.get(link.handle)
            if phone is not None and await phone.is_apple():
                return  # an Apple-profile phone never subscribes; it has its own deadlines
            log.warning(
                "BLE phone %s did not subscribe within %.1f s; disconnecting",
                link.peer_address,
                self.subscribe_timeout,
            )
            await link.close()

    def _on_subscription(self, connection: Connection, notify: bool, _indicate: bool) -> None:
        """Hand the link to the app once the phone listens on channel_out."""
        link = self._links.get(connection.handle)
        if link is None or not notify or link.subscribed:
            return
        link.mark_subscribed()
        self._spawn(self._run_link(link))

    def _on_gone(self, connection: Connection) -> None:
        """End the link of a phone that disconnected."""
        phone = self._phones.pop(connection.handle, None)
        if phone is not None:
            phone.gone()
        link = self._links.pop(connection.handle, None)
        if link is not None:
            log.info("BLE phone %s disconnected", link.peer_address)
            link.mark_closed()

    async def _run_link(self, link: BleLink) -> None:
        """Run the app's link handler; a crash is logged, and ends that link only."""
        try:
            await self._on_link(link)
        except Exception:
            log.exception("BLE link handler failed for %s", link.peer_address)
            await link.close()

    async def _advertise(self) -> None:
        """(Re)start connectable advertising with the current service data."""
        async with self._adv_lock:
            if not self._running or self._device is None:
                return
            await self._device.start_advertising(
                advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
                own_address_type=self._own_type,
                advertising_data=self.advertising_data(),
                scan_response_data=self.scan_response_data(),
                advertising_interval_min=ADV_INTERVAL_MIN_MS,
                advertising_interval_max=ADV_INTERVAL_MAX_MS,
            )

    async def forget_bond(self, phone_id: str) -> None:
        """Erase an Apple-profile phone's bond (keys, IRK) and disconnect it.

        Args:
            phone_id: the phone's id (``carhub.apple.apple_phone_id``).
        """
        await erase_bonds(self._keystore, phone_id)
        self._app_names.pop(phone_id, None)
        if self._device is not None:
            with contextlib.suppress(Exception):  # the radio may be gone; reloaded at reopen
                await self._device.refresh_resolving_list()
        for phone in list(self._phones.values()):
            if phone.phone_id == phone_id:
                phone.close("unpaired")

    def _on_unpair(self, phone_id: str) -> None:
        """The engine unpaired a phone: erase its bond in the background."""
        self._spawn(self.forget_bond(phone_id))

    def _pairing_config(self, connection: Connection) -> PairingConfig:
        """LE SC with MITM and bonding; the delegate shows the code on the dashboard."""
        if connection.transport == PhysicalTransport.BR_EDR and self._classic is not None:
            return self._classic.pairing_config(connection)
        return le_pairing_config(self._phones.get(connection.handle), self._apple)

    def _spawn_none(self, coro: Awaitable[None]) -> None:
        self._spawn(coro)  # for callers that keep no task
    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``coro`` in a task that ``stop`` will cancel."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
