"""``phone-bridge status``: this phone's id and the cars it is paired with."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from phone_bridge.cli.app import fail, open_state
from phone_bridge.cli.options import Json
from phone_bridge.errors import explain
from protocol.identity import device_id, fingerprint

__all__ = ["status_cmd"]


def status_cmd(as_json: Json = False) -> None:
    """Show this phone's id and the cars it is paired with."""
    state = open_state(as_json)
    try:
        cars = state.cars()
        key = state.public_key  # no X25519 needed to show it (see shell.keys)
    except Exception as exc:  # a damaged cars.json or key file: one line, exit 1
        raise fail(explain(exc), as_json) from None
    me_id, me_fingerprint = device_id(key), fingerprint(key)
    rows: list[dict[str, Any]] = [
        {
            "id": c.id,
            "name": c.name,
            "fingerprint": c.fingerprint,
            "endpoint": c.endpoint,
            "ble_address": c.ble_address,
            "paired_at": c.paired_at,
            "last_sync": c.last_sync,
        }
        for c in cars.values()
    ]
    if as_json:
        print(json.dumps({"phone_id": me_id, "fingerprint": me_fingerprint, "cars": rows}))
        return
    typer.echo(f"this phone: {me_id} ({me_fingerprint})")
    if not rows:
        typer.echo("no paired cars")
        return
    # rich only for the table: a phone with no car, or --json, never loads it.
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "id", "endpoint", "last sync")
    for r in rows:
        table.add_row(
            str(r["name"]), str(r["id"]), str(r["endpoint"] or r["ble_address"]), _when(r)
        )
    Console().print(table)


def _when(row: dict[str, Any]) -> str:
    """The last sync as local time, or ``never``."""
    last = row["last_sync"]
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "never"
