"""A stranger asks a real car (real uvicorn, real WebSockets, real SQLite) whether a phone
is paired: an unknown id and a paired id with the wrong key get the same answer
(PROTOCOL.md 6.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import websockets

from carhub.runner import CarRunner
from phone_bridge.connect import ConnectOptions, Target
from phone_bridge.engine import do_pair, open_session
from phone_bridge.state import PhoneState
from protocol.connection import ConnectionFailed, PhoneConnection, State
from protocol.framing import FrameDecoder
from protocol.identity import Identity
from protocol.messages import Message, decode

OPTS = ConnectOptions(transport="lan", discover_timeout=1.0)


class _Claims(Identity):
    """A key pair that claims another device's id (a stranger naming a paired phone)."""

    claimed = ""

    @property
    def device_id(self) -> str:
        return self.claimed


@pytest.fixture
async def car(start_car: Callable[..., Awaitable[CarRunner]]) -> CarRunner:
    return await start_car("Oracle Car")


async def ask(car: CarRunner, identity: Identity) -> tuple[list[Message], list[int], str]:
    """Open a session as ``identity`` over a raw WebSocket; return what the car sent."""
    car_key = car.engine.identity.public_key
    conn = PhoneConnection(identity, "Stranger", car_public_key=car_key)
    frames = FrameDecoder()
    got: list[Message] = []
    sizes: list[int] = []
    async with websockets.connect(f"ws://{car.config.lan_endpoint}/") as ws:
        await ws.send(conn.data_to_send())
        async with asyncio.timeout(5):
            async for data in ws:
                assert isinstance(data, bytes)
                sizes.append(len(data))
                frames.receive_data(data)
                while (payload := frames.next_frame()) is not None:
                    got.append(decode(payload))
                if conn.state is not State.CLOSED:
                    conn.receive_data(data, 1.0)
                    if out := conn.data_to_send():
                        await ws.send(out)
    reasons = []
    while (ev := conn.next_event()) is not None:
        if isinstance(ev, ConnectionFailed):
            reasons.append(ev.error.reason.value)
    return got, sizes, ",".join(reasons)


async def test_an_unknown_phone_and_a_wrong_key_get_the_same_answer(
    car: CarRunner, tmp_path: Path
) -> None:
    phone = PhoneState(tmp_path / "phone")
    assert car.config.lan_endpoint is not None
    target = Target("Oracle Car", endpoint=car.config.lan_endpoint)

    async def yes(code: str) -> bool:
        return True

    paired, link = await do_pair(phone, target, OPTS, "Pixel", yes)
    await link.aclose("paired")

    _Claims.claimed = phone.identity.device_id
    wrong_key = await ask(car, _Claims.generate())
    unknown = await ask(car, Identity.generate())
    assert [type(m).__name__ for m in unknown[0]] == ["Hello", "Error"]
    assert unknown[0] == wrong_key[0]  # the same Hello and the same Error(handshake-failed)
    assert unknown[1] == wrong_key[1] and unknown[2] == wrong_key[2] == "handshake-failed"
    # The paired phone itself still gets its session.
    target.paired = paired
    session = await open_session(phone, target, OPTS, "Pixel")
    await session.aclose("done")
