"""A small publish/subscribe hub for the dashboard's live updates (``/api/events``)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["EventHub"]


class EventHub:
    """Fans JSON-able events out to every subscriber queue.

    A slow subscriber never blocks the car: its queue is bounded and, when full, the oldest
    event is dropped (each event carries the full current state, so the next one heals it).
    """

    def __init__(self, maxsize: int = 256) -> None:
        self._subs: set[asyncio.Queue[dict[str, Any]]] = set()
        self._maxsize = maxsize

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """Return a new queue that receives every later event."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._maxsize)
        self._subs.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to ``q``."""
        self._subs.discard(q)

    def publish(self, type_: str, data: Any) -> None:
        """Deliver ``{"type": type_, "data": data}`` to every subscriber."""
        event = {"type": type_, "data": data}
        for q in self._subs:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)
