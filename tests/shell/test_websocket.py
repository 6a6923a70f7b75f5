"""shell.websocket: the car's server and the phone's client, over a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import Server

from protocol.intake import ConnectionIntake
from shell.errors import TransportError
from shell.gate import IntakeGate
from shell.transport import BaseTransport
from shell.websocket import (
    CONNECT_TIMEOUT,
    MAX_MESSAGE,
    PRE_SESSION_MESSAGE,
    WebSocketTransport,
    start_websocket_server,
)


class Car:
    """A server whose link handler runs ``behaviour`` and records the links."""

    def __init__(self, behaviour: Callable[[WebSocketTransport], Awaitable[None]]) -> None:
        self.behaviour = behaviour
        self.links: list[WebSocketTransport] = []
        self.errors: list[TransportError] = []
        self.server: Server | None = None

    async def on_link(self, link: WebSocketTransport) -> None:
        self.links.append(link)
        try:
            await self.behaviour(link)
        except TransportError as exc:
            self.errors.append(exc)

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


async def echo(link: WebSocketTransport) -> None:
    while True:
        await link.send(await link.recv())


@pytest.fixture
async def car() -> AsyncIterator[Car]:
    car = Car(echo)
    car.server = await start_websocket_server("127.0.0.1", 0, car.on_link)
    try:
        yield car
    finally:
        car.server.close()
        await car.server.wait_closed()


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


def test_limits_are_the_ones_both_sides_used() -> None:
    assert MAX_MESSAGE == (1 << 20) + 64
    assert CONNECT_TIMEOUT == 5.0


async def test_round_trip_and_names(car: Car) -> None:
    phone = await WebSocketTransport.connect(car.endpoint)
    try:
        assert isinstance(phone, BaseTransport)
        assert phone.name == "lan" and phone.peer == car.endpoint
        await phone.send(b"hello")
        assert await asyncio.wait_for(phone.recv(), 5) == b"hello"
        [link] = car.links
        assert isinstance(link, BaseTransport)
        assert link.name == "lan"
        host, _, port = link.peer.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
    finally:
        await phone.close()


async def test_compression_is_off(car: Car) -> None:
    phone = await WebSocketTransport.connect(car.endpoint)
    try:
        await phone.send(b"x")
        await phone.recv()
        assert phone._ws.protocol.extensions == []
        assert car.links[0]._ws.protocol.extensions == []
    finally:
        await phone.close()


async def authenticated_echo(link: WebSocketTransport) -> None:
    link.session_established()  # what the driver does once the session is up
    await echo(link)


async def test_a_full_frame_fits_and_one_byte_more_does_not() -> None:
    car = Car(authenticated_echo)
    car.server = await start_websocket_server("127.0.0.1", 0, car.on_link)
    phone = await WebSocketTransport.connect(car.endpoint)
    try:
        big = bytes(MAX_MESSAGE)
        await phone.send(big)
        assert await asyncio.wait_for(phone.recv(), 10) == big
        # Queued frames longer than one message go out as several messages.
        await phone.send(big + b"!")
        assert await asyncio.wait_for(phone.recv(), 10) == big
        assert await asyncio.wait_for(phone.recv(), 10) == b"!"
        await phone._ws.send(big + b"!")  # one message too big: the car closes with 1009
        with pytest.raises(TransportError, match=r"^the car closed the connection$"):
            await asyncio.wait_for(phone.recv(), 5)
        await asyncio.wait_for(_until(lambda: bool(car.errors)), 5)
        assert str(car.errors[0]) == "websocket closed"
    finally:
        await phone.close()
        car.server.close()
        await car.server.wait_closed()


async def test_text_messages_come_out_as_bytes(car: Car) -> None:
    phone = await WebSocketTransport.connect(car.endpoint)
    try:
        await phone._ws.send("héllo")  # text: the link hands the bytes on to framing
        assert await asyncio.wait_for(phone.recv(), 5) == "héllo".encode()
    finally:
        await phone.close()


async def test_phone_close_ends_the_cars_link(car: Car) -> None:
    phone = await WebSocketTransport.connect(car.endpoint)
    await phone.send(b"x")
    await phone.recv()
    [link] = car.links
    await phone.close()
    await phone.close()  # idempotent
    await asyncio.wait_for(_until(lambda: bool(car.errors)), 5)
    assert isinstance(car.errors[0], ConnectionError)  # what asyncio code expects
    with pytest.raises(TransportError, match=r"^websocket closed$"):
        await link.send(b"late")
    with pytest.raises(TransportError, match=r"^the car closed the connection$"):
        await phone.send(b"late")


async def test_car_close_ends_the_phones_recv() -> None:
    async def hang_up(link: WebSocketTransport) -> None:
        await link.close()

    car = Car(hang_up)
    car.server = await start_websocket_server("127.0.0.1", 0, car.on_link)
    try:
        phone = await WebSocketTransport.connect(car.endpoint)
        with pytest.raises(TransportError, match=r"^the car closed the connection$"):
            await asyncio.wait_for(phone.recv(), 5)
        with pytest.raises(TransportError):
            await phone.send(b"after")
        await phone.close()
    finally:
        car.server.close()
        await car.server.wait_closed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_says_so() -> None:
    port = _free_port()
    with pytest.raises(TransportError) as info:
        await WebSocketTransport.connect(f"127.0.0.1:{port}")
    # What the phone CLI printed before the move: asyncio's strerror, lower-cased.
    assert str(info.value) == (
        f"cannot reach the car at 127.0.0.1:{port}: connect call failed ('127.0.0.1', {port})"
    )
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_a_silent_server_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(w)  # accept the TCP connection, never answer the handshake

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransportError) as info:
            await WebSocketTransport.connect(f"127.0.0.1:{port}", timeout=0.3)
        assert str(info.value) == f"cannot reach the car at 127.0.0.1:{port}: timed out"
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_a_server_that_refuses_the_upgrade() -> None:
    async def http_404(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readuntil(b"\r\n\r\n")
        w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await w.drain()
        w.close()

    server = await asyncio.start_server(http_404, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransportError) as info:
            await WebSocketTransport.connect(f"127.0.0.1:{port}")
        message = str(info.value)
        assert message.startswith(f"cannot reach the car at 127.0.0.1:{port}: ")
        assert "404" in message
    finally:
        server.close()
        await server.wait_closed()


async def test_a_bad_endpoint_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match=r"^cannot reach the car at no port: "):
        await WebSocketTransport.connect("no port")


async def test_the_gate_counts_connections_from_the_tcp_accept() -> None:
    gate = IntakeGate(ConnectionIntake(per_peer=2, total=4))
    car = Car(echo)
    car.server = await start_websocket_server("127.0.0.1", 0, car.on_link, gate=gate)
    host, port = car.endpoint.split(":")
    idle = [await asyncio.open_connection(host, int(port)) for _ in range(5)]
    try:
        # Five TCP connections that never start the WebSocket handshake: the three oldest
        # are closed at once (not at the handshake timeout), the two newest are kept.
        async def closed(reader: asyncio.StreamReader) -> bool:
            try:
                return await asyncio.wait_for(reader.read(1), 0.5) == b""
            except TimeoutError:
                return False
            except ConnectionError:
                return True

        assert [await closed(r) for r, _ in idle] == [True, True, True, False, False]
        assert gate.intake.pending("127.0.0.1") == 2
        # A phone still gets in (displacing one more), and leaves the count with its session.
        phone = await WebSocketTransport.connect(car.endpoint)
        await phone.send(b"x")
        assert await asyncio.wait_for(phone.recv(), 5) == b"x"
        car.links[0].session_established()
        assert gate.intake.pending("127.0.0.1") == 1
        await phone.close()
    finally:
        for _, w in idle:
            w.close()
        car.server.close()
        await car.server.wait_closed()
    assert gate.intake.pending() == 0


async def test_before_the_session_a_message_over_the_limit_closes_with_1009(car: Car) -> None:
    phone = await WebSocketTransport.connect(car.endpoint)
    try:
        await phone.send(bytes(PRE_SESSION_MESSAGE))  # the most a stranger may send
        assert await asyncio.wait_for(phone.recv(), 5) == bytes(PRE_SESSION_MESSAGE)
        await phone.send(bytes(PRE_SESSION_MESSAGE + 1))
        with pytest.raises(TransportError):
            await asyncio.wait_for(phone.recv(), 5)
        assert phone._ws.close_code == 1009
    finally:
        await phone.close()
