"""The radio process: one virtual air, a fresh controller for every TCP client.

Theory of operation: each TCP connection speaks H4 HCI (what Bumble's ``tcp-client``
transport sends). On connect we attach a new ``AirController`` with the next unique public
address to the shared ``LocalRadio``; bytes from the socket are parsed into HCI packets
and fed to it, and what it emits is written back. When the client goes away (closed,
killed) the controller leaves the air: its connections end with reason 0x13 on the peer
side, its advertising stops, and it is removed from the link. A static controller per
port would instead keep ghost connections to a killed process.

With ``btsnoop`` every packet of every controller goes to one btsnoop v1 file. The
connection handles of different controllers can repeat in that file: Wireshark shows
them as one adapter, which is still the clearest picture of what went over the air.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import IO, Any

from bumble.snoop import BtSnooper, Snooper
from bumble.transport.common import PacketParser

from radio.air import AirController, LocalRadio

__all__ = ["RadioServer"]

log = logging.getLogger(__name__)

_H2C = Snooper.Direction.HOST_TO_CONTROLLER
_C2H = Snooper.Direction.CONTROLLER_TO_HOST


class _ToController:
    """Sink for packets parsed from the socket: snoop, then give them to the controller."""

    def __init__(self, controller: AirController, snooper: Snooper | None) -> None:
        self.controller = controller
        self.snooper = snooper

    def on_packet(self, packet: bytes) -> None:
        """Deliver one host-to-controller packet."""
        if self.snooper is not None:
            self.snooper.snoop(packet, _H2C)
        self.controller.on_packet(packet)


class _ToHost:
    """Sink for packets the controller emits: snoop, then write them to the socket."""

    def __init__(self, transport: asyncio.Transport, snooper: Snooper | None) -> None:
        self.transport = transport
        self.snooper = snooper

    def on_packet(self, packet: bytes) -> None:
        """Deliver one controller-to-host packet, unless the socket is gone."""
        if self.snooper is not None:
            self.snooper.snoop(packet, _C2H)
        if not self.transport.is_closing():
            self.transport.write(packet)


class _ClientProtocol(asyncio.Protocol):
    """One TCP client = one controller on the air."""

    def __init__(self, server: RadioServer) -> None:
        self.server = server
        self.controller: AirController | None = None
        self.parser: PacketParser | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        """Attach a fresh controller for this client."""
        self.transport = transport
        self.controller = self.server.radio.controller()
        self.controller.host = _ToHost(transport, self.server.snooper)
        self.parser = PacketParser(_ToController(self.controller, self.server.snooper))
        self.server.clients.add(self)
        peer = transport.get_extra_info("peername")
        self.server.say(f"join {self.controller.public_address} from {peer}")

    def data_received(self, data: bytes) -> None:
        """Feed socket bytes to the H4 parser."""
        assert self.parser is not None
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # a broken host must not take the radio down
            self.server.say(f"bad HCI from {self.controller}: {exc!r}; dropping client")
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Take the controller off the air."""
        self.drop()

    def drop(self) -> None:
        """Remove this client's controller (idempotent)."""
        if self.controller is None:
            return
        controller, self.controller = self.controller, None
        self.server.radio.remove(controller)
        self.server.clients.discard(self)
        self.server.say(f"leave {controller.public_address}")


class RadioServer:
    """A TCP server that puts one virtual controller on the air per client.

    Args:
        host: interface to listen on.
        port: TCP port (0 picks a free one; see ``port`` after ``start``).
        btsnoop: optional path of a btsnoop v1 capture of all HCI traffic.
    """

    def __init__(self, host: str, port: int, btsnoop: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.radio = LocalRadio()
        self.clients: set[_ClientProtocol] = set()
        self._btsnoop_path = btsnoop
        self._btsnoop_file: IO[bytes] | None = None
        self.snooper: Snooper | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Start listening.

        Raises:
            OSError: the address is in use or not available.
        """
        if self._btsnoop_path is not None:
            self._btsnoop_file = self._btsnoop_path.open("wb")
            self.snooper = BtSnooper(self._btsnoop_file)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ClientProtocol(self), self.host, self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.say(f"listening on {self.host}:{self.port}")

    async def stop(self) -> None:
        """Stop listening, drop every client and close the capture."""
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.close()
            client.drop()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._btsnoop_file is not None:
            self._btsnoop_file.close()
            self._btsnoop_file = None
            self.snooper = None

    def say(self, message: str) -> None:
        """Log a join/leave line to stderr (flushed: tests and operators read it live)."""
        print(f"carhub-radio: {message}", file=sys.stderr, flush=True)
