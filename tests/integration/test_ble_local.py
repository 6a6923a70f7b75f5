"""BLE byte pipe, in one process: the car's Bumble GATT server and bleak-on-Bumble phones
on a shared LocalRadio (real Bumble controllers and stacks, no sockets, no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError, BleakGATTProtocolErrorCode

from carhub.ble import BleCarServer, BleLink
from phone_bridge.ble import BleTransport, BumbleRadio, bleak_backends, scan_cars
from protocol.framing import FrameDecoder, encode_frame
from protocol.gatt import CHANNEL_IN_UUID, CHANNEL_OUT_UUID, INFO_UUID
from protocol.intake import ConnectionIntake
from radio import LocalRadio
from shell.gate import IntakeGate

DEVICE_ID = "c0ffee0123456789"
INFO: dict[str, object] = {
    "id": DEVICE_ID,
    "name": "Test Golf",
    "model": "VW Golf 8",
    "version": 1,
    "lan": ["192.168.1.20:8443"],
}


# tests/conftest.py's autouse no_leftovers fails a test that leaves tasks or processes.


class EchoCar:
    """A car whose link handler echoes every chunk and records its links."""

    def __init__(self, air: LocalRadio) -> None:
        self.links: list[BleLink] = []
        self.ended: list[BleLink] = []
        self.server = BleCarServer(
            air, name="Test Golf", device_id=DEVICE_ID, info=INFO, on_link=self.on_link
        )

    async def on_link(self, link: BleLink) -> None:
        self.links.append(link)
        link.session_established()  # a byte pipe: as if the session were up at once
        try:
            while True:
                await link.send(await link.recv())
        except ConnectionError:
            self.ended.append(link)


@pytest.fixture
async def air() -> LocalRadio:
    return LocalRadio()


@pytest.fixture
async def car(air: LocalRadio) -> AsyncIterator[EchoCar]:
    echo = EchoCar(air)
    await echo.server.start()
    yield echo
    await echo.server.stop()


async def read_exactly(transport: BleTransport, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        got += await transport.recv()
    return bytes(got)


async def test_scan_finds_car_with_service_data_and_name(air: LocalRadio, car: EchoCar) -> None:
    started = time.perf_counter()
    cars = await scan_cars(0.3, air)
    assert time.perf_counter() - started < 2
    assert len(cars) == 1
    found = cars[0]
    assert found.id_prefix == DEVICE_ID[:8]
    # 9 bytes: past the 8 that fit beside the ANCS solicitation (PROTOCOL.md §1.2).
    assert (found.name, found.name_complete) == ("Test Gol", False)
    assert found.version == 1
    assert found.pairing_open is False
    assert found.address == car.server.address
    car.server.set_pairing_open(True)
    await asyncio.sleep(0.05)
    assert (await scan_cars(0.3, air))[0].pairing_open is True


async def test_scan_with_nothing_advertising_is_empty(air: LocalRadio) -> None:
    assert await scan_cars(0.2, air) == []


async def test_info_is_read_on_connect(air: LocalRadio, car: EchoCar) -> None:
    transport = await BleTransport.connect(car.server.address, radio=air)
    try:
        assert transport.info is not None
        assert transport.info.id == DEVICE_ID
        assert transport.info.model == "VW Golf 8"
        assert transport.info.lan == ("192.168.1.20:8443",)
    finally:
        await transport.close()


@pytest.mark.parametrize("mtu", [23, 247])
async def test_100kb_both_ways_byte_exact(air: LocalRadio, car: EchoCar, mtu: int) -> None:
    phone = BumbleRadio(air, mtu=mtu)
    transport = await BleTransport.connect(car.server.address, radio=phone)
    try:
        assert transport.mtu == mtu
        await asyncio.sleep(0.05)
        assert car.links[0].mtu == mtu
        payload = os.urandom(100_000)
        frames = encode_frame(payload[:60_000]) + encode_frame(payload[60_000:])
        await transport.send(frames)
        echoed = await asyncio.wait_for(read_exactly(transport, len(frames)), 30)
        assert echoed == frames
        decoder = FrameDecoder()
        assert b"".join(decoder.frames(echoed)) == payload
    finally:
        await transport.close()
        await phone.close()


async def test_disallowed_access_gets_att_errors_fast(air: LocalRadio, car: EchoCar) -> None:
    _scanner_cls, client_cls = bleak_backends(BumbleRadio(air))
    assert client_cls is not None and client_cls.__name__ == "BumbleClient"
    async with BleakClient(car.server.address, backend=client_cls, timeout=5) as client:
        started = time.perf_counter()
        for uuid in (CHANNEL_IN_UUID, CHANNEL_OUT_UUID):
            with pytest.raises(BleakGATTProtocolError) as err:
                await client.read_gatt_char(uuid)
            assert err.value.code == BleakGATTProtocolErrorCode.READ_NOT_PERMITTED
        with pytest.raises(BleakGATTProtocolError) as err:
            await client.write_gatt_char(INFO_UUID, b"x", response=True)
        assert err.value.code == BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED
        assert time.perf_counter() - started < 2  # not bleak's 30 s timeout
        props = client.services.get_characteristic(CHANNEL_IN_UUID).properties
        assert props == ["write-without-response"]
    await client_cls.radio.close()


async def test_two_phones_at_once(air: LocalRadio, car: EchoCar) -> None:
    phones = [await BleTransport.connect(car.server.address, radio=air) for _ in range(2)]
    try:
        payloads = [os.urandom(20_000) for _ in phones]
        await asyncio.gather(*(p.send(d) for p, d in zip(phones, payloads, strict=True)))
        pairs = list(zip(phones, payloads, strict=True))
        reads = asyncio.gather(*(read_exactly(p, len(d)) for p, d in pairs))
        echoed = await asyncio.wait_for(reads, 30)
        assert echoed == payloads
        assert len({link.peer_address for link in car.links}) == 2
    finally:
        for phone in phones:
            await phone.close()


async def test_phone_disconnect_ends_car_recv(air: LocalRadio, car: EchoCar) -> None:
    transport = await BleTransport.connect(car.server.address, radio=air)
    await transport.send(b"hello")
    assert await asyncio.wait_for(read_exactly(transport, 5), 5) == b"hello"
    link = car.links[0]
    await transport.close()
    await asyncio.wait_for(_until(lambda: link in car.ended), 5)
    with pytest.raises(ConnectionError):
        await link.recv()
    with pytest.raises(ConnectionError):
        await link.send(b"late")
    assert car.server.links == []


async def test_car_stop_ends_phone_recv(air: LocalRadio) -> None:
    echo = EchoCar(air)
    await echo.server.start()
    transport = await BleTransport.connect(echo.server.address, radio=air)
    await echo.server.stop()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(transport.recv(), 5)
    with pytest.raises(ConnectionError):
        await transport.send(b"after")
    await transport.close()


async def test_connect_to_nobody_is_a_connection_error(air: LocalRadio) -> None:
    with pytest.raises(ConnectionError):
        await BleTransport.connect("00:CA:48:00:0F:FF", radio=air, timeout=0.5)


async def _until(predicate: object) -> None:
    while not predicate():  # type: ignore[operator]
        await asyncio.sleep(0.01)


class SilentCar(EchoCar):
    """A car whose link handler never reads, to fill a link's receive queue."""

    async def on_link(self, link: BleLink) -> None:
        self.links.append(link)
        await asyncio.Event().wait()  # cancelled by server.stop()


