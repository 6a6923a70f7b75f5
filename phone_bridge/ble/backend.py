"""A bleak backend that runs on Bumble, so the phone speaks bleak's API in emulation too.

Theory of operation: bleak instantiates ``backend=Cls`` itself and reads
``Cls.__name__``, so configuration cannot be passed through ``functools.partial``.
``bleak_backends(radio)`` instead returns *subclasses* bound to one ``BumbleRadio``
(a Bumble host on one virtual or real controller), named ``BumbleScanner`` and
``BumbleClient``. With ``radio=None`` it returns ``(None, None)`` and bleak picks the
platform backend (BlueZ, CoreBluetooth, WinRT): callers run the same code either way.

One ``BumbleRadio`` is one phone's adapter. It can scan and hold connections to several
cars, but two connections to the same car need two radios, as on real hardware.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from pathlib import Path
from typing import Any, cast

from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import hci
from bumble.att import ATT_Error
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic

from radio.hci import HciSpec, open_hci

__all__ = ["BumbleClient", "BumbleRadio", "BumbleScanner", "bleak_backends"]

log = logging.getLogger(__name__)

DEFAULT_MTU = 247  # the MTU that fills one 251-byte DLE packet (247 + 4 L2CAP header)
_PROPERTY_NAMES: dict[int, CharacteristicPropertyName] = {
    Characteristic.Properties.BROADCAST: "broadcast",
    Characteristic.Properties.READ: "read",
    Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    Characteristic.Properties.WRITE: "write",
    Characteristic.Properties.NOTIFY: "notify",
    Characteristic.Properties.INDICATE: "indicate",
    Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
    Characteristic.Properties.EXTENDED_PROPERTIES: "extended-properties",
}
_UUID_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.SERVICE_DATA_128_BIT_UUID,
)


class BumbleRadio:
    """One phone's Bluetooth adapter: a Bumble host on an HCI transport.

    Args:
        spec: a Bumble transport string (``tcp-client:127.0.0.1:7000``) or a
            ``radio.LocalRadio``.
        mtu: the ATT MTU to request after connecting (23 = keep the default).
        btsnoop: optional btsnoop capture of this host's HCI traffic.
    """

    def __init__(self, spec: HciSpec, *, mtu: int = DEFAULT_MTU, btsnoop: Path | None = None):
        self.spec = spec
        self.mtu = mtu
        self._btsnoop = btsnoop
        self._device: Device | None = None
        self._transport: Any = None
        self._lock = asyncio.Lock()
        self.seen: dict[str, hci.Address] = {}  # plain address -> typed address

    async def device(self) -> Device:
        """Return the powered-on Bumble device, opening the transport on first use.

        Raises:
            radio.RadioUnavailableError: the transport could not be opened.
        """
        async with self._lock:
            if self._device is None:
                self._transport = await open_hci(self.spec, self._btsnoop)
                device = Device.with_hci(
                    "carhub-phone",
                    hci.Address.generate_static_address(),
                    self._transport.source,
                    self._transport.sink,
                )
                await device.power_on()
                self._device = device
            return self._device

    def address_of(self, address: str) -> hci.Address:
        """Return the typed address of a device seen in a scan (or guess from its bits)."""
        if address in self.seen:
            return self.seen[address]
        # Random static addresses have their two top bits set; anything else is public.
        kind = (
            hci.Address.RANDOM_DEVICE_ADDRESS
            if int(address[:2], 16) & 0xC0 == 0xC0
            else hci.Address.PUBLIC_DEVICE_ADDRESS
        )
        return hci.Address(address, kind)

    async def close(self) -> None:
        """Close the transport: every connection of this radio ends (idempotent)."""
        async with self._lock:
            if self._transport is not None:
                await self._transport.close()
            self._transport = None
            self._device = None


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend on a ``BumbleRadio`` (use ``bleak_backends``)."""

    radio: BumbleRadio

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **_kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._device: Device | None = None

    async def start(self) -> None:
        """Start scanning; ``seen_devices`` is cleared."""
        self.seen_devices = {}
        device = await self.radio.device()
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        self._device = device
        await device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        """Stop scanning."""
        device, self._device = self._device, None
        if device is None:
            return
        device.remove_listener(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        with contextlib.suppress(Exception):  # the radio may already be closed
            await device.stop_scanning()

    def _on_advertisement(self, adv: Advertisement) -> None:
        """Turn a Bumble advertisement into bleak's device + advertisement data."""
        data = adv.data
        service_data = {
            _uuid_str(uuid): bytes(payload)
            for kind in _SERVICE_DATA
            # Bumble types get_all() as every AD value type; these kinds hold (UUID, bytes).
            for uuid, payload in cast("list[tuple[UUID, bytes]]", data.get_all(kind))
        }
        listed = [
            _uuid_str(u)
            for kind in _UUID_LISTS
            for lst in cast("list[list[UUID]]", data.get_all(kind))
            for u in lst
        ]
        # Like BlueZ, count service-data UUIDs as advertised services, so a filter on the
        # CarHub UUID matches its 128-bit service data.
        service_uuids = list(dict.fromkeys(listed + list(service_data)))
        if not self.is_allowed_uuid(service_uuids):
            return
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        manufacturer = {
            int(company): bytes(payload)
            for company, payload in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA)
        }
        tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
        advertisement = AdvertisementData(
            local_name=name,
            manufacturer_data=manufacturer,
            service_data=service_data,
            service_uuids=service_uuids,
            tx_power=tx_power,
            rssi=adv.rssi,
            platform_data=(adv,),
        )
        address = _plain(adv.address)
        self.radio.seen[address] = adv.address
        device = self.create_or_update_device(address, address, name, adv.address, advertisement)
        self.call_detection_callbacks(device, advertisement)


