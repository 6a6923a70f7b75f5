"""What the car forgets when an iPhone says its services changed (Service Changed, 0x2A05).

Bumble's GATT client has no Service Changed handling of its own: a rediscovery only
appends, so services the phone removed stay cached, and subscriptions stay on handles
that may now belong to another service (ANCS moves onto AMS's handles when AMS goes).
A phone may also indicate in bursts, or without end: the car coalesces what arrives into
one pending range and rediscovers once per ``SETTLE_S``, whatever the rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["SETTLE_S", "ChangedRange", "forget"]

# Indications that arrive within this long of each other cost one rediscovery.
SETTLE_S = 0.2


class ChangedRange:
    """The union of the handle ranges indicated since the last rediscovery."""

    def __init__(self) -> None:
        self.pending: tuple[int, int] | None = None

    def add(self, start: int, end: int) -> bool:
        """Merge one indicated range; True if a rediscovery must be scheduled for it."""
        first = self.pending is None
        low, high = self.pending or (start, end)
        self.pending = (min(low, start), max(high, end))
        return first

    def take(self) -> tuple[int, int]:
        """Return the merged range and start afresh."""
        assert self.pending is not None
        taken, self.pending = self.pending, None
        return taken


def forget(client: Any, start: int, end: int, chars: Iterable[Any]) -> None:
    """Drop cached services in ``start..end`` and the subscriptions the car will renew.

    Args:
        client: the connection's ``bumble.gatt_client.Client``.
        start: first changed handle.
        end: last changed handle.
        chars: the characteristic proxies of the profiles about to restart: their
            subscriptions go too, or each restart would add one more callback.
    """
    client.services = [s for s in client.services if s.end_group_handle < start or s.handle > end]
    renewed = {c.handle for c in chars}
    for subscribers in (client.notification_subscribers, client.indication_subscribers):
        for handle in [h for h in subscribers if start <= h <= end or h in renewed]:
            del subscribers[handle]
