"""``PbapPhone``: an emulated phone that offers only PBAP, on Bluetooth Classic (Android).

A dual-mode Bumble device (LE only to find the car's Classic address when ``--car`` is
not given), BR/EDR connectable so the car may connect first. At start it connects to the
car and authenticates (SSP numeric comparison, DISPLAY_YES_NO), then serves the book; with
``wait`` it never connects and waits for the car to (``POST /api/classic/connect``),
answering the car's SSP. ``pbap_version`` "1.1" makes it a PBAP 1.1 PSE. Its link keys
live in ``android-bonds.json`` (0600) in the state dir. The contacts file is polled once
a second, so the version counters change when the file does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bumble import hci
from bumble.core import PhysicalTransport
from bumble.device import Connection, Device

from phone_bridge.ios.bonds import BondStore
from phone_bridge.ios.pairing import NumericComparison
from phone_bridge.pbap.book import BookFile
from phone_bridge.pbap.link import (
    authenticate,
    classic_pairing_config,
    find_car_classic,
    open_acl,
)
from phone_bridge.pbap.service import PbapService
from radio.bdaddr import BD_ADDR_FILE, claim_address, stored_address
from radio.hci import HciSpec, open_hci

__all__ = ["ANDROID_BONDS", "PHONE_CLASS_OF_DEVICE", "PbapPhone", "PbapPhoneOptions"]

log = logging.getLogger("phone_bridge.pbap")

ANDROID_BONDS = "android-bonds.json"
# Major class Phone, minor Smartphone; services Networking, Capturing, Object Transfer,
# Audio, Telephony: what an Android phone announces.
PHONE_CLASS_OF_DEVICE = 0x5A020C
POLL_S = 1.0
# Waits between attempts to reach the car (seconds): quick at first, then every 5 s.
RETRY_S = (1.0, 2.0, 4.0, 5.0)
Emit = Callable[[dict[str, Any]], None]
Confirm = Callable[[str], Awaitable[bool]]


async def _refuse(_code: str) -> bool:
    return False


@dataclass
class PbapPhoneOptions:
    """What the emulated PBAP phone is and does.

    Args:
        state_dir: where its link keys persist (``android-bonds.json``, 0600).
        books: the phone book it serves.
        name: its device name.
        car: the car's Classic address, or None to find it over LE.
        confirm: asked with each pairing code (default: refuse).
        auto_confirm: accept every code (emulation only).
        btsnoop: capture its HCI traffic here.
        emit: called with each event, for ``--json``.
        wait: do not connect to the car; wait for a car-initiated BR/EDR connection.
        pbap_version: "1.2" or "1.1" (no PbapSupportedFeatures, never any counters).
    """

    state_dir: Path
    books: BookFile
    name: str = "Android"
    car: str | None = None
    confirm: Confirm = _refuse
    auto_confirm: bool = False
    btsnoop: Path | None = None
    emit: Emit = field(default=lambda _event: None)
    wait: bool = False
    pbap_version: str = "1.2"


class PbapPhone:
    """An emulated Android phone: ``await start()``, ``await stop()``, or ``run()``.

    Args:
        radio: what ``radio.hci.open_hci`` accepts.
        options: the rest.
    """

    def __init__(self, radio: HciSpec, options: PbapPhoneOptions) -> None:
        self.radio = radio
        self.options = options
        self.bonds = BondStore(options.state_dir, ANDROID_BONDS)
        self.service = PbapService(options.books, self._emit, version=options.pbap_version)
        self.device: Device | None = None
        self.address = ""
        self._transport: Any = None
        self._tasks: list[asyncio.Task[Any]] = []

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            self.options.emit(event)
        except Exception as exc:  # a broken consumer must not stop the phone
            log.warning("event consumer failed: %s", exc)

    async def start(self, *, connect: bool = True) -> None:
        """Open the transport, power on, serve PBAP; connect to the car unless told not to
        (``connect=False`` or the ``wait`` option).

        Raises:
            radio.RadioUnavailableError: the transport could not be opened.
        """
        self._transport = await open_hci(self.radio, self.options.btsnoop)
        try:
            device = Device.with_hci(self.options.name, self.bonds.identity_address,
                                     self._transport.source, self._transport.sink)
            prepare_classic(device, self.bonds, self._delegate())
            self.service.attach(device)
            await device.power_on()
            # One BD_ADDR for life, as a real phone has: the car's bond is keyed by it.
            await claim_address(device, stored_address(self.options.state_dir / BD_ADDR_FILE))
            await device.set_connectable(True)
        except BaseException:
            await self._transport.close()
            raise
        self.device = device
        self.address = str(device.public_address).split("/")[0]
        log.info("emulated phone %r up: Classic address %s", self.options.name, self.address)
        self._emit({"event": "up", "address": self.address, "channel": self.service.channel})
        self._tasks.append(asyncio.create_task(self._poll()))
        if connect and not self.options.wait:
            self._tasks.append(asyncio.create_task(self.connect_car()))
        elif self.options.wait:
            device.on(device.EVENT_CONNECTION, self._on_car_connection)
            log.info("waiting for the car to connect over Classic to %s", self.address)

    def _on_car_connection(self, connection: Connection) -> None:
        """A car-initiated link (``--wait``): report it; the car authenticates (SSP)."""
        if connection.transport != PhysicalTransport.BR_EDR:
            return
        car = str(connection.peer_address).split("/")[0]
        log.info("the car %s connected over Classic", car)
        self._emit({"event": "connected", "car": car, "transport": "classic",
                    "initiator": "car"})
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._emit(
            {"event": "disconnected", "car": car,
             "reason": hci.HCI_Constant.error_name(reason)}))  # type: ignore[no-untyped-call]

    def _delegate(self) -> NumericComparison:
        async def confirm(code: str) -> bool:
            return True if self.options.auto_confirm else await self.options.confirm(code)

        def on_code(code: str) -> None:
            log.warning("pairing code %s %s: confirm the same code on the car",
                        code[:3], code[3:])
            self._emit({"event": "pairing-code", "code": code})

        return NumericComparison(confirm, on_code)

    async def connect_car(self) -> None:
        """Find the car (``car`` or over LE), connect and authenticate; log what failed.

        A car that cannot be reached yet (not found, not answering, busy with another
        phone) is tried again with backoff, as a phone keeps trying its car; a pairing that
        failed or was refused is not (it would ask the car user again and again).
        """
        assert self.device is not None
        for attempt in itertools.count():
            try:
                car = self.options.car or await find_car_classic(self.device)
                connection = await open_acl(self.device, car)
            except (hci.HCI_Error, TimeoutError, LookupError, ConnectionError) as exc:
                delay = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                reason = str(exc) or type(exc).__name__
                log.warning("could not reach the car over Classic (%s); retrying in %.0f s",
                            reason, delay)
                self._emit({"event": "connect-failed", "reason": reason, "retry_in": delay})
                await asyncio.sleep(delay)
                continue
            break
        try:
            await authenticate(connection, car)
        except (hci.HCI_Error, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("pairing with the car failed: %s", reason)
            self._emit({"event": "connect-failed", "reason": reason})
            return
        self._emit({"event": "connected", "car": car, "transport": "classic"})
        connection.on(connection.EVENT_DISCONNECTION, lambda reason: self._emit(
            {"event": "disconnected", "car": car,
             "reason": hci.HCI_Constant.error_name(reason)}))  # type: ignore[no-untyped-call]

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            if self.options.books.refresh():
                primary, secondary = self.options.books.counters
                self._emit({"event": "book-changed", "cards": len(self.options.books.book.cards),
                            "primary": primary, "secondary": secondary})

    async def stop(self) -> None:
        """Stop polling, drop the links and close the transport (idempotent)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.service.stop()
        if self.device is not None:
            for connection in list(self.device.connections.values()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.disconnect(), 2.0)
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
        self._transport = self.device = None

    async def run(self) -> None:
        """Start, then serve until cancelled or the radio goes away."""
        await self.start()
        try:
            source = self._transport.source
            terminated = getattr(source, "terminated", None)
            await (asyncio.shield(terminated) if terminated is not None
                   else asyncio.get_running_loop().create_future())
            log.warning("radio lost: HCI transport %s closed", self.radio)
        finally:
            await self.stop()


def prepare_classic(device: Device, keystore: Any, delegate: NumericComparison) -> None:
    """Make ``device`` dual-mode and a phone: BR/EDR, SSP, its class, link keys kept.

    Call before ``power_on``. Pairing over either transport uses numeric comparison.
    """
    device.classic_enabled = True
    device.classic_ssp_enabled = True
    device.le_enabled = True
    device.class_of_device = PHONE_CLASS_OF_DEVICE
    device.connectable = True
    device.keystore = keystore
    device.pairing_config_factory = lambda _c: classic_pairing_config(delegate)
