"""Bumble Classic hosts on a real in-process ``RadioServer``: one TCP client per Device."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bumble import hci
from bumble.core import PhysicalTransport
from bumble.device import Connection, Device
from bumble.keys import KeyStore, MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport

from radio.server import RadioServer

T = 5.0  # every wait on the air has this timeout


class CountingDelegate(PairingDelegate):
    """Numeric comparison delegate that records each code it was asked to confirm."""

    def __init__(self) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self.codes: list[int] = []

    async def compare_numbers(self, number: int, digits: int) -> bool:
        """Confirm the code (both users press yes) and remember it."""
        self.codes.append(number)
        return True


@dataclass
class Host:
    """A Bumble Device on the radio, its TCP transport, keystore and pairing delegate."""

    device: Device
    transport: Any
    keystore: KeyStore
    delegate: CountingDelegate
    disconnections: list[int] = field(default_factory=list)

    @property
    def address(self) -> hci.Address:
        return self.device.public_address

    async def connect(self, other: Host) -> Connection:
        """Open a BR/EDR ACL to ``other`` and wait until both sides have it."""
        accepted = asyncio.get_running_loop().create_future()
        other.device.once("connection", accepted.set_result)
        connection = await asyncio.wait_for(
            self.device.connect(str(other.address), transport=PhysicalTransport.BR_EDR), T
        )
        peer_side: Connection = await asyncio.wait_for(accepted, T)
        peer_side.on("disconnection", other.disconnections.append)
        connection.on("disconnection", self.disconnections.append)
        return connection

    async def stored_key(self, other: Host) -> bytes | None:
        keys = await self.keystore.get(str(other.address))
        return None if keys is None or keys.link_key is None else keys.link_key.value


async def open_host(server: RadioServer, name: str, keystore: KeyStore | None = None) -> Host:
    """Join the radio over TCP as a classic-enabled Bumble Device that pairs with SSP."""
    transport = await open_transport(f"tcp-client:127.0.0.1:{server.port}")
    device = Device.with_hci(name, hci.Address("F0:F1:F2:F3:F4:F5"), transport.source,
                             transport.sink)
    device.classic_enabled = True
    store = keystore if keystore is not None else MemoryKeyStore()
    device.keystore = store
    delegate = CountingDelegate()
    device.pairing_config_factory = lambda _connection: PairingConfig(
        sc=True, mitm=True, bonding=True, delegate=delegate
    )
    await asyncio.wait_for(device.power_on(), T)
    return Host(device, transport, store, delegate)


@asynccontextmanager
async def radio_with(*names: str) -> AsyncIterator[tuple[RadioServer, list[Host]]]:
    """A radio server on a free port with one Host per name; all closed at the end."""
    server = RadioServer("127.0.0.1", 0)
    await server.start()
    hosts: list[Host] = []
    try:
        for name in names:
            hosts.append(await open_host(server, name))
        yield server, hosts
    finally:
        for host in hosts:
            await host.transport.close()
        await server.stop()
