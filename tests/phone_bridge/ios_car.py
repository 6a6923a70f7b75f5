"""A tiny car-like peripheral for the emulated iPhone's tests, on Bumble's reference clients.

It advertises as issue 10's car does (Flags, the ANCS solicitation and the name; the AMS
solicitation in the scan response), and when ``auto`` is on, for each connection: probes
AMS (expects Insufficient Authentication), sends a Security Request, waits for the link to
be encrypted, then starts ``AmsClient`` and ``AncsClient`` and registers for the player and
the track. It also records the raw Entity Update and Data Source notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bumble import hci
from bumble.att import ATT_Error
from bumble.core import UUID, AdvertisingData
from bumble.device import AdvertisingType, Connection, Device, Peer
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.profiles.ams import AmsClient, EntityId, PlayerAttributeId, TrackAttributeId
from bumble.profiles.ancs import AncsClient

from protocol.apple import AMS_SERVICE_UUID, ANCS_SERVICE_UUID
from radio import LocalRadio
from radio.hci import open_hci

T = 10.0  # every wait on the phone
CAR_ADDRESS = "F1:22:33:44:55:66"


class CarDelegate(PairingDelegate):
    def __init__(self, codes: list[str], accept: bool) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self.codes = codes
        self.accepting = accept

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self.codes.append(f"{number:0{digits}d}")
        return self.accepting


class CarSession:
    """What the car did on one connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.refusals: list[int] = []
        self.ams: AmsClient | None = None
        self.ancs: AncsClient | None = None
        self.entity_updates: list[bytes] = []
        self.data_chunks: list[bytes] = []
        self.notifications: list[Any] = []
        self.ready = asyncio.Event()
        self.error: BaseException | None = None


class TinyCar:
    def __init__(self, air: LocalRadio, name: str = "Test Golf", *, auto: bool = True,
                 accept: bool = True) -> None:
        self.air = air
        self.name = name
        self.auto = auto
        self.codes: list[str] = []
        self.accept = accept
        self.keystore = MemoryKeyStore()
        self.paired: list[tuple[Connection, Any]] = []
        self.sessions: list[CarSession] = []
        self.new_session = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.device: Device | None = None
        self._transport: Any = None

    async def start(self) -> None:
        self._transport = await open_hci(self.air)
        device = Device.with_hci(self.name, hci.Address(CAR_ADDRESS), self._transport.source,
                                 self._transport.sink)
        device.keystore = self.keystore
        delegate = CarDelegate(self.codes, self.accept)
        device.smp_manager.pairing_config_factory = lambda _c: PairingConfig(
            sc=True, mitm=True, bonding=True, delegate=delegate,
            identity_address_type=PairingConfig.AddressType.RANDOM)
        device.on(device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        self.device = device
        await self.advertise()

    async def advertise(self) -> None:
        assert self.device is not None
        adv = AdvertisingData([
            (AdvertisingData.FLAGS, bytes([0x06])),
            (AdvertisingData.LIST_OF_128_BIT_SERVICE_SOLICITATION_UUIDS,
             UUID(ANCS_SERVICE_UUID).to_bytes()),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()) if len(self.name) <= 8
            else (AdvertisingData.SHORTENED_LOCAL_NAME, self.name.encode()[:8]),
        ])
        rsp = AdvertisingData([
            (AdvertisingData.LIST_OF_128_BIT_SERVICE_SOLICITATION_UUIDS,
             UUID(AMS_SERVICE_UUID).to_bytes()),
            (AdvertisingData.SERVICE_DATA_32_BIT_UUID,
             bytes.fromhex("01003e8d") + bytes([1, 0]) + bytes.fromhex("c0ffee01")),
        ])
        assert len(bytes(adv)) <= 31 and len(bytes(rsp)) <= 31
        await self.device.start_advertising(
            advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
            own_address_type=hci.OwnAddressType.RANDOM,
            advertising_data=bytes(adv), scan_response_data=bytes(rsp),
            advertising_interval_min=20, advertising_interval_max=30, auto_restart=True,
        )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    def _on_connection(self, connection: Connection) -> None:
        session = CarSession(connection)
        self.sessions.append(session)
        connection.on(connection.EVENT_PAIRING, lambda keys: self.paired.append((connection, keys)))
        self.new_session.set()
        if self.auto:
            task = asyncio.create_task(self._run(session))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def session(self, index: int) -> CarSession:
        async def wait() -> CarSession:
            while len(self.sessions) <= index:
                self.new_session.clear()
                await self.new_session.wait()
            return self.sessions[index]
        return await asyncio.wait_for(wait(), T)

    async def _run(self, s: CarSession) -> None:
        try:
            await self._secure_and_start(s)
        except Exception as exc:  # the test looks at s.error and s.ready
            s.error = exc

    async def _secure_and_start(self, s: CarSession) -> None:
        peer = Peer(s.connection)
        ams = await asyncio.wait_for(AmsClient.for_peer(peer), T)
        assert ams is not None
        try:
            await asyncio.wait_for(ams._ams_proxy.entity_attribute.read_value(), T)
        except ATT_Error as exc:
            s.refusals.append(exc.error_code)
        encrypted = asyncio.Event()
        s.connection.on(s.connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, encrypted.set)
        s.connection.request_pairing()  # the peripheral's SMP Security Request
        await asyncio.wait_for(encrypted.wait(), T)
        await asyncio.sleep(0.2)  # key distribution ends after the encryption change
        await asyncio.wait_for(ams._ams_proxy.entity_update.subscribe(s.entity_updates.append), T)
        await asyncio.wait_for(ams.start(), T)
        await asyncio.wait_for(ams.observe(EntityId.PLAYER, [
            PlayerAttributeId.NAME, PlayerAttributeId.PLAYBACK_INFO]), T)
        await asyncio.wait_for(ams.observe(EntityId.TRACK, [
            TrackAttributeId.ARTIST, TrackAttributeId.ALBUM, TrackAttributeId.TITLE,
            TrackAttributeId.DURATION]), T)
        ancs = await asyncio.wait_for(AncsClient.for_peer(peer), T)
        assert ancs is not None
        ancs.on(ancs.EVENT_NOTIFICATION, s.notifications.append)
        await asyncio.wait_for(ancs._ancs_proxy.data_source.subscribe(s.data_chunks.append), T)
        await asyncio.wait_for(ancs.start(), T)
        s.ams, s.ancs = ams, ancs
        s.ready.set()

    async def disconnect(self, s: CarSession) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(s.connection.disconnect(), T)