async def bare_client(air: LocalRadio, address: str) -> BleakClient:
    """A connected bleak client that has not subscribed to anything."""
    _scanner_cls, client_cls = bleak_backends(BumbleRadio(air))
    assert client_cls is not None
    client = BleakClient(address, backend=client_cls, timeout=5)
    await client.connect()
    return client


async def close_bare(client: BleakClient) -> None:
    await client.disconnect()
    await client._backend.radio.close()  # type: ignore[attr-defined]


async def test_writes_before_subscribe_are_dropped(air: LocalRadio, car: EchoCar) -> None:
    client = await bare_client(air, car.server.address)
    try:
        for _ in range(50):
            await client.write_gatt_char(CHANNEL_IN_UUID, b"early" * 40, response=False)
        await asyncio.sleep(0.1)
        [link] = car.server.links
        assert link._chunks.qsize() == 0 and link._chunks.queued_bytes == 0  # nothing piled up
        assert car.links == []  # no link handed to the app yet
        echoed = bytearray()
        await client.start_notify(CHANNEL_OUT_UUID, lambda _c, data: echoed.extend(data))
        await client.write_gatt_char(CHANNEL_IN_UUID, b"late", response=False)
        await asyncio.wait_for(_until(lambda: len(echoed) >= 4), 5)
        await asyncio.sleep(0.1)
        assert bytes(echoed) == b"late"  # the early writes never reach the app
    finally:
        await close_bare(client)


