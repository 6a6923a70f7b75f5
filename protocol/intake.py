"""The car's intake: how many unauthenticated connections may wait, per peer and in all.

Theory of operation. A connection to the car is *unauthenticated* from the moment it is
accepted (a TCP accept on the LAN, an LE connection over BLE) until its secure session is
up; then it leaves the intake. Anyone in range can open such connections, and each costs
the car a socket and buffers (a BLE controller has only a few connection slots), so one
``ConnectionIntake`` per car bounds them: at most ``MAX_PENDING_PER_PEER`` per peer
address and ``MAX_PENDING`` in all (PROTOCOL.md §3.2).

At a bound the newest connection is admitted and an older one goes instead:

* the peer is at its own bound: its oldest unauthenticated connection;
* the car is at its total bound: the oldest connection of the peer that holds the most.

Refusing the newest instead would let a flood that merely *holds* its slots lock a paired
phone out for as long as it lasts (refreshing each slot once per 10 s setup deadline is
enough). Closing the oldest means a flood must open connections faster than a phone
finishes its handshake (milliseconds on a LAN) to keep it out, and a flooding peer mostly
closes its own connections: a phone on another address holds one, never the most.

Transitions of one connection (a ``ticket``, in arrival order)::

    admit(peer)     -->  Admitted(ticket, evict=(older tickets to close now, if any))
    release(ticket) -->  its session is up, or it ended; idempotent

The shell carries out ``evict`` (closes those connections); they are no longer counted.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

__all__ = ["MAX_PENDING", "MAX_PENDING_PER_PEER", "Admitted", "ConnectionIntake"]

# A phone needs one connection at a time, and a retry or two may overlap a dying one; 8
# leaves room for a few phones behind one NAT address.
MAX_PENDING_PER_PEER = 8
# Each lives at most 10 s (the WebSocket handshake's timeout, then the setup deadline) and
# holds at most a 16 KiB message once open: far more than the handful of phones a car
# serves, far less than the file descriptors and memory a head unit has.
MAX_PENDING = 64


@dataclass(frozen=True)
class Admitted:
    """A connection is counted as ``ticket``; the shell closes the ``evict`` tickets."""

    ticket: int
    evict: tuple[int, ...] = ()


class ConnectionIntake:
    """Counts the car's unauthenticated connections and picks which go at a bound.

    Args:
        per_peer: the most one peer address may hold.
        total: the most the car holds in all.
    """

    def __init__(self, per_peer: int = MAX_PENDING_PER_PEER, total: int = MAX_PENDING) -> None:
        if not 1 <= per_peer <= total:
            raise ValueError("need 1 <= per_peer <= total")
        self._per_peer = per_peer
        self._total = total
        self._tickets = itertools.count(1)
        self._by_peer: dict[str, deque[int]] = {}  # each deque oldest first
        self._peer_of: dict[int, str] = {}

    def admit(self, peer: str) -> Admitted:
        """Count a new connection from ``peer``; say which older ones it displaces."""
        evict: tuple[int, ...] = ()
        held = self._by_peer.get(peer)
        if held is not None and len(held) >= self._per_peer:
            evict = (held[0],)
        elif len(self._peer_of) >= self._total:
            evict = (self._busiest()[0],)
        for ticket in evict:
            self.release(ticket)
        ticket = next(self._tickets)
        self._by_peer.setdefault(peer, deque()).append(ticket)
        self._peer_of[ticket] = peer
        return Admitted(ticket, evict)

    def release(self, ticket: int) -> None:
        """Stop counting ``ticket`` (its session is up, or it ended); idempotent."""
        peer = self._peer_of.pop(ticket, None)
        if peer is None:
            return
        held = self._by_peer[peer]
        held.remove(ticket)
        if not held:
            del self._by_peer[peer]

    def pending(self, peer: str | None = None) -> int:
        """Return how many unauthenticated connections ``peer`` (or the car) holds."""
        if peer is None:
            return len(self._peer_of)
        return len(self._by_peer.get(peer, ()))

    def _busiest(self) -> deque[int]:
        """The tickets of the peer holding the most; of those, the one waiting longest."""
        return max(self._by_peer.values(), key=lambda held: (len(held), -held[0]))
