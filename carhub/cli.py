"""``carhub``: run an emulated (or real-radio) car head unit.

Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or configuration (``carhub.errors``;
the table ``ERRORS`` below maps every failure onto them).
Logs go to stderr; ``--json`` prints one machine-readable ``ready`` line on stdout.
Every error is one line on stderr (``carhub: error: ...``), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from carhub.engine import CarConfig
from carhub.errors import CarhubError, StartError, UsageError
from carhub.runner import CarRunner, RunOptions, parse_hostport
from carhub.store import StoreError
from protocol.errors import ProtocolError
from shell import keylog as keylog_file
from shell.errors import KeyFileError, KeyLogError, TransportError
from shell.logs import setup_logging
from shell.radio import is_emulated

__all__ = ["ERRORS", "app", "carhub_error", "errors_reported", "main"]

app = typer.Typer(
    help="CarHub car head unit: advertises over mDNS and BLE, pairs phones, mirrors their "
    "contacts and now-playing media, and serves the dashboard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("carhub")

# Where the name and model go, and what bounds them: the mDNS TXT record (each "key=value"
# string at most 255 bytes, so name= leaves 250; zeroconf raises ValueError beyond), the BLE
# info characteristic (JSON of id, name, model, version, lan: at most 512 bytes), the BLE
# scan response (shortened there) and the Hello message (128 characters). The instance name
# is "carhub-<16 hex id>", 23 bytes, so the name never reaches it. 63 UTF-8 bytes, a DNS
# label's limit, keeps the name readable on every screen and leaves the JSON room to spare;
# 128 bytes of model still leaves the worst case (every character escaped) under 512.
MAX_NAME_BYTES = 63
MAX_MODEL_BYTES = 128


@app.callback()
def _root() -> None:
    """CarHub car head unit."""


class PairingMode(StrEnum):
    open = "open"
    closed = "closed"


# What `carhub run` may meet once it starts, as the carhub error the user is shown: a
# (foreign or carhub) type, the carhub error it becomes, and how its message is introduced.
# The first match wins, so narrower types come first; a carhub error not listed is shown as
# it is, anything else is a bug and keeps its traceback.
ERRORS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], type[CarhubError], str], ...] = (
    (KeyFileError, UsageError, ""),
    (KeyLogError, UsageError, ""),
    (StoreError, StoreError, "store: "),
    (TransportError, StartError, "cannot start: "),
    # A busy port; radio.RadioUnavailableError too (a ConnectionError: no radio process or
    # adapter), matched here so `carhub --help` need not import Bumble.
    (OSError, StartError, "cannot start: "),
    # A configuration the checks missed (zeroconf and the BLE info encoder refuse values
    # they cannot carry): still bad configuration, so exit 2.
    ((ValueError, ProtocolError), UsageError, "cannot start: "),
)


def carhub_error(exc: Exception) -> CarhubError | None:
    """Translate what stopped the car into the error the user sees, by ``ERRORS``.

    Args:
        exc: what ``carhub run`` raised.

    Returns:
        The carhub error (its message is the one line shown, its ``exit_code`` the exit
        code), or None for an error the table does not know (a bug).
    """
    for types, error, prefix in ERRORS:
        if isinstance(exc, types):
            return error(f"{prefix}{exc}")
    return exc if isinstance(exc, CarhubError) else None


@contextmanager
def errors_reported() -> Iterator[None]:
    """Show what stops the block as one line on stderr and end with its exit code.

    Ctrl-C is a clean stop (exit 0); an error ``ERRORS`` does not know keeps its traceback.

    Raises:
        typer.Exit: with the carhub error's ``exit_code``.
    """
    try:
        yield
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        error = carhub_error(exc)
        if error is None:
            raise
        typer.echo(f"carhub: error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None


def check_label(option: str, value: str, max_bytes: int) -> str:
    """Check a name shown to phones: 1..``max_bytes`` UTF-8 bytes, printable, not blank.

    Args:
        option: the command-line option, for the message.
        value: what the user gave.
        max_bytes: the UTF-8 length limit.

    Returns:
        ``value`` unchanged.

    Raises:
        typer.BadParameter: the value is empty, blank, too long or has control characters.
    """
    size = len(value.encode("utf-8", "surrogatepass"))
    if not value.strip():
        raise typer.BadParameter(f"{option} must not be empty")
    if size > max_bytes:
        raise typer.BadParameter(f"{option} is {size} UTF-8 bytes; at most {max_bytes} fit")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise typer.BadParameter(f"{option} must not contain control characters")
    return value


# `carhub run`'s options, one type each.
_Name = Annotated[str, typer.Option(help="The car's display name.")]
_StateDir = Annotated[Path, typer.Option(help="Keys and the SQLite store live here.")]
_Listen = Annotated[str, typer.Option(help="Phone-facing session endpoint (WebSocket).")]
_Ui = Annotated[str, typer.Option(help="Dashboard and REST API (loopback by default).")]
_MdnsInterface = Annotated[
    str | None,
    typer.Option(help="IP address to announce mDNS on (e.g. 127.0.0.1); default: all."),
]
_NoMdns = Annotated[bool, typer.Option("--no-mdns", help="Do not announce over mDNS.")]
_Pairing = Annotated[
    PairingMode, typer.Option(help="Start with the pairing window open or closed.")
]
_PairingWindow = Annotated[
    float,
    typer.Option(
        help="Seconds a pairing window stays open, from --pairing open or the dashboard "
        "(0: until closed by hand)."
    ),
]
_Hci = Annotated[
    str | None,
    typer.Option(
        help="Bluetooth HCI transport for BLE: tcp-client:HOST:PORT (the virtual radio), "
        "usb:0 or hci-socket:0 (a real adapter). Without it BLE is off."
    ),
]
_NoBle = Annotated[bool, typer.Option("--no-ble", help="Turn BLE off even if --hci is given.")]
_NoClassic = Annotated[
    bool,
    typer.Option(
        "--no-classic",
        help="Keep the controller LE only: no Bluetooth Classic, so no PBAP phone-book pull "
        "(GET /api/status shows classic: null).",
    ),
]
_Btsnoop = Annotated[
    Path | None, typer.Option(help="Write a btsnoop capture of BLE HCI traffic here.")
]
_AutoConfirm = Annotated[
    bool,
    typer.Option(
        "--auto-confirm",
        help="EMULATION ONLY: accept every pairing code without a human. Refused with a real "
        "radio.",
    ),
]
_Keylog = Annotated[
    Path | None,
    typer.Option(
        envvar=keylog_file.KEYLOG_ENV,
        help="DEBUGGING ONLY: append each secure session's keys to this file (created 0600) "
        "so `carhub-capture decode` can decrypt captures. Refused with a real radio.",
    ),
]
_KeylogRealRadio = Annotated[
    bool,
    typer.Option("--keylog-real-radio", help="Allow --keylog with a real radio (--hci)."),
]
_Model = Annotated[str, typer.Option(help="Model string shown to phones.")]
_Json = Annotated[bool, typer.Option("--json", help="Print a JSON 'ready' line on stdout.")]
_Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="Debug logging.")]


@app.command()
def run(
    name: _Name = "CarHub",
    state_dir: _StateDir = Path(".carhub"),
    listen: _Listen = "0.0.0.0:7800",
    ui: _Ui = "127.0.0.1:8080",
    mdns_interface: _MdnsInterface = None,
    no_mdns: _NoMdns = False,
    pairing: _Pairing = PairingMode.closed,
    pairing_window: _PairingWindow = 120.0,
    hci: _Hci = None,
    no_ble: _NoBle = False,
    no_classic: _NoClassic = False,
    btsnoop: _Btsnoop = None,
    auto_confirm: _AutoConfirm = False,
    keylog: _Keylog = None,
    keylog_real_radio: _KeylogRealRadio = False,
    model: _Model = "CarHub Emulated Head Unit",
    as_json: _Json = False,
    verbose: _Verbose = False,
) -> None:
    """Run the car until Ctrl-C / SIGTERM."""
    setup_logging(verbose)
    hci_spec = None if no_ble else hci
    config = CarConfig(
        name=name,
        model=model,
        state_dir=state_dir,
        pairing_open=pairing is PairingMode.open,
        pairing_window=pairing_window,
        auto_confirm=auto_confirm,
    )
    options = RunOptions(
        listen=listen,
        ui=ui,
        mdns_interface=mdns_interface,
        mdns=not no_mdns,
        hci=hci_spec,
        btsnoop=str(btsnoop) if btsnoop else None,
        classic=not no_classic,
    )
    with errors_reported():
        _check(config, options)
        if keylog is not None:
            keylog_file.check_radio(options.hci, keylog_real_radio)
            keylog_file.enable(keylog)
        asyncio.run(_run(config, options, as_json))


def _check(config: CarConfig, options: RunOptions) -> None:
    """Refuse bad usage before anything starts or is created.

    Raises:
        UsageError: a name, model or address is unusable, or --auto-confirm is given with
            a real radio.
    """
    try:
        check_label("--name", config.name, MAX_NAME_BYTES)
        check_label("--model", config.model, MAX_MODEL_BYTES)
        parse_hostport(options.listen, "0.0.0.0")
        parse_hostport(options.ui)
    except (ValueError, typer.BadParameter) as exc:
        raise UsageError(str(exc)) from exc
    hci = options.hci
    if config.auto_confirm and hci and not is_emulated(hci):
        raise UsageError(f"--auto-confirm is for emulation only: refused with --hci {hci}")
    if config.auto_confirm:
        log.warning("AUTO-CONFIRM IS ON: every pairing request is accepted (emulation only)")
        if not options.listen.startswith(("127.", "localhost", "[::1]")):
            log.warning(
                "AUTO-CONFIRM with --listen %s: anything that reaches this address can pair",
                options.listen,
            )


async def _run(config: CarConfig, options: RunOptions, as_json: bool) -> None:
    runner = CarRunner(config, options)

    def ready() -> None:
        ui_host = options.ui.rpartition(":")[0] or "127.0.0.1"
        info = {
            "event": "ready",
            "id": runner.engine.identity.device_id,
            "name": config.name,
            "fingerprint": runner.engine.identity.fingerprint,
            "dashboard": f"http://{ui_host}:{runner.ui_port}/",
            "endpoint": config.lan_endpoint,
            "ble": runner.engine.ble_address,
            "classic": runner.engine.classic.address,
        }
        print(json.dumps(info) if as_json else f"dashboard: {info['dashboard']}", flush=True)

    await runner.run_forever(ready)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
