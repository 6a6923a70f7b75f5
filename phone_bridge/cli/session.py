"""Connecting to the car, for the commands that talk to one: one async context manager.

``connect_car`` resolves what the user named, opens a transport and a session (or pairs),
and closes the link on the way out; whatever fails inside leaves it as a ``BridgeError``
from ``phone_bridge.errors``, with its one line and exit code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from phone_bridge.cli.options import CarOptions
from phone_bridge.client import CarLink
from phone_bridge.connect import Target, resolve
from phone_bridge.engine import open_session
from phone_bridge.errors import explain
from phone_bridge.state import PairedCar, PhoneState

__all__ = ["CarSession", "Opener", "connect_car"]

# Open a link to a resolved car: a session with a paired car, or a fresh pairing.
Opener = Callable[[Target], Awaitable[tuple[PairedCar, CarLink]]]


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
) -> AsyncIterator[CarSession]:
    """Resolve the car, open the transport and the session; on exit, close the link.

    Args:
        state: this phone's state directory.
        car: what the user named (``None``: the first car found), or an already resolved
            ``Target``.
        opts: how to find and reach the car.
        closing: the reason the car is told when the link closes.
        opener: how to open the link (default: a session with a car paired before).

    Yields:
        The open session.

    Raises:
        BridgeError: any failure, inside the ``async with`` block too, mapped by ``explain``.
    """
    try:
        target = car if isinstance(car, Target) else await resolve(car, state, opts.connect)
        paired, link = await (opener or _session_with(state, opts))(target)
        try:
            yield CarSession(target, paired, link)
        finally:
            await link.aclose(closing)
    except Exception as exc:  # one error tree out of here
        err = explain(exc)
        if err is exc:
            raise
        raise err from exc


def _session_with(state: PhoneState, opts: CarOptions) -> Opener:
    """The default opener: an authenticated session with a car paired before."""

    async def open_(target: Target) -> tuple[PairedCar, CarLink]:
        link = await open_session(state, target, opts.connect, state.phone_name(opts.name))
        assert target.paired is not None  # open_session refuses an unpaired target
        return target.paired, link

    return open_
