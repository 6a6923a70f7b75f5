"""``phone-bridge emulate android``: an emulated phone that offers only PBAP, on Classic.

Emulation only (``--radio tcp-client:HOST:PORT``). Its files are read before the radio
is opened, so a missing or malformed file is one line and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from phone_bridge.cli.app import ROOT, fail, run_flow
from phone_bridge.cli.emulate import _ask, _printer, _serve
from phone_bridge.cli.options import Btsnoop, Json
from phone_bridge.cli.pbap_options import (
    ADDRESS_HELP,
    CallsOpt,
    ContactsOpt,
    OwnerOpt,
    PbapVersionOpt,
    WaitOpt,
    check_pbap_version,
    read_books,
)
from phone_bridge.errors import BadInput, BridgeError
from shell.radio import is_emulated

__all__ = ["android_cmd"]

log = logging.getLogger("phone_bridge")

def android_cmd(
    radio: Annotated[
        str, typer.Option("--radio", help="The emulated radio, tcp-client:HOST:PORT (required).")
    ],
    contacts: ContactsOpt = None,
    calls: CallsOpt = None,
    car: Annotated[str | None, typer.Option("--car", metavar="ADDRESS", help=ADDRESS_HELP)] = None,
    owner: OwnerOpt = "Emulated Owner",
    name: Annotated[str, typer.Option("--name", help="The phone's device name.")] = "Android",
    auto_confirm: Annotated[
        bool, typer.Option("--auto-confirm",
                           help="EMULATION ONLY: accept the SSP pairing code without asking."),
    ] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Where its link keys (android-bonds.json), "
                     "DatabaseIdentifier and counters persist, mode 0600 (default: the root "
                     "--state-dir)."),
    ] = None,
    wait: WaitOpt = False,
    pbap_version: PbapVersionOpt = "1.2",
    btsnoop: Btsnoop = None,
    as_json: Json = False,
) -> None:
    """Emulate an Android phone offering only PBAP on Classic: connect to the car, pair
    with SSP numeric comparison, serve the phone book. With --wait the car connects and
    pairs instead (car-initiated, POST /api/classic/connect).

    With --json every event is one JSON line on stdout: up, pairing-code, connected,
    connect-failed, pbap-connected, pulled {path, offset, cards, code}, book-changed,
    pbap-disconnected, disconnected.
    """
    from phone_bridge.pbap import PbapPhone, PbapPhoneOptions
    from protocol.gatt import BD_ADDR

    if not is_emulated(radio):
        raise fail(BadInput("emulate android is emulation only: --radio must be "
                            f"tcp-client:HOST:PORT, got {radio!r}"), as_json)
    if contacts is None:
        raise fail(BadInput("emulate android needs --contacts FILE (a .vcf file)"), as_json)
    check_pbap_version(pbap_version, as_json)
    if car is not None and not BD_ADDR.fullmatch(car):
        raise fail(BadInput(f"--car must be a Classic address AA:BB:CC:DD:EE:FF, got {car!r}"),
                   as_json)
    if auto_confirm:
        log.warning("AUTO-CONFIRM IS ON: pairing codes are accepted without a human "
                    "(emulation only)")
    where = state_dir or ROOT.state_dir
    books = read_books(contacts, calls, owner, where, as_json)
    try:
        phone = PbapPhone(radio, PbapPhoneOptions(
            state_dir=where, books=books, name=name, car=car.upper() if car else None,
            confirm=_ask, auto_confirm=auto_confirm, btsnoop=btsnoop, emit=_printer(as_json),
            wait=wait, pbap_version=pbap_version))
    except BridgeError as exc:
        raise fail(exc, as_json) from None
    run_flow(_serve(phone), as_json)
