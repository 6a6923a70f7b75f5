"""mDNS advertisement of the car: ``_carhub._tcp.local.`` through python-zeroconf.

The TXT record carries what a phone needs before it connects (PROTOCOL.md §1): protocol
version ``v``, device ``id``, ``name``, ``model``, ``pair`` (``1`` while the pairing window is
open) and ``ble`` (the BLE address, empty without BLE). The record is re-announced whenever
the pairing state changes, so phones that browse see it within one announcement.
"""

from __future__ import annotations

import logging
import socket

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from protocol.messages import PROTOCOL_VERSION

__all__ = ["SERVICE_TYPE", "CarAdvertiser", "txt_record"]

SERVICE_TYPE = "_carhub._tcp.local."
log = logging.getLogger("carhub.mdns")


def txt_record(
    *, device_id: str, name: str, model: str, pairing_open: bool, ble_address: str
) -> dict[str, str]:
    """Build the TXT properties documented in PROTOCOL.md."""
    return {
        "v": str(PROTOCOL_VERSION),
        "id": device_id,
        "name": name,
        "model": model,
        "pair": "1" if pairing_open else "0",
        "ble": ble_address,
    }


class CarAdvertiser:
    """Registers, updates and unregisters the car's mDNS service.

    Args:
        interface: the IP address to announce on and bind to ("127.0.0.1" in tests), or
            None for every interface.
        address: the address put in the A record, defaulting to ``interface``.
        port: the phone-facing WebSocket port.
    """

    def __init__(self, *, interface: str | None, address: str, port: int, device_id: str) -> None:
        self._interfaces = [interface] if interface else None
        self._address = address
        self._port = port
        # The instance name must be unique on the network; the device id makes it so.
        self._instance = f"carhub-{device_id}.{SERVICE_TYPE}"
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    def _build(self, props: dict[str, str]) -> ServiceInfo:
        return ServiceInfo(
            SERVICE_TYPE,
            self._instance,
            addresses=[socket.inet_aton(self._address)],
            port=self._port,
            properties=props,
            server=f"{self._instance.split('.')[0]}.local.",
        )

    async def start(self, props: dict[str, str]) -> None:
        """Register the service (after zeroconf's uniqueness probe)."""
        if self._interfaces:
            self._zc = AsyncZeroconf(interfaces=self._interfaces, ip_version=IPVersion.V4Only)
        else:
            self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self._info = self._build(props)
        await (await self._zc.async_register_service(self._info))
        log.info("mDNS: registered %s at %s:%d", self._instance, self._address, self._port)

    async def update(self, props: dict[str, str]) -> None:
        """Re-announce with new TXT properties (pairing state changed)."""
        if self._zc is None:
            return
        self._info = self._build(props)
        await (await self._zc.async_update_service(self._info))
        log.info("mDNS: re-announced (pair=%s)", props.get("pair"))

    async def stop(self) -> None:
        """Unregister (sends goodbye packets) and close."""
        if self._zc is None:
            return
        try:
            if self._info is not None:
                await (await self._zc.async_unregister_service(self._info))
        finally:
            await self._zc.async_close()
            self._zc = None
            log.info("mDNS: unregistered")
