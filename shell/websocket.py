"""The LAN transport: CarHub's byte stream over a WebSocket, for both ends.

The car runs the server (``start_websocket_server``; each phone that connects becomes a
``WebSocketTransport`` handed to ``on_link``), the phone dials it
(``WebSocketTransport.connect``). Each WebSocket binary message carries stream bytes; the
framing lives in ``protocol.framing``, so message boundaries carry no meaning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from shell.transport import BaseTransport, TransportError

__all__ = ["CONNECT_TIMEOUT", "MAX_MESSAGE", "WebSocketTransport", "start_websocket_server"]

# A phone gives up on an unreachable car after this long, then falls back to BLE: a car on
# the same LAN answers in milliseconds, and a user waits for the CLI.
CONNECT_TIMEOUT = 5.0
# Bounds one WebSocket message: a frame is at most 1 MiB plus its header.
MAX_MESSAGE = (1 << 20) + 64

LinkHandler = Callable[["WebSocketTransport"], Awaitable[None]]


class WebSocketTransport(BaseTransport):
    """One open WebSocket, either end.

    Args:
        ws: the open connection (a server's or a client's).
        closed_message: the message of the ``TransportError`` raised once it is closed.

    Attributes:
        name: always ``"lan"``.
        peer: the other end's ``host:port``.
    """

    name = "lan"

    def __init__(self, ws: Connection, *, closed_message: str = "websocket closed") -> None:
        self._ws = ws
        self._closed_message = closed_message
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
        """Send stream bytes as one binary message.

        Raises:
            TransportError: the WebSocket is closed.
        """
        try:
            await self._ws.send(data)
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


async def start_websocket_server(host: str, port: int, on_link: LinkHandler) -> Server:
    """Start the car's phone-facing session endpoint.

    Args:
        host: the address to bind.
        port: the port to bind; 0 picks a free one.
        on_link: awaited for each phone that connects; the WebSocket closes when it returns.

    Returns:
        The running server; ``server.sockets`` tells the bound port when ``port`` is 0.

    Raises:
        OSError: the address cannot be bound.
    """

    async def handler(ws: ServerConnection) -> None:
        await on_link(WebSocketTransport(ws))

    return await serve(handler, host, port, max_size=MAX_MESSAGE, compression=None)


def _why(exc: BaseException) -> str:
    """Say in a few words why a connection attempt failed."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