async def test_unsubscribed_connection_is_dropped_after_deadline(air: LocalRadio) -> None:
    echo = EchoCar(air)
    echo.server.subscribe_timeout = 0.5
    await echo.server.start()
    client = await bare_client(air, echo.server.address)
    try:
        assert len(echo.server.links) == 1
        started = time.perf_counter()
        await asyncio.wait_for(_until(lambda: not client.is_connected), 5)
        assert 0.3 < time.perf_counter() - started < 4  # not the 10 s default
        await asyncio.wait_for(_until(lambda: echo.server.links == []), 2)
        # A phone that does subscribe in time keeps its link past the deadline.
        transport = await BleTransport.connect(echo.server.address, radio=air)
        try:
            await asyncio.sleep(1.0)
            await transport.send(b"still here")
            assert await asyncio.wait_for(read_exactly(transport, 10), 5) == b"still here"
        finally:
            await transport.close()
    finally:
        await close_bare(client)
        await echo.server.stop()


async def test_receive_queue_overflow_disconnects_phone(air: LocalRadio) -> None:
    silent = SilentCar(air)
    silent.server.max_queued_bytes = 10_000
    await silent.server.start()
    transport = await BleTransport.connect(silent.server.address, radio=air)
    try:
        await asyncio.wait_for(_until(lambda: len(silent.links) == 1), 5)
        link = silent.links[0]
        await transport.send(b"x" * 5_000)  # under the bound: kept for the app
        await asyncio.sleep(0.1)
        assert not link.closed and link._chunks.queued_bytes <= 10_000
        with pytest.raises(ConnectionError):
            for _ in range(20):  # the car disconnects mid-flood
                await transport.send(b"y" * 2_000)
                await asyncio.sleep(0.01)
            await asyncio.wait_for(transport.recv(), 5)
        assert link.closed and link._chunks.qsize() <= 1  # only the end-of-link marker
        await asyncio.wait_for(_until(lambda: silent.server.links == []), 5)
    finally:
        await transport.close()
        await silent.server.stop()


async def test_before_the_session_a_phone_may_queue_16_kib_only(air: LocalRadio) -> None:
    silent = SilentCar(air)  # the default 2 MiB bound, once a session is up
    await silent.server.start()
    early = await BleTransport.connect(silent.server.address, radio=air)
    late = await BleTransport.connect(silent.server.address, radio=air)
    try:
        await asyncio.wait_for(_until(lambda: len(silent.links) == 2), 5)
        unauthenticated, authenticated = silent.links
        authenticated.session_established()
        for transport in (early, late):
            with contextlib.suppress(ConnectionError):
                for _ in range(10):  # 20 kB, the car reading none of it
                    await transport.send(b"z" * 2_000)
                    await asyncio.sleep(0.01)
        await asyncio.wait_for(_until(lambda: unauthenticated.closed), 5)
        assert unauthenticated._chunks.qsize() <= 1  # dropped: only the end-of-link marker
        assert not authenticated.closed and authenticated._chunks.queued_bytes >= 20_000
    finally:
        await early.close()
        await late.close()
        await silent.server.stop()


async def test_the_gate_disconnects_the_oldest_unauthenticated_link(air: LocalRadio) -> None:
    gate = IntakeGate(ConnectionIntake(per_peer=2, total=2))
    links: list[BleLink] = []

    async def hold(link: BleLink) -> None:
        links.append(link)
        await asyncio.Event().wait()  # cancelled by server.stop()

    server = BleCarServer(
        air, name="Test Golf", device_id=DEVICE_ID, info=INFO, on_link=hold, gate=gate
    )
    await server.start()
    phones: list[BleTransport] = []
    try:
        for _ in range(2):
            phones.append(await BleTransport.connect(server.address, radio=air))
        await asyncio.wait_for(_until(lambda: len(links) == 2), 5)
        links[1].session_established()  # authenticated: no longer counted
        assert gate.intake.pending() == 1
        for _ in range(2):
            phones.append(await BleTransport.connect(server.address, radio=air))
        await asyncio.wait_for(_until(lambda: len(links) == 4), 5)
        await asyncio.wait_for(_until(lambda: links[0].closed), 5)
        assert [link.closed for link in links] == [True, False, False, False]
        assert gate.intake.pending() == 2
    finally:
        for phone in phones:
            await phone.close()
        await server.stop()
    assert gate.intake.pending() == 0
