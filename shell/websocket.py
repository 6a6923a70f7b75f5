"""The LAN transport: CarHub's byte stream over a WebSocket, for both ends.

The car runs the server (``start_websocket_server``; each phone that connects becomes a
``WebSocketTransport`` handed to ``on_link``), the phone dials it
(``WebSocketTransport.connect``). Each WebSocket binary message carries stream bytes; the
framing lives in ``protocol.framing``, so message boundaries carry no meaning.

Before the secure session is up the car's end accepts messages of the pre-session size only
(PROTOCOL.md §3.2), checked by websockets as the bytes arrive, fragments included, so an
unauthenticated peer cannot make the car buffer more; ``session_established`` lifts it to
a full frame. The car's server counts each connection with its ``IntakeGate`` from the TCP
accept on, before the WebSocket handshake, until the session is up or the connection ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from protocol.connection import PRE_SESSION_MAX_FRAME
from protocol.framing import pack_messages
from shell.gate import IntakeGate, Leave, stay
from shell.transport import BaseTransport, TransportError

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_MESSAGE",
    "PRE_SESSION_MESSAGE",
    "WebSocketTransport",
    "start_websocket_server",
]

# A phone gives up on an unreachable car after this long, then falls back to BLE: a car on
# the same LAN answers in milliseconds, and a user waits for the CLI.
CONNECT_TIMEOUT = 5.0
# Bounds one WebSocket message: a frame is at most 1 MiB plus its header.
MAX_MESSAGE = (1 << 20) + 64
# Bounds one message before the session: a pre-session frame plus its header. websockets
# refuses more (close code 1009) without buffering it, even split into fragments.
PRE_SESSION_MESSAGE = PRE_SESSION_MAX_FRAME + 64

LinkHandler = Callable[["WebSocketTransport"], Awaitable[None]]


class WebSocketTransport(BaseTransport):
    """One open WebSocket, either end.

    Args:
        ws: the open connection (a server's or a client's).
        closed_message: the message of the ``TransportError`` raised once it is closed.
        leave: called once the session is up (the car's gate stops counting it).

    Attributes:
        name: always ``"lan"``.
        peer: the other end's ``host:port``.
    """

    name = "lan"

    def __init__(
        self, ws: Connection, *, closed_message: str = "websocket closed", leave: Leave = stay
    ) -> None:
        self._ws = ws
        self._closed_message = closed_message
        self._leave = leave
        addr = ws.remote_address
        self.peer = f"{addr[0]}:{addr[1]}" if addr else "?"

    @classmethod
    async def connect(
        cls, endpoint: str, *, timeout: float = CONNECT_TIMEOUT
    ) -> WebSocketTransport:
        """Dial the car's session endpoint at ``host:port``.

        Args:
            endpoint: ``host:port``.
            timeout: seconds to wait for the TCP connection and the WebSocket handshake.

        Returns:
            The open transport.

        Raises:
            TransportError: the car is unreachable or refused the WebSocket.
        """
        url = f"ws://{endpoint}/"
        try:
            ws = await asyncio.wait_for(
                connect(url, max_size=MAX_MESSAGE, compression=None, open_timeout=None),
                timeout,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise TransportError(f"cannot reach the car at {endpoint}: {_why(exc)}") from exc
        return cls(ws, closed_message="the car closed the connection")

    async def send(self, data: bytes) -> None:
        """Send stream bytes as binary messages of whole frames, each at most ``MAX_MESSAGE``.

        Several frames queued at once (a sync's batches) can exceed one message's bound,
        which the peer would refuse with 1009; they go as several messages instead.

        Raises:
            TransportError: the WebSocket is closed.
        """
        try:
            for message in pack_messages(data, MAX_MESSAGE):
                await self._ws.send(message)
        except ConnectionClosed as exc:
            raise TransportError(self._closed_message) from exc

    async def recv(self) -> bytes:
        """Return the next message's bytes.

        Raises:
            TransportError: the WebSocket is closed.
        """
        try:
            msg = await self._ws.recv()
        except ConnectionClosed as exc:
            raise TransportError(self._closed_message) from exc
        # Frames are binary; a text message is fed as bytes and fails framing cleanly.
        return msg.encode() if isinstance(msg, str) else msg

    async def close(self) -> None:
        """Close the WebSocket (idempotent)."""
        await self._ws.close()

    def session_established(self) -> None:
        """Take messages up to a full frame from now on, and leave the car's gate."""
        # websockets fixes a frame's bound when its first bytes arrive. The phone sends
        # nothing between its last handshake message and the car's answer, which the
        # driver writes only after this, so its first large frame meets the new bound.
        self._ws.protocol.max_message_size = MAX_MESSAGE
        self._leave()


async def start_websocket_server(
    host: str, port: int, on_link: LinkHandler, *, gate: IntakeGate | None = None
) -> Server:
    """Start the car's phone-facing session endpoint.

    Messages are bounded by ``PRE_SESSION_MESSAGE`` until the link's
    ``session_established``, then by ``MAX_MESSAGE``.

    Args:
        host: the address to bind.
        port: the port to bind; 0 picks a free one.
        on_link: awaited for each phone that connects; the WebSocket closes when it returns.
        gate: counts each connection from its TCP accept until its session is up (and
            closes the ones it displaces); None counts nothing.

    Returns:
        The running server; ``server.sockets`` tells the bound port when ``port`` is 0.

    Raises:
        OSError: the address cannot be bound.
    """

    class Counted(_CountedConnection):
        counted_by = gate

    async def handler(ws: ServerConnection) -> None:
        leave = ws.leave if isinstance(ws, _CountedConnection) else stay
        await on_link(WebSocketTransport(ws, leave=leave))

    return await serve(
        handler,
        host,
        port,
        max_size=PRE_SESSION_MESSAGE,
        compression=None,
        create_connection=Counted,
    )


class _CountedConnection(ServerConnection):
    """A server connection that its server's gate counts from the TCP accept on."""

    counted_by: ClassVar[IntakeGate | None] = None
    leave: Leave

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.leave = stay
        if self.counted_by is not None:
            peer: Any = self.transport.get_extra_info("peername")
            host = str(peer[0]) if peer else "?"
            # Abort, not close: a displaced peer gets no closing handshake to stall on.
            self.leave = self.counted_by.enter(host, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.leave()


def _why(exc: BaseException) -> str:
    """Say in a few words why a connection attempt failed."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
