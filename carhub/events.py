"""A small publish/subscribe hub for the dashboard's live updates (``/api/events``).

An event is ``{"type": ..., "data": ...}``; ``data`` is what the REST API shows for the same
kind (a ``carhub.views`` model, or a list of them), turned into plain JSON values here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic_core import to_jsonable_python

__all__ = ["EventHub", "Subscription", "make_event"]


def make_event(type_: str, data: Any) -> dict[str, Any]:
    """Build one event, with ``data`` as JSON values (models dumped as ``mode="json"``).

    Args:
        type_: the event's kind (``status``, ``pairing``, ``phones``, ``media``, ...).
        data: a model, a list of models, or plain JSON values.

    Returns:
        ``{"type": type_, "data": ...}``, ready for ``json.dumps``.
    """
    return {"type": type_, "data": to_jsonable_python(data)}


def _key(type_: str, data: Any) -> tuple[str, str]:
    """Events that supersede each other share a key: one per type, per phone for
    ``contacts``, ``sync`` and ``calls``."""
    if type_ in ("contacts", "sync", "calls") and isinstance(data, dict):
        return type_, str(data.get("phone_id", ""))
    return type_, ""


class Subscription:
    """One subscriber's pending events, coalesced.

    Every event carries the full current state of its kind, so when a subscriber falls
    behind only the newest event of each kind is kept: a burst of ``media`` updates can
    never push a ``pairing`` update out, and memory stays bounded by the number of kinds.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._ready = asyncio.Event()

    def put(self, event: dict[str, Any]) -> None:
        key = _key(event["type"], event["data"])
        self._pending.pop(key, None)  # re-insert: the order is that of the latest updates
        self._pending[key] = event
        self._ready.set()

    async def get(self) -> dict[str, Any]:
        """Wait for and return the oldest pending event."""
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        key = next(iter(self._pending))
        return self._pending.pop(key)

    def get_nowait(self) -> dict[str, Any]:
        """Return the oldest pending event; raises ``KeyError`` when there is none."""
        key = next(iter(self._pending))
        return self._pending.pop(key)

    def empty(self) -> bool:
        return not self._pending


class EventHub:
    """Fans JSON-able events out to every subscriber."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        """Return a new subscription that receives every later event."""
        sub = Subscription()
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub``."""
        self._subs.discard(sub)

    def publish(self, type_: str, data: Any) -> None:
        """Deliver ``{"type": type_, "data": data}`` to every subscriber (see ``make_event``)."""
        event = make_event(type_, data)
        for sub in self._subs:
            sub.put(event)