class BumbleClient(BaseBleakClient):
    """bleak client backend on a ``BumbleRadio`` (use ``bleak_backends``)."""

    radio: BumbleRadio

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        kwargs.pop("services", None)
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.pop("disconnected_callback", None),
            timeout=kwargs.pop("timeout", 30.0),
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )

    @property
    def name(self) -> str:
        """The advertised name, or the address with dashes."""
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU."""
        return int(self._connection.att_mtu) if self._connection else 23

    @property
    def is_connected(self) -> bool:
        """Whether the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the MTU, discover every service and build ``services``."""
        device = await self.radio.device()
        try:
            connection = await device.connect(
                self.radio.address_of(self.address), timeout=self._timeout
            )
        except Exception as exc:
            raise BleakError(f"cannot connect to {self.address}: {exc}") from exc
        self._connection = connection
        self._closing = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._peer = Peer(connection)
        if self.radio.mtu > 23:
            await self._peer.request_mtu(self.radio.mtu)
        if pair:
            await connection.pair()
        self.services = await self._discover(self._peer)

    async def disconnect(self) -> None:
        """Disconnect (does not call the disconnected callback)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        self._closing = True
        with contextlib.suppress(Exception):  # the link may be gone already
            await connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair (LE Secure Connections through Bumble's SMP)."""
        await self._require().pair()

    async def unpair(self) -> None:
        """Forget this peer's keys in the radio's key store."""
        device = await self.radio.device()
        if device.keystore is not None:
            with contextlib.suppress(KeyError):
                await device.keystore.delete(str(self.radio.address_of(self.address)))

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **_: Any
    ) -> bytearray:
        """Read a characteristic value (long reads included)."""
        return bytearray(await _att(characteristic.obj.read_value()))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **_: Any
    ) -> bytearray:
        """Read a descriptor value."""
        return bytearray(await _att(descriptor.obj.read_value()))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        """Write a characteristic, with or without response."""
        self._require()
        await _att(characteristic.obj.write_value(bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        """Write a descriptor (with response)."""
        await _att(descriptor.obj.write_value(bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: Any, **_: Any
    ) -> None:
        """Subscribe; ``callback(bytearray)`` runs for each notification."""
        await _att(characteristic.obj.subscribe(lambda value: callback(bytearray(value))))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        await _att(characteristic.obj.unsubscribe(force=True))

    def _require(self) -> Connection:
        """Return the connection or raise like bleak's platform backends."""
        if self._connection is None:
            raise BleakError("not connected")
        return self._connection

    def _on_disconnection(self, reason: int) -> None:
        """Forget the link; call the callback only if we did not ask for it."""
        self._connection = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        """Discover services, characteristics and descriptors into bleak's model."""
        collection = BleakGATTServiceCollection()
        for proxy in await peer.discover_services():
            service = BleakGATTService(proxy, proxy.handle, _uuid_str(proxy.uuid))
            collection.add_service(service)
            for char_proxy in await proxy.discover_characteristics():
                char = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    _uuid_str(char_proxy.uuid),
                    [n for flag, n in _PROPERTY_NAMES.items() if char_proxy.properties & flag],
                    lambda: self.mtu_size - 3,
                    service,
                )
                collection.add_characteristic(char)
                for desc_proxy in await char_proxy.discover_descriptors():
                    desc = BleakGATTDescriptor(
                        desc_proxy, desc_proxy.handle, _uuid_str(desc_proxy.type), char
                    )
                    collection.add_descriptor(desc)
        return collection


def bleak_backends(
    radio: HciSpec | BumbleRadio | None,
) -> tuple[type[BumbleScanner] | None, type[BumbleClient] | None]:
    """Return bleak backend classes bound to ``radio`` (``(None, None)``: platform).

    Args:
        radio: a ``BumbleRadio``, something to build one from, or ``None``.

    Returns:
        ``(scanner_cls, client_cls)`` to pass as ``backend=`` to BleakScanner/BleakClient.
    """
    if radio is None:
        return None, None
    if not isinstance(radio, BumbleRadio):
        radio = BumbleRadio(radio)
    scanner = type("BumbleScanner", (BumbleScanner,), {"radio": radio})
    client = type("BumbleClient", (BumbleClient,), {"radio": radio})
    return scanner, client


async def _att(awaitable: Any) -> Any:
    """Await a Bumble GATT operation, translating ATT errors to bleak's."""
    try:
        return await awaitable
    except ATT_Error as exc:
        raise BleakGATTProtocolError(exc.error_code) from exc


def _uuid_str(value: UUID) -> str:
    """Return the lower-case 128-bit string form bleak uses for every UUID."""
    return str(uuidlib.UUID(bytes=bytes(value.to_bytes(force_128=True))[::-1]))


def _plain(address: hci.Address) -> str:
    """Return ``AA:BB:CC:DD:EE:FF`` without Bumble's ``/P`` type suffix."""
    return str(address).split("/")[0]
