"""``carhub``: run an emulated (or real-radio) car head unit.

Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or configuration.
Logs go to stderr; ``--json`` prints one machine-readable ``ready`` line on stdout.
Every error is one line on stderr (``carhub: error: ...``), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import unicodedata
from enum import StrEnum
from pathlib import Path

import typer

from carhub.engine import CarConfig
from carhub.runner import CarRunner, RunOptions, parse_hostport
from carhub.store import StoreError
from protocol.errors import ProtocolError
from shell.keys import KeyFileError
from shell.logs import setup_logging
from shell.radio import is_emulated

__all__ = ["app", "main"]

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


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"carhub: error: {msg}", err=True)
    raise typer.Exit(code)


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


@app.command()
def run(
    name: str = typer.Option("CarHub", help="The car's display name."),
    state_dir: Path = typer.Option(Path(".carhub"), help="Keys and the SQLite store live here."),
    listen: str = typer.Option("0.0.0.0:7800", help="Phone-facing session endpoint (WebSocket)."),
    ui: str = typer.Option("127.0.0.1:8080", help="Dashboard and REST API (loopback by default)."),
    mdns_interface: str = typer.Option(
        None, help="IP address to announce mDNS on (e.g. 127.0.0.1); default: all."
    ),
    no_mdns: bool = typer.Option(False, "--no-mdns", help="Do not announce over mDNS."),
    pairing: PairingMode = typer.Option(
        PairingMode.closed, help="Start with the pairing window open or closed."
    ),
    pairing_window: float = typer.Option(
        120.0,
        help="Seconds a pairing window stays open, from --pairing open or the dashboard "
        "(0: until closed by hand).",
    ),
    hci: str = typer.Option(
        None,
        help="Bluetooth HCI transport for BLE: tcp-client:HOST:PORT (the virtual radio), "
        "usb:0 or hci-socket:0 (a real adapter). Without it BLE is off.",
    ),
    no_ble: bool = typer.Option(False, "--no-ble", help="Turn BLE off even if --hci is given."),
    btsnoop: Path = typer.Option(None, help="Write a btsnoop capture of BLE HCI traffic here."),
    auto_confirm: bool = typer.Option(
        False,
        "--auto-confirm",
        help="EMULATION ONLY: accept every pairing code without a human. Refused with a real "
        "radio.",
    ),
    model: str = typer.Option("CarHub Emulated Head Unit", help="Model string shown to phones."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON 'ready' line on stdout."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Debug logging."),
) -> None:
    """Run the car until Ctrl-C / SIGTERM."""
    setup_logging(verbose)
    try:
        check_label("--name", name, MAX_NAME_BYTES)
        check_label("--model", model, MAX_MODEL_BYTES)
        parse_hostport(listen, "0.0.0.0")
        parse_hostport(ui)
    except (ValueError, typer.BadParameter) as exc:
        _fail(str(exc))
    hci_spec = None if no_ble else hci
    if auto_confirm and hci_spec and not is_emulated(hci_spec):
        _fail(f"--auto-confirm is for emulation only: refused with --hci {hci_spec}")
    if auto_confirm:
        log.warning("AUTO-CONFIRM IS ON: every pairing request is accepted (emulation only)")
        if not listen.startswith(("127.", "localhost", "[::1]")):
            log.warning(
                "AUTO-CONFIRM with --listen %s: anything that reaches this address can pair",
                listen,
            )
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
    )
    try:
        asyncio.run(_run(config, options, as_json))
    except KeyFileError as exc:
        _fail(str(exc))
    except StoreError as exc:
        _fail(f"store: {exc}", 1)
    except OSError as exc:
        _fail(f"cannot start: {exc}", 1)
    except (ValueError, ProtocolError) as exc:
        # A configuration the checks above missed (zeroconf and the BLE info encoder
        # refuse values they cannot carry): still bad configuration, so exit 2.
        _fail(f"cannot start: {exc}", 2)
    except KeyboardInterrupt:
        pass


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
        }
        print(json.dumps(info) if as_json else f"dashboard: {info['dashboard']}", flush=True)

    await runner.run_forever(ready)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
