"""``phone-bridge discover``: list the cars in reach."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from phone_bridge.cli.app import run_flow
from phone_bridge.cli.options import (
    DEFAULT_TIMEOUT,
    CarOptions,
    Json,
    MdnsInterface,
    Radio,
    Timeout,
    Transport,
    TransportChoice,
)

if TYPE_CHECKING:
    from phone_bridge.discovery import CarSighting

__all__ = ["discover_cmd"]


def discover_cmd(
    timeout: Timeout = DEFAULT_TIMEOUT,
    transport: Transport = TransportChoice.auto,
    radio: Radio = None,
    mdns_interface: MdnsInterface = None,
    as_json: Json = False,
) -> None:
    """List the cars found over mDNS (and BLE with --radio or --transport ble)."""
    opts = CarOptions(transport, radio, mdns_interface, timeout, as_json=as_json)
    cars = run_flow(_discover(opts), as_json)
    if as_json:
        print(json.dumps([c.to_json() for c in cars]))
        return
    if not cars:
        typer.echo("no cars found", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "id", "address", "pairing", "seen via")
    for c in cars:
        table.add_row(
            c.name,
            c.id,
            c.endpoint or c.ble_address,
            "open" if c.pairing_open else "closed",
            ", ".join(c.via),
        )
    Console().print(table)


async def _discover(opts: CarOptions) -> list[CarSighting]:
    """Browse mDNS (unless --transport ble) and BLE (with --radio or --transport ble)."""
    from phone_bridge.discovery import discover

    return await discover(
        opts.timeout,
        interface=opts.mdns_interface,
        radio=opts.radio,
        use_mdns=opts.transport is not TransportChoice.ble,
        use_ble=opts.transport is TransportChoice.ble or opts.radio is not None,
    )
