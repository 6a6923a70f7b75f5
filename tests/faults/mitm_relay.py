"""A man-in-the-middle relay between a real phone and a real car (issue 12, test_mitm).

    python -m tests.faults.mitm_relay --car HOST:PORT

It listens for phones on a free port of 127.0.0.1 and, for each phone that connects,
dials the car and runs *its own* fresh key pair toward each side: a fake car (the project's
``CarConnection``) toward the phone, a fake phone (``PhoneConnection``) toward the car. The
names in its Hellos are copied from the real ends, so both users see what they expect; it
accepts every code itself. What it cannot do is make the two codes equal, so the users,
who compare them, reject. Each car-side dial comes from a fresh 127.0.0.x address and each
attempt from fresh keys, so the car's per-address and per-id rate limits do not end the test
early (the car-wide budget still counts).

Prints JSON lines on stdout: ``ready`` (``endpoint``), then per attempt ``codes``
(``to_phone``, ``to_car``, the relay's ``fake_phone_id``/``fake_car_id``) and ``ended``
(each leg's failure reason, or ``paired``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import time
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection

from protocol.admission import PairingAdmission
from protocol.connection import (
    CarConnection,
    ConnectionFailed,
    PairingCode,
    PeerHello,
    PhoneConnection,
    PinRequested,
    SessionEstablished,
)
from protocol.framing import FrameDecoder
from protocol.identity import Identity
from protocol.messages import Hello, decode

__all__ = ["main"]

Conn = CarConnection | PhoneConnection
Socket = ServerConnection | ClientConnection
_SOURCES = (f"127.0.0.{i}" for i in itertools.cycle(range(2, 250)))


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _now() -> float:
    return time.monotonic()


async def _leg(conn: Conn, ws: Socket, seen: dict[str, Any], leg: str) -> None:
    """Pump one leg: bytes in, events handled (the relay accepts every code), bytes out."""

    async def flush() -> None:
        # Events first: a peer that closed at once must not hide why (a failed send).
        while (event := conn.next_event()) is not None:
            if isinstance(event, PairingCode):
                seen[f"to_{leg}"] = event.code
                conn.confirm_pairing(True, _now())
            elif isinstance(event, PinRequested) and isinstance(conn, CarConnection):
                conn.pin_stored(_now())
            elif isinstance(event, PeerHello):
                seen[f"{leg}_hello"] = event
            elif isinstance(event, ConnectionFailed):
                seen.setdefault(f"{leg}_end", event.error.reason.value)
            elif isinstance(event, SessionEstablished):
                seen[f"{leg}_end"] = "paired"
        if out := conn.data_to_send():
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(out)

    await flush()
    with contextlib.suppress(websockets.ConnectionClosed):
        while f"{leg}_end" not in seen:
            try:
                data = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                conn.tick(_now())
            else:
                conn.receive_data(data if isinstance(data, bytes) else data.encode(), _now())
            await flush()
    seen.setdefault(f"{leg}_end", "closed")


async def _first_hello(ws: ServerConnection) -> tuple[bytes, Hello]:
    """Read the phone's opening bytes up to its whole Hello (kept, to feed the fake car)."""
    raw, decoder = b"", FrameDecoder()
    while True:
        data = await asyncio.wait_for(ws.recv(), 10)
        chunk = data if isinstance(data, bytes) else data.encode()
        raw += chunk
        decoder.receive_data(chunk)
        if (payload := decoder.next_frame()) is not None:
            hello = decode(payload)
            assert isinstance(hello, Hello)
            return raw, hello


async def relay(phone_ws: ServerConnection, car: str) -> None:
    """Sit between one phone and the car with two fresh key pairs of the relay's own."""
    raw, hello = await _first_hello(phone_ws)
    fake_phone, fake_car = Identity.generate(), Identity.generate()
    seen: dict[str, Any] = {}
    async with websockets.connect(f"ws://{car}/", local_addr=(next(_SOURCES), 0),
                                  max_size=None, compression=None) as car_ws:  # fmt: skip
        to_car = PhoneConnection(fake_phone, hello.name, model=hello.model, now=_now())
        car_leg = asyncio.create_task(_leg(to_car, car_ws, seen, "car"))
        while "car_hello" not in seen and not car_leg.done():
            await asyncio.sleep(0.01)
        car_hello = seen.get("car_hello")
        name, model = (car_hello.name, car_hello.model) if car_hello else ("Car", "carhub")
        to_phone = CarConnection(fake_car, name, lookup_peer=lambda _id: None, model=model,
                                 admission=PairingAdmission(open_=True), now=_now())  # fmt: skip
        to_phone.receive_data(raw, _now())
        await asyncio.gather(car_leg, _leg(to_phone, phone_ws, seen, "phone"))
    emit(event="codes", to_phone=seen.get("to_phone"), to_car=seen.get("to_car"),
         fake_phone_id=fake_phone.device_id, fake_car_id=fake_car.device_id)  # fmt: skip
    emit(event="ended", phone_leg=seen["phone_end"], car_leg=seen["car_end"])


async def serve(car: str) -> None:
    async def handler(ws: ServerConnection) -> None:
        try:
            await relay(ws, car)
        except Exception as exc:  # one attempt's trouble must not end the relay
            emit(event="error", error=repr(exc))

    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None,
                                compression=None) as server:  # fmt: skip
        port = next(iter(server.sockets)).getsockname()[1]
        emit(event="ready", endpoint=f"127.0.0.1:{port}")
        await asyncio.Future()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--car", required=True, help="the car's session endpoint HOST:PORT")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.car))
    sys.exit(0)


if __name__ == "__main__":
    main()
