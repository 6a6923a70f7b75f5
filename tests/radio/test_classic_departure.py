"""A radio client that goes away (a killed phone) ends its BR/EDR links on the peers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from bumble import core, hci
from bumble.core import PhysicalTransport

from tests.radio.classic_rig import T, radio_with


async def _wait_for(condition: Callable[[], object], timeout: float) -> float:
    """Poll ``condition()`` until true; return the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_departed_client_ends_its_classic_links_on_the_peer() -> None:
    async with radio_with("car", "phone") as (server, (car, phone)):
        await phone.connect(car)
        assert len(car.device.connections) == 1
        # The phone's process dies: only its TCP connection closes, its host says nothing.
        await phone.transport.close()
        took = await _wait_for(lambda: car.disconnections, 1.0)
        assert car.disconnections == [hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR]
        assert car.device.connections == {}
        assert took < 1.0
        controller = next(iter(server.radio.link.controllers))
        assert controller.classic_connections == {}


async def test_departure_while_the_peer_is_still_being_paged_ends_the_request() -> None:
    # The phone pages the car and vanishes before the car's host accepts: no ghost entry.
    async with radio_with("car", "phone") as (server, (car, phone)):
        car.device.classic_accept_any = False
        requests: list[object] = []
        failures: list[Exception] = []
        car.device.host.on("connection_request", lambda *args: requests.append(args))
        car.device.on("connection_failure", failures.append)
        task = asyncio.ensure_future(
            phone.device.connect(str(car.address), transport=PhysicalTransport.BR_EDR)
        )
        await _wait_for(lambda: requests, T)
        await phone.transport.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        controller = next(iter(server.radio.link.controllers))
        await _wait_for(lambda: failures, 1.0)
        assert [getattr(f, "error_code", None) for f in failures] == [
            hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
        ]
        assert controller.classic_connections == {}


async def test_paging_an_absent_phone_times_out_and_keeps_the_car_on_the_air() -> None:
    async with radio_with("car") as (server, (car,)):
        with pytest.raises(core.ConnectionError) as failure:
            await asyncio.wait_for(
                car.device.connect("00:CA:48:AB:CD:EF", transport=PhysicalTransport.BR_EDR), T
            )
        assert failure.value.error_code == hci.HCI_ErrorCode.PAGE_TIMEOUT_ERROR
        # The car's controller is still on the radio, with no half-made connection.
        assert len(server.clients) == 1
        (controller,) = server.radio.link.controllers
        assert controller.classic_connections == {}
