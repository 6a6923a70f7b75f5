"""Write BD_ADDR on the emulated radio: a host keeps its Classic address across restarts."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from radio.bdaddr import claim_address, derived_address, stored_address
from radio.server import RadioServer
from tests.radio.classic_rig import open_host

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def server() -> AsyncIterator[RadioServer]:
    srv = RadioServer("127.0.0.1", 0)
    await srv.start()
    yield srv
    await srv.stop()


async def test_a_claimed_address_is_the_one_a_peer_connects_to_and_sees(
    server: RadioServer,
) -> None:
    car, phone = await open_host(server, "car"), await open_host(server, "phone")
    try:
        wanted = derived_address("car-1")
        assert await claim_address(car.device, wanted)
        assert car.address.to_string(False) == wanted
        connection = await phone.connect(car)
        assert connection.peer_address.to_string(False) == wanted
    finally:
        for h in (car, phone):
            await h.transport.close()


async def test_an_address_another_controller_has_is_refused(server: RadioServer) -> None:
    a, b = await open_host(server, "a"), await open_host(server, "b")
    try:
        assert not await claim_address(b.device, a.address.to_string(False))
        assert b.address != a.address
    finally:
        for h in (a, b):
            await h.transport.close()


async def test_a_restarted_host_gets_its_stored_address_back(
    server: RadioServer, tmp_path: Path
) -> None:
    path = tmp_path / "bd_addr"
    first = stored_address(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored_address(path) == first
    seen = []
    for _ in range(2):
        host = await open_host(server, "phone")
        assert await claim_address(host.device, first)
        seen.append(host.address.to_string(False))
        await host.transport.close()
        await asyncio.sleep(0.1)  # the radio drops the departed controller
    assert seen == [first, first]
