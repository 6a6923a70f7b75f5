"""The car's Bluetooth Classic side: a PBAP client on the BLE server's controller.

``BleCarServer`` hands the car's Bumble ``Device`` to ``ClassicCar.attach`` before power-on
(dual mode: classic enabled, a car-audio class of device, BR/EDR connectable), calls
``powered_on`` after it (the engine learns the car's public BD_ADDR and its connector),
gives it every BR/EDR connection and the pairing config of each, and ``detach``es it when
the transport is lost. Each connection becomes a ``carhub.pbap.link.ClassicLink``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Final

from bumble import hci
from bumble.core import PhysicalTransport
from bumble.device import Connection, Device
from bumble.keys import KeyStore
from bumble.pairing import PairingConfig

from carhub.apple import apple_phone_id
from carhub.classic import ClassicEvents
from carhub.pbap.link import ClassicLink, LinkSettings
from carhub.pbap.obex_link import RESPONSE_TIMEOUT_S
from carhub.pbap.pairing import LinkPairing, SspDelegate
from radio.bdaddr import claim_address

__all__ = ["CAR_AUDIO_CLASS", "CONNECT_TIMEOUT_S", "DECISION_TIMEOUT_S", "ClassicCar"]

log = logging.getLogger("carhub.pbap")

# Class of device 0x200420: service class Audio (bit 21), major class Audio/Video (0x04),
# minor class Car audio (0x08 << 2). Phones show such a device with a car icon.
CAR_AUDIO_CLASS: Final = 0x200420
# Paging a phone takes up to 5.12 s (page timeout) on a real radio; allow two tries.
CONNECT_TIMEOUT_S: Final = 12.0
# The car user's answer to an SSP code; the phone's own SSP timeout is about 30 s.
DECISION_TIMEOUT_S: Final = 25.0


class ClassicCar:
    """The car's Classic (PBAP client) side.

    Args:
        events: the engine's side (``carhub.classic.ClassicEvents``).
        keystore: the car's key store (``carhub.ble.bonds.open_keystore``); the BLE server
            adopts it, so link keys live next to LE keys in ``bonds.json``.
        page_size: cards per PullPhoneBook GET.
        response_timeout: seconds an OBEX response may take.
        stable_address: on the emulated radio only, the BD_ADDR to claim at every power-on
            (``radio.bdaddr``), so phones' bonds with the car survive restarts of the car
            and of the radio; None keeps the controller's own (a real adapter's is fixed).
    """

    def __init__(
        self,
        events: ClassicEvents,
        keystore: KeyStore,
        *,
        page_size: int = 500,
        response_timeout: float = RESPONSE_TIMEOUT_S,
        stable_address: str | None = None,
    ) -> None:
        if not 1 <= page_size <= 0xFFFF:
            raise ValueError(f"page size {page_size}")
        self._events = events
        self.keystore = keystore
        self.page_size = page_size
        self.response_timeout = response_timeout
        self.stable_address = stable_address
        self.discoverable = False
        self._device: Device | None = None
        self._links: dict[int, ClassicLink] = {}
        self._pairings: dict[int, LinkPairing] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rekeying: set[str] = set()  # phone ids whose stored key the host withholds
        self.address = ""

    def attach(self, device: Device) -> None:
        """Make ``device`` dual-mode, before its power-on."""
        device.classic_enabled = True
        device.class_of_device = CAR_AUDIO_CLASS
        device.connectable = True
        device.classic_accept_any = True
        device.discoverable = self.discoverable
        self._device = device
        stored = device.get_link_key

        async def link_key(address: hci.Address) -> bytes | None:
            # A re-key (carhub.pbap.link): "no key" makes the controller run SSP, and the
            # stored key stays until an accepted pairing replaces it.
            if apple_phone_id(address.to_string(False)) in self._rekeying:
                log.info("Classic: link key for %s withheld while it pairs again", address)
                return None
            return await stored(address)

        device.host.link_key_provider = link_key

    def set_discoverable(self, open_: bool) -> None:
        """Answer inquiries (phones list the car under new devices) only while the pairing
        window is open; the car stays connectable for bonded phones either way."""
        self.discoverable = open_
        if self._device is not None and self._device.classic_enabled:
            self._spawn(self._device.set_discoverable(open_))

    async def powered_on(self) -> None:
        """The device is on: claim the stable address, tell the engine address and connector."""
        if self._device is None:
            return
        if self.stable_address is not None:
            await claim_address(self._device, self.stable_address)
        self.address = self._device.public_address.to_string(False)
        self._events.classic_attach(self.address, self.connect)
        log.info("Classic: connectable as %s", self.address)

    def is_bonded(self, name: str) -> bool:
        """Whether a key store entry named ``name`` is a Classic phone the engine lists."""
        return self._events.classic_is_bonded(apple_phone_id(name))

    def is_live(self, phone_id: str) -> bool:
        """Whether ``phone_id`` has an authenticated BR/EDR link to the car now."""
        return any(link.phone_id == phone_id and link.live for link in self._links.values())

    def pairing_config(self, connection: Connection) -> PairingConfig:
        """SSP with MITM and bonding; the delegate shows the code on the dashboard."""
        state = self._pairing(connection)
        state.started = True
        delegate = SspDelegate(
            state,
            self._events,
            self.keystore,
            timeout=DECISION_TIMEOUT_S,
            abort=lambda: self._spawn(_drop(connection)),
        )
        return PairingConfig(sc=True, mitm=True, bonding=True, delegate=delegate)

    def on_connection(self, connection: Connection) -> None:
        """A phone connected over BR/EDR: pair if needed and pull."""
        self._serve(connection, car_initiated=False)

    def connect(self, address: str) -> None:
        """Connect to a phone, pair if needed and pull; returns at once."""
        self._spawn(self._connect(address))

    def detach(self) -> None:
        """The transport is lost: every link is gone and Classic is off."""
        for link in list(self._links.values()):
            link.gone()
        self._links.clear()
        self._pairings.clear()
        if self._device is not None:
            self._device = None
            self.address = ""
            self._events.classic_detach()

    async def stop(self) -> None:
        """End every link and task."""
        for link in list(self._links.values()):
            await link.disconnect()
            link.gone()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._links.clear()
        self._device = None

    async def _connect(self, address: str) -> None:
        """Page the phone; the link then runs as for a phone that connected."""
        device = self._device
        if device is None:
            log.warning("Classic: cannot connect to %s: no radio", address)
            return
        try:
            peer = hci.Address(address, hci.Address.PUBLIC_DEVICE_ADDRESS)
            connection = await asyncio.wait_for(
                device.connect(peer, transport=PhysicalTransport.BR_EDR), CONNECT_TIMEOUT_S
            )
        except Exception as exc:  # a timeout, a refusal, a bad address: the phone is not there
            log.warning("Classic: cannot connect to %s: %s", address, exc or type(exc).__name__)
            self._events.classic_pairing_failed(apple_phone_id(address), f"no answer: {exc}")
            return
        self._serve(connection, car_initiated=True)

    def _serve(self, connection: Connection, *, car_initiated: bool) -> None:
        if self._device is None or connection.handle in self._links:
            return
        settings = LinkSettings(
            events=self._events,
            keystore=self.keystore,
            page_size=self.page_size,
            emulated=self._emulated(),
            spawn=self._spawn_none,
            response_timeout=self.response_timeout,
            rekeying=self._rekeying,
        )
        link = ClassicLink(connection, self._pairing(connection), settings)
        self._links[connection.handle] = link
        log.info("Classic phone %s connected", link.address)
        connection.on(connection.EVENT_DISCONNECTION, lambda _r: self._forget(connection))
        self._spawn(link.run(car_initiated=car_initiated))

    def _forget(self, connection: Connection) -> None:
        self._links.pop(connection.handle, None)
        self._pairings.pop(connection.handle, None)

    def _pairing(self, connection: Connection) -> LinkPairing:
        state = self._pairings.get(connection.handle)
        if state is None:
            phone_id = apple_phone_id(connection.peer_address.to_string(False))
            state = self._pairings[connection.handle] = LinkPairing(phone_id)
        return state

    def _emulated(self) -> bool:
        """A controller that cannot encrypt a Classic link (Bumble's virtual one)."""
        device = self._device
        if device is None:
            return False
        with contextlib.suppress(Exception):
            return not device.host.supports_command(hci.HCI_SET_CONNECTION_ENCRYPTION_COMMAND)
        return False

    def _spawn_none(self, coro: Awaitable[None]) -> None:
        self._spawn(coro)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _drop(connection: Connection) -> None:
    """End a pairing the delegate cannot refuse by answering: drop the ACL."""
    with contextlib.suppress(Exception):
        reason = hci.HCI_AUTHENTICATION_FAILURE_ERROR
        await asyncio.wait_for(connection.disconnect(reason), CONNECT_TIMEOUT_S)
