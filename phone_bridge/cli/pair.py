"""``phone-bridge pair``: pair with a car by a confirmed code, or by its QR code (``--uri``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phone_bridge.cli.app import fail, open_state, run_flow
from phone_bridge.cli.options import (
    DEFAULT_TIMEOUT,
    Btsnoop,
    CarOptions,
    Json,
    Keylog,
    KeylogRealRadio,
    MdnsInterface,
    Name,
    Radio,
    Timeout,
    Transport,
    TransportChoice,
    check_auto_confirm,
    start_keylog,
)
from phone_bridge.errors import BadInput

if TYPE_CHECKING:
    from phone_bridge.cli.session import CarSession, Opener
    from phone_bridge.client import CarLink
    from phone_bridge.connect import Target
    from phone_bridge.state import PairedCar, PhoneState

__all__ = ["pair_cmd"]

log = logging.getLogger("phone_bridge")
Decide = Callable[[str], Awaitable[bool]]


def pair_cmd(
    car: Annotated[
        str | None,
        typer.Argument(
            help="Car id (or prefix), name, or HOST:PORT. Optional with --uri, which says "
            "where the car is.",
        ),
    ] = None,
    uri: Annotated[
        str | None,
        typer.Option(
            "--uri",
            help="Pair by the car's QR code: the scanned carhub://pair?... URI ('-' reads it "
            "from stdin, keeping its secret out of the process list). Nothing to compare; "
            "exit 4 if the car's key does not match the code.",
        ),
    ] = None,
    confirm_code: Annotated[
        str | None,
        typer.Option(
            "--confirm-code",
            help="For scripts: confirm only if the car's code equals this (spaces ignored); "
            "otherwise reject and exit 4.",
        ),
    ] = None,
    auto_confirm: Annotated[
        bool, typer.Option("--auto-confirm", help="EMULATION ONLY: accept the code without asking.")
    ] = False,
    name: Name = None,
    transport: Transport = TransportChoice.auto,
    radio: Radio = None,
    mdns_interface: MdnsInterface = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    btsnoop: Btsnoop = None,
    keylog: Keylog = None,
    keylog_real_radio: KeylogRealRadio = False,
    as_json: Json = False,
) -> None:
    """Pair with a car: both screens show a 6-digit code that the users confirm.

    With --uri (the car's QR code, from its dashboard) there is no code: the scanned
    secret proves the car, and CAR may be left out.
    """
    opts = CarOptions(transport, radio, mdns_interface, timeout, btsnoop, name, as_json)
    opts = start_keylog(keylog, keylog_real_radio, opts)
    if uri is not None:
        _pair_by_uri(car, uri, confirm_code, auto_confirm, opts)
        return
    if car is None:
        raise fail(BadInput("missing CAR (or --uri with the car's QR code)"), as_json)
    opts = check_auto_confirm(auto_confirm, opts)
    state = open_state(as_json)
    decide = _decider(auto_confirm, confirm_code)
    from phone_bridge.engine import do_pair

    def opener(target: Target) -> Awaitable[tuple[PairedCar, CarLink]]:
        return do_pair(state, target, opts.connect, state.phone_name(opts.name), decide)

    _print_paired(run_flow(_pair(state, car, opts, opener), as_json), as_json)


def _pair_by_uri(
    car: str | None, text: str, confirm_code: str | None, auto_confirm: bool, opts: CarOptions
) -> None:
    """``pair --uri``: pair by the car's QR code (OOB), nothing to compare."""
    if confirm_code is not None or auto_confirm:
        what = "--confirm-code" if confirm_code is not None else "--auto-confirm"
        raise fail(BadInput(f"--uri pairs without a code: drop {what}"), opts.as_json)
    if text == "-":
        text = sys.stdin.readline()
    from phone_bridge.discovery import is_hostport
    from phone_bridge.engine import do_pair_oob
    from protocol.identity import PairingUri, PairingUriError

    try:
        scanned = PairingUri.parse(text)
    except PairingUriError as exc:
        bad = BadInput(f"not a carhub pairing code: {exc.detail}")
        raise fail(bad, opts.as_json) from None
    # Where the car is: CAR if given, else the URI's endpoint, else its id (mDNS/BLE).
    query = car or scanned.device_id
    if car is None and scanned.host and opts.transport is not TransportChoice.ble:
        query = scanned.host if is_hostport(scanned.host) else query
    state = open_state(opts.as_json)

    def opener(target: Target) -> Awaitable[tuple[PairedCar, CarLink]]:
        return do_pair_oob(state, target, opts.connect, state.phone_name(opts.name), scanned)

    result = run_flow(_pair(state, query, opts, opener), opts.as_json)
    _print_paired({**result, "method": "oob"}, opts.as_json)


async def _pair(state: PhoneState, car: str, opts: CarOptions, opener: Opener) -> dict[str, Any]:
    """Pair through ``opener``, then close the (already secure) link."""
    from phone_bridge.cli.session import connect_car

    async with connect_car(state, car, opts, closing="paired", opener=opener) as s:
        return _paired_json(s)


def _paired_json(s: CarSession) -> dict[str, Any]:
    c = s.car
    return {
        "ok": True,
        "car": {"id": c.id, "name": c.name, "fingerprint": c.fingerprint},
        "transport": s.link.transport.name,
    }


def _print_paired(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        c = result["car"]
        typer.echo(f"paired with {c['name']} ({c['id']}), fingerprint {c['fingerprint']}")


def _decider(auto_confirm: bool, confirm_code: str | None) -> Decide:
    """How to answer the pairing code: auto-confirm, compare with --confirm-code, or ask."""

    async def decide(code: str) -> bool:
        pretty = f"{code[:3]} {code[3:]}"
        if auto_confirm:
            log.warning("AUTO-CONFIRM (emulation only): accepting code %s", pretty)
            return True
        if confirm_code is not None:
            wanted = confirm_code.replace(" ", "")
            if wanted != code:
                typer.echo(
                    f"code mismatch: the car shows {pretty}, expected {confirm_code}", err=True
                )
            else:
                typer.echo(f"pairing code {pretty} matches --confirm-code", err=True)
            return wanted == code
        return await _ask(f"Pairing code: {pretty}\nDoes the car show the same code? [y/N] ")

    return decide


async def _ask(prompt: str) -> bool:
    """Ask y/n on the terminal (stderr); no terminal or EOF means no."""
    import asyncio

    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = await asyncio.to_thread(sys.stdin.readline)
    return line.strip().lower() in ("y", "yes")
