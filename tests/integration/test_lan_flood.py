"""Unauthenticated peers against the whole car in the test's event loop (real uvicorn, real
WebSockets, real SQLite), with paired phones driven by the phone engine as ``phone-bridge``
does: what a stranger can make the car hold before the session (PROTOCOL.md §3.2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from carhub.runner import CarRunner
from phone_bridge.client import CarLink
from phone_bridge.connect import ConnectOptions, Target
from phone_bridge.engine import Contacts, do_pair, open_session, sync_once
from phone_bridge.state import PhoneState
from protocol.connection import SETUP_TIMEOUT
from protocol.contacts import Contact, Phone, Photo, photo_hash
from protocol.intake import MAX_PENDING, MAX_PENDING_PER_PEER

OPTS = ConnectOptions(transport="lan", discover_timeout=1.0)


@pytest.fixture
async def car(start_car: Callable[..., Awaitable[CarRunner]]) -> CarRunner:
    return await start_car("Flood Car")


async def pair(car: CarRunner, state: PhoneState) -> Target:
    assert car.config.lan_endpoint is not None
    target = Target("Flood Car", endpoint=car.config.lan_endpoint)

    async def yes(code: str) -> bool:
        return True

    paired, link = await do_pair(state, target, OPTS, "Pixel", yes)
    await link.aclose("paired")
    target.paired = paired
    return target


def book_with_photos(n: int, photo_size: int) -> Contacts:
    """Contacts with random (incompressible) photos: their batches are large frames."""
    photos = [os.urandom(photo_size) for _ in range(n)]
    return Contacts(
        [
            Contact(
                f"uid-{i}", f"Friend {i}", phones=(Phone(f"+1555{i:07d}"),), photo=photo_hash(data)
            )
            for i, data in enumerate(photos)
        ],
        {photo_hash(d): Photo(photo_hash(d), "image/jpeg", d) for d in photos},
    )


async def sync(state: PhoneState, target: Target, contacts: Contacts) -> int:
    """Open a session, sync ``contacts`` once, close; return how many were added."""
    assert target.paired is not None
    link: CarLink = await open_session(state, target, OPTS, "Pixel")
    try:
        return (await sync_once(state, link, target.paired, contacts)).added
    finally:
        await link.aclose("done")


async def flood(endpoint: str, count: int, sources: Iterable[str]) -> list[ClientConnection]:
    """Open ``count`` WebSockets that never say Hello; return those the car let open."""
    srcs = list(sources)

    async def one(i: int) -> ClientConnection:
        src = (srcs[i % len(srcs)], 0)
        return await websockets.connect(f"ws://{endpoint}/", local_addr=src, open_timeout=5)

    got = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    return [ws for ws in got if isinstance(ws, ClientConnection)]


def still_open(conns: list[ClientConnection]) -> list[ClientConnection]:
    return [ws for ws in conns if ws.state is State.OPEN]


async def settle(conns: list[ClientConnection], most: int) -> list[ClientConnection]:
    """Wait (briefly) until at most ``most`` of ``conns`` are open; return those."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            while len(still_open(conns)) > most:
                await asyncio.sleep(0.05)
    return still_open(conns)


async def close_all(conns: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


async def test_an_unfinished_fragment_over_16_kib_before_the_session_is_refused(
    car: CarRunner,
) -> None:
    async def unfinished(size: int) -> tuple[float, int | None]:
        ws = await websockets.connect(f"ws://{car.config.lan_endpoint}/", max_size=None)
        never = asyncio.Event()

        async def fragments() -> AsyncIterator[bytes]:
            yield os.urandom(size)  # the first fragment of a message that never ends
            await never.wait()

        started = time.monotonic()
        sender = asyncio.create_task(ws.send(fragments()))
        try:
            async with asyncio.timeout(5):
                await ws.wait_closed()
        finally:
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            await ws.close()
        return time.monotonic() - started, ws.close_code

    for size in (16 * 1024 + 100, 1 << 20):
        took, code = await unfinished(size)
        # Refused as it arrives (1009: message too big), not held until the 10 s deadline.
        assert code == 1009 and took < 2, (size, took, code)
    async with asyncio.timeout(2):  # and the car counts none of them any more
        while car.gate.intake.pending():
            await asyncio.sleep(0.02)


async def test_a_paired_phone_still_syncs_large_frames(car: CarRunner, tmp_path: Path) -> None:
    state = PhoneState(tmp_path / "phone")
    target = await pair(car, state)
    contacts = book_with_photos(6, 300_000)  # ~300 kB frames, far over the pre-session 16 KiB
    assert await sync(state, target, contacts) == 6
    pid = state.identity.device_id
    total, _ = car.store.contacts(pid, limit=0)
    assert total == 6
    for h, photo in contacts.photos.items():
        stored = car.store.photo(pid, h)
        assert stored is not None and stored.data == photo.data


async def test_a_paired_phone_syncs_while_its_own_address_floods_the_car(
    car: CarRunner, tmp_path: Path
) -> None:
    state = PhoneState(tmp_path / "phone")
    target = await pair(car, state)
    assert car.config.lan_endpoint is not None
    conns = await flood(car.config.lan_endpoint, 200, ["127.0.0.1"])
    try:
        held = await settle(conns, MAX_PENDING_PER_PEER)
        # The car holds at most 8 unauthenticated connections from one address; the rest
        # were closed at once, not at the 10 s setup deadline.
        assert len(held) <= MAX_PENDING_PER_PEER
        assert car.gate.intake.pending("127.0.0.1") <= MAX_PENDING_PER_PEER
        # The phone, on the same address, gets through while the flood still holds its slots.
        assert await sync(state, target, book_with_photos(3, 40_000)) == 3
        assert len(still_open(conns)) >= MAX_PENDING_PER_PEER - 1
    finally:
        await close_all(conns)


async def test_a_flood_from_many_addresses_is_capped_in_total(
    car: CarRunner, tmp_path: Path
) -> None:
    state = PhoneState(tmp_path / "phone")
    target = await pair(car, state)
    assert car.config.lan_endpoint is not None
    sources = [f"127.0.0.{i}" for i in range(2, 27)]  # 25 addresses x 8 = 200
    conns = await flood(car.config.lan_endpoint, 200, sources)
    try:
        held = await settle(conns, MAX_PENDING)
        assert len(held) <= MAX_PENDING and car.gate.intake.pending() <= MAX_PENDING
        assert await sync(state, target, book_with_photos(3, 40_000)) == 3
        # The phone displaced a flooder's connection, not another phone's.
        assert len(still_open(conns)) >= MAX_PENDING - 1
    finally:
        await close_all(conns)


async def test_connections_that_never_say_hello_are_closed_at_the_setup_deadline(
    car: CarRunner,
) -> None:
    assert car.config.lan_endpoint is not None
    # Under both caps (4 addresses x 5), so only the setup deadline can close them.
    conns = await flood(car.config.lan_endpoint, 20, [f"127.0.0.{i}" for i in range(2, 6)])
    try:
        assert len(still_open(conns)) == 20
        started = time.monotonic()
        async with asyncio.timeout(SETUP_TIMEOUT + 5):
            await asyncio.gather(*(ws.wait_closed() for ws in conns))
        # The car hung up on every one (PROTOCOL.md §3.2), at the deadline, not before.
        assert time.monotonic() - started > SETUP_TIMEOUT - 2
        assert car.gate.intake.pending() == 0
    finally:
        await close_all(conns)
