"""AMS and ANCS coming and going at runtime, announced with GATT Service Changed.

An iPhone withdraws ANCS while "Share System Notifications" is off for the accessory (and
until the user allows notifications after bonding), and AMS while no media app is around;
each time it indicates Service Changed (0x2A05) with the affected handle range.

Bumble 0.0.236's ``gatt_server.Server`` can only ``add_service``: handles are
``1 + len(attributes)`` and there is no way to remove one. So ``ServiceTable`` rebuilds the
attribute table: it empties ``attributes``, ``attributes_by_handle`` (a lookup cache) and
``services``, then adds the same ``Service`` objects again in a fixed order (GAP, GATT,
AMS, ANCS), which reassigns their handles. GAP and GATT come first, so the Service
Changed characteristic keeps its handle and the car's subscription to it stays valid;
the CCCD states the server kept for the changed range are dropped (the car subscribes
again after it rediscovers). The indication carries the first and last handle of the range
that differs between the old and new tables.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import Any

from bumble import gatt

__all__ = ["Layout", "ServiceTable", "service_changed_value"]

log = logging.getLogger(__name__)

INDICATE_TIMEOUT_S = 5.0


def service_changed_value(start: int, end: int) -> bytes:
    """The Service Changed value: the affected start and end handles, little-endian."""
    return struct.pack("<HH", start, end)


@dataclass(frozen=True)
class Layout:
    """Which services the phone offers, and the handles each spans (first, last)."""

    spans: tuple[tuple[str, int, int], ...]

    def changed_range(self, new: Layout) -> tuple[int, int] | None:
        """The handle range that differs from ``new`` (None if they are the same)."""
        if self.spans == new.spans:
            return None
        common = 0
        for a, b in zip(self.spans, new.spans, strict=False):
            if a != b:
                break
            common += 1
        tail = [*self.spans[common:], *new.spans[common:]]
        start = min(span[1] for span in tail)
        end = max(span[2] for span in tail)
        return start, end


class ServiceTable:
    """The phone's GATT table with optional services, rebuilt when they come and go.

    Args:
        device: the Bumble device (its ``gatt_server`` holds GAP and GATT already).
        optional: the optional services by name, in table order (``ams``, ``ancs``).
        offered: which of them to offer at first (default: all).
    """

    def __init__(self, device: Any, optional: dict[str, gatt.Service],
                 offered: dict[str, bool] | None = None) -> None:
        self._device = device
        self._server = device.gatt_server
        self._base = list(self._server.services)  # GAP and GATT, as the Device added them
        self._optional = dict(optional)
        self.offered: dict[str, bool] = {n: (offered or {}).get(n, True) for n in optional}
        for name, service in optional.items():
            if self.offered[name]:
                self._server.add_service(service)

    def layout(self) -> Layout:
        """The services in the table now and their handle spans."""
        names = {id(s): n for n, s in self._optional.items()}
        return Layout(tuple(
            (names.get(id(s), str(s.uuid)), s.handle, s.end_group_handle)
            for s in self._server.services
        ))

    def set(self, offered: dict[str, bool]) -> tuple[int, int] | None:
        """Offer exactly the services marked True; rebuild the table if that changes it.

        Args:
            offered: name -> offered, for some or all optional services.

        Returns:
            The affected handle range, or None when nothing changed.

        Raises:
            KeyError: an unknown service name.
        """
        for name in offered:
            if name not in self._optional:
                raise KeyError(name)
        wanted = {**self.offered, **offered}
        if wanted == self.offered:
            return None
        before = self.layout()
        self.offered = wanted
        self._rebuild()
        changed = before.changed_range(self.layout())
        if changed is not None:
            self._forget_subscriptions(*changed)
        return changed

    def _rebuild(self) -> None:
        server = self._server
        server.attributes = []
        server.attributes_by_handle = {}
        server.services = []
        for service in self._base:
            server.add_service(service)
        for name, service in self._optional.items():
            if self.offered[name]:
                server.add_service(service)
        log.info("GATT table rebuilt: %s", ", ".join(
            f"{n} 0x{a:04X}-0x{b:04X}" for n, a, b in self.layout().spans))

    def _forget_subscriptions(self, start: int, end: int) -> None:
        """Drop the CCCD states kept for handles in the changed range."""
        for cccds in self._server.subscribers.values():
            for handle in [h for h in cccds if start <= h <= end]:
                del cccds[handle]

    async def indicate(self, changed: tuple[int, int]) -> None:
        """Indicate Service Changed with ``changed`` to every car subscribed to it."""
        service = getattr(self._device, "gatt_service", None)
        characteristic = getattr(service, "service_changed_characteristic", None)
        if characteristic is None:
            log.warning("no Service Changed characteristic: the car is not told")
            return
        value = service_changed_value(*changed)
        for connection in list(self._device.connections.values()):
            try:
                await asyncio.wait_for(self._device.indicate_subscriber(
                    connection, characteristic, value), INDICATE_TIMEOUT_S)
            except Exception as exc:  # the car went away, or never confirmed
                log.info("Service Changed not confirmed by %s: %s",
                         connection.peer_address, exc)
