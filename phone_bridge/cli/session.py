"""Connecting to the car, for the commands that talk to one: one async context manager.

``connect_car`` resolves what the user named, opens a transport and a session (or pairs),
and closes the link on the way out; whatever fails inside leaves it as a ``BridgeError``
from ``phone_bridge.errors``, with its one line and exit code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from phone_bridge.cli.options import CarOptions, TransportChoice
from phone_bridge.client import CarLink
from phone_bridge.connect import Target, last_known, resolve
from phone_bridge.engine import open_session
from phone_bridge.errors import explain
from phone_bridge.state import PairedCar, PhoneState
from protocol.errors import ProtocolError
from shell.errors import TransportError

__all__ = ["LAST_KNOWN_TIMEOUT", "CarSession", "Opener", "connect_car"]

log = logging.getLogger("phone_bridge")
# Open a link to a resolved car: a session with a paired car, or a fresh pairing.
Opener = Callable[[Target], Awaitable[tuple[PairedCar, CarLink]]]
# Seconds for a session at a paired car's last known address before discovering it: a
# car on the LAN answers in milliseconds, and a dead address must not cost the full dial.
LAST_KNOWN_TIMEOUT = 2.0


@dataclass(frozen=True)
class CarSession:
    """An open, authenticated link to one car."""

    target: Target
    car: PairedCar
    link: CarLink


@asynccontextmanager
async def connect_car(
    state: PhoneState,
    car: str | Target | None,
    opts: CarOptions,
    *,
    closing: str = "",
    opener: Opener | None = None,
    resolved: Callable[[], None] = lambda: None,
) -> AsyncIterator[CarSession]:
    """Resolve the car, open the transport and the session; on exit, close the link.

    A car paired before, named by its id or name, is first dialled at the LAN address it
    was last met at (for at most ``LAST_KNOWN_TIMEOUT``), and discovered only if it is not
    there: an unmoved car then costs no mDNS browse.

    Args:
        state: this phone's state directory.
        car: what the user named (``None``: the first car found), or an already resolved
            ``Target``.
        opts: how to find and reach the car.
        closing: the reason the car is told when the link closes.
        opener: how to open the link (default: a session with a car paired before).
        resolved: called once the car is found, before it is dialled (for timings).

    Yields:
        The open session.

    Raises:
        BridgeError: any failure, inside the ``async with`` block too, mapped by ``explain``.
    """
    try:
        session = await _open(state, car, opts, opener, resolved)
        try:
            yield session
        finally:
            await session.link.aclose(closing)
    except Exception as exc:  # one error tree out of here
        err = explain(exc)
        if err is exc:
            raise
        raise err from exc


async def _open(
    state: PhoneState,
    car: str | Target | None,
    opts: CarOptions,
    opener: Opener | None,
    resolved: Callable[[], None],
) -> CarSession:
    """Find the car (its last known address first, for a session) and open the link."""
    if isinstance(car, Target):
        target = car
    else:
        fast = await _at_last_known(state, car, opts, resolved) if opener is None else None
        if fast is not None:
            return fast
        target = await resolve(car, state, opts.connect)
    resolved()
    paired, link = await (opener or _session_with(state, opts))(target)
    return CarSession(target, paired, link)


async def _at_last_known(
    state: PhoneState, car: str | None, opts: CarOptions, resolved: Callable[[], None]
) -> CarSession | None:
    """A session with the paired car ``car`` names, at its last LAN address; else None."""
    target = last_known(car, state, opts.connect)
    if target is None:
        return None
    resolved()
    lan = dataclasses.replace(opts, transport=TransportChoice.lan)
    try:
        paired, link = await asyncio.wait_for(
            _session_with(state, lan)(target), LAST_KNOWN_TIMEOUT
        )
    except (TransportError, ProtocolError, TimeoutError) as exc:
        # Moved, gone, or another car at that address (its key is not the pinned one).
        log.info("%s is not at %s (%s); looking for it", target.label, target.endpoint, exc)
        return None
    return CarSession(target, paired, link)


def _session_with(state: PhoneState, opts: CarOptions) -> Opener:
    """The default opener: an authenticated session with a car paired before."""

    async def open_(target: Target) -> tuple[PairedCar, CarLink]:
        link = await open_session(state, target, opts.connect, state.phone_name(opts.name))
        assert target.paired is not None  # open_session refuses an unpaired target
        return target.paired, link

    return open_
