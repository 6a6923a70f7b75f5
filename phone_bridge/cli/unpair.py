"""``phone-bridge unpair``: have the car erase this phone's data, then forget the car."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phone_bridge.cli.app import open_state, run_flow
from phone_bridge.cli.options import (
    DEFAULT_TIMEOUT,
    CarOptions,
    Json,
    MdnsInterface,
    Name,
    Radio,
    Timeout,
    Transport,
    TransportChoice,
)
from phone_bridge.errors import BridgeError, LinkClosed, NotPaired

if TYPE_CHECKING:
    from phone_bridge.client import CarLink
    from phone_bridge.state import PhoneState

__all__ = ["unpair_cmd"]

log = logging.getLogger("phone_bridge")
# Seconds to wait for each event after Unpair: the car says Bye once it has erased us.
BYE_TIMEOUT = 5.0


def unpair_cmd(
    car: Annotated[str, typer.Argument(help="Car id (or prefix), name, or HOST:PORT.")],
    name: Name = None,
    transport: Transport = TransportChoice.auto,
    radio: Radio = None,
    mdns_interface: MdnsInterface = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: Json = False,
) -> None:
    """Unpair: ask the car to erase this phone's data, then forget the car here."""
    state = open_state(as_json)
    opts = CarOptions(transport, radio, mdns_interface, timeout, name=name, as_json=as_json)
    r = run_flow(_unpair(state, car, opts), as_json)
    if as_json:
        print(json.dumps(r))
    else:
        tail = "; the car erased this phone's data" if r["car_erased"] else ""
        typer.echo(f"unpaired from {r['car']}{tail}")


async def _unpair(state: PhoneState, car: str, opts: CarOptions) -> dict[str, Any]:
    """Tell the car if it can be reached; forget it here either way."""
    from phone_bridge.cli.session import connect_car
    from phone_bridge.connect import resolve
    from protocol.messages import Unpair

    target = await resolve(car, state, opts.connect)
    if target.paired is None:
        raise NotPaired(f"not paired with {target.label}")
    told = True
    try:
        async with connect_car(state, target, opts) as s:
            await s.link.send(Unpair())
            await _wait_closed(s.link)
    except BridgeError as exc:  # the car may be gone or have forgotten us already
        told = False
        log.warning("could not tell the car (%s); forgetting it here anyway", exc)
    state.forget_car(target.paired.id)
    return {"ok": True, "car": target.paired.id, "car_erased": told}


async def _wait_closed(link: CarLink) -> None:
    """Wait for the car's Bye after Unpair."""
    try:
        while True:
            await link.next_event(BYE_TIMEOUT)
    except LinkClosed:
        return
