"""The phone's transport seam, like httpx's ``BaseTransport`` and bleak's backends.

A transport moves stream bytes (length-prefixed frames) to and from one car and nothing
else; ``phone_bridge.client`` runs the protocol over whichever one ``connect`` picks.
"""

from __future__ import annotations

import abc
import asyncio

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from shell.errors import TransportError

__all__ = ["BaseTransport", "TransportError", "WebSocketTransport"]

CONNECT_TIMEOUT = 5.0


class BaseTransport(abc.ABC):
    """One open link to a car."""

    name = ""

    @abc.abstractmethod
    async def send(self, data: bytes) -> None:
        """Send stream bytes; raises ``TransportError`` if the link is gone."""

    @abc.abstractmethod
    async def recv(self) -> bytes:
        """Return the next chunk of stream bytes; raises ``TransportError`` at the end."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the link (idempotent)."""


class WebSocketTransport(BaseTransport):
    """The LAN transport: the car's session endpoint over a WebSocket."""

    name = "lan"

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, endpoint: str) -> WebSocketTransport:
        """Connect to ``host:port``.

        Raises:
            TransportError: the car is unreachable or refused the WebSocket.
        """
        url = f"ws://{endpoint}/"
        try:
            ws = await asyncio.wait_for(
                connect(url, max_size=(1 << 20) + 64, compression=None, open_timeout=None),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise TransportError(f"cannot reach the car at {endpoint}: {_why(exc)}") from exc
        return cls(ws)

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise TransportError("the car closed the connection") from exc

    async def recv(self) -> bytes:
        try:
            msg = await self._ws.recv()
        except ConnectionClosed as exc:
            raise TransportError("the car closed the connection") from exc
        return msg.encode() if isinstance(msg, str) else msg

    async def close(self) -> None:
        await self._ws.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
