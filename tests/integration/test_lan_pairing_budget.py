"""The car-wide pairing budget over a real car (real websockets, uvicorn, SQLite): Hellos
that strangers send from many addresses while the window is closed do not lock the owner
out once the car's user opens it (issue 9 item 8, PROTOCOL.md 5.3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import websockets

from carhub.runner import CarRunner
from phone_bridge.connect import ConnectOptions, Target
from phone_bridge.engine import do_pair
from phone_bridge.state import PhoneState
from protocol.framing import FrameDecoder, encode_frame
from protocol.identity import Identity
from protocol.messages import Error, Hello, decode, encode

OPTS = ConnectOptions(transport="lan", discover_timeout=1.0)


@pytest.fixture
async def car(start_car: Callable[..., Awaitable[CarRunner]]) -> CarRunner:
    return await start_car("Budget Car", pairing_open=False)


async def stranger_says_hello(car: CarRunner, source: str) -> str:
    """Send a pair Hello with a fresh id from the loopback address ``source``; the reason."""
    hello = Hello([1], "phone", Identity.generate().device_id, "Stranger", "", "pair", 0)
    url = f"ws://127.0.0.1:{car.ws_port}"
    async with websockets.connect(url, local_addr=(source, 0), open_timeout=5) as ws:
        await ws.send(encode_frame(encode(hello)))
        decoder = FrameDecoder(16 * 1024)
        decoder.receive_data(bytes(await ws.recv()))
        payload = decoder.next_frame()
    assert payload is not None
    reply = decode(payload)
    assert isinstance(reply, Error)
    return reply.reason


async def test_hellos_while_the_window_is_closed_do_not_lock_the_owner_out(
    car: CarRunner, tmp_path: Path
) -> None:
    # 30 strangers, each from its own address, more than the car-wide budget of 20.
    reasons = {await stranger_says_hello(car, f"127.0.0.{10 + i}") for i in range(30)}
    assert reasons == {"pairing-closed"}
    car.engine.open_pairing(0)
    assert car.config.lan_endpoint is not None
    target = Target("Budget Car", endpoint=car.config.lan_endpoint)

    async def yes(code: str) -> bool:
        return True

    paired, link = await do_pair(PhoneState(tmp_path / "owner"), target, OPTS, "Owner", yes)
    await link.aclose("paired")
    assert paired.id == car.engine.identity.device_id
