"""mDNS advertisement of the car: ``_carhub._tcp.local.`` through python-zeroconf.

The schema (service type, instance name, TXT record) is ``protocol.dnssd``; this module only
hands it to zeroconf. The record is re-announced whenever the pairing state changes, so
phones that browse see it within one announcement.
"""

from __future__ import annotations

import logging
import socket

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from protocol.dnssd import SERVICE_TYPE, TxtRecord, encode_txt, instance_name

__all__ = ["CarAdvertiser"]

log = logging.getLogger("carhub.mdns")


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
        self._instance = instance_name(device_id)
        self._zc: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    def _build(self, record: TxtRecord) -> ServiceInfo:
        return ServiceInfo(
            SERVICE_TYPE,
            self._instance,
            addresses=[socket.inet_aton(self._address)],
            port=self._port,
            properties=encode_txt(record),
            server=f"{self._instance.split('.')[0]}.local.",
        )

    async def start(self, record: TxtRecord) -> None:
        """Register the service with ``record`` (after zeroconf's uniqueness probe).

        Raises:
            LocalProtocolError: the record cannot be encoded (``protocol.dnssd``).
        """
        self._info = self._build(record)  # before opening sockets: a bad record leaks none
        if self._interfaces:
            self._zc = AsyncZeroconf(interfaces=self._interfaces, ip_version=IPVersion.V4Only)
        else:
            self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        await (await self._zc.async_register_service(self._info))
        log.info("mDNS: registered %s at %s:%d", self._instance, self._address, self._port)

    async def update(self, record: TxtRecord) -> None:
        """Re-announce with a new TXT record (pairing state changed)."""
        if self._zc is None:
            return
        self._info = self._build(record)
        await (await self._zc.async_update_service(self._info))
        log.info("mDNS: re-announced (pair=%d)", record.pairing_open)

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
