"""The car's transport seam: one ``Link`` per connected phone, whatever carries it.

A link moves stream bytes (length-prefixed frames) and nothing else; the protocol lives in
``protocol.connection``. The WebSocket server here and ``carhub.ble`` both produce links and
hand them to the same ``Engine.serve_link``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["Link", "WebSocketLink", "start_websocket_server"]

log = logging.getLogger("carhub.links")


class Link(Protocol):
    """What a transport gives the engine for one phone."""

    transport_name: str
    peer: str

    async def send(self, data: bytes) -> None: ...
    async def recv(self) -> bytes: ...
    async def close(self) -> None: ...


class WebSocketLink:
    """A phone connected to the session endpoint over a WebSocket."""

    transport_name = "lan"

    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws
        addr = ws.remote_address
        self.peer = f"{addr[0]}:{addr[1]}" if addr else "?"

    async def send(self, data: bytes) -> None:
        """Send stream bytes as one binary message."""
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise ConnectionError("websocket closed") from exc

    async def recv(self) -> bytes:
        """Return the next binary message; text messages are a protocol violation."""
        try:
            msg = await self._ws.recv()
        except ConnectionClosed as exc:
            raise ConnectionError("websocket closed") from exc
        if isinstance(msg, str):
            # Frames are binary; a text message is fed as bytes and fails framing cleanly.
            return msg.encode()
        return msg

    async def close(self) -> None:
        """Close the WebSocket."""
        await self._ws.close()


async def start_websocket_server(
    host: str, port: int, on_link: Callable[[WebSocketLink], Awaitable[None]]
) -> Server:
    """Start the phone-facing session endpoint.

    Returns:
        The running server; ``server.sockets`` tells the bound port when ``port`` is 0.
    """

    async def handler(ws: ServerConnection) -> None:
        await on_link(WebSocketLink(ws))

    # max_size bounds one WebSocket message; a frame is at most 1 MiB plus its header.
    return await serve(handler, host, port, max_size=(1 << 20) + 64, compression=None)
