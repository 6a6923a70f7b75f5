"""The options the commands share, declared once.

Each option is a typer ``Annotated`` alias (typer has no option groups, so a command lists
the aliases it takes, in the order its ``--help`` shows them); a command then builds one
``CarOptions`` from them and hands that on.

Every command module imports this one, and ``phone-bridge status`` or ``--help`` imports
every command module: so nothing here (or at the top of a command module) may import the
transports, discovery or the engine (websockets, zeroconf, Bumble); they are imported
inside the functions that use them (tests/phone_bridge/test_cli_startup.py checks it).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phone_bridge.cli.app import fail
from phone_bridge.errors import BadInput
from shell.radio import is_emulated

if TYPE_CHECKING:
    from phone_bridge.connect import ConnectOptions

__all__ = [
    "DEFAULT_TIMEOUT",
    "AllowDeletes",
    "Btsnoop",
    "CarOptions",
    "Json",
    "Keylog",
    "KeylogRealRadio",
    "MdnsInterface",
    "Name",
    "Radio",
    "Timeout",
    "Transport",
    "TransportChoice",
    "check_auto_confirm",
    "start_keylog",
]

log = logging.getLogger("phone_bridge")
# Seconds of discovery when --timeout is not given (--help shows it as the default).
DEFAULT_TIMEOUT = 3.0


class TransportChoice(StrEnum):
    auto = "auto"
    lan = "lan"
    ble = "ble"


AllowDeletes = Annotated[
    bool,
    typer.Option(
        "--allow-deletes",
        help="Let a sync delete more than half of the car's copy (and over 20 contacts), "
        "or sync an empty file to empty it. Without it such a sync sends nothing: "
        "'sync' exits 7, 'run' logs it and waits for the next version of the file.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Transport = Annotated[
    TransportChoice,
    typer.Option("--transport", help="auto prefers the LAN and falls back to BLE."),
]
Radio = Annotated[
    str | None,
    typer.Option(
        "--radio",
        help="Run bleak on the emulated Bumble radio at this transport "
        "(e.g. tcp-client:127.0.0.1:7000). Without it, bleak uses this machine's Bluetooth.",
    ),
]
MdnsInterface = Annotated[
    str | None, typer.Option("--mdns-interface", help="IP address to browse mDNS on.")
]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to spend discovering.")]
Btsnoop = Annotated[
    Path | None,
    typer.Option(
        "--btsnoop", help="Write a btsnoop capture (Wireshark) of the BLE link (with --radio)."
    ),
]
Keylog = Annotated[
    Path | None,
    typer.Option(
        "--keylog",
        envvar="CARHUB_KEYLOG",  # shell.keylog.KEYLOG_ENV, not imported here: start-up cost
        help="DEBUGGING ONLY: append each secure session's keys to this file (created 0600) "
        "so `carhub-capture decode` can decrypt captures. Refused on real Bluetooth.",
    ),
]
KeylogRealRadio = Annotated[
    bool,
    typer.Option("--keylog-real-radio", help="Allow --keylog on real Bluetooth."),
]
Name = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="This phone's name as the car shows it, kept for later commands (default: the "
        "last --name given, else from the hostname).",
    ),
]


@dataclass(frozen=True)
class CarOptions:
    """How to find and reach the car, and how to report: what the commands share.

    Args:
        transport: which link to use (``auto`` prefers the LAN, falls back to BLE).
        radio: the emulated Bumble radio's transport, or ``None`` for real Bluetooth.
        mdns_interface: the IP address to browse mDNS on.
        timeout: seconds to spend discovering.
        btsnoop: where to write a btsnoop capture of the BLE link.
        name: this phone's name as the car shows it (``None``: from the hostname).
        as_json: machine-readable results on stdout.
    """

    transport: TransportChoice = TransportChoice.auto
    radio: str | None = None
    mdns_interface: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    btsnoop: Path | None = None
    name: str | None = None
    as_json: bool = False

    @property
    def connect(self) -> ConnectOptions:
        """These options as ``phone_bridge.connect`` takes them."""
        from phone_bridge.connect import ConnectOptions

        return ConnectOptions(
            transport=self.transport.value,
            radio=self.radio,
            mdns_interface=self.mdns_interface,
            discover_timeout=self.timeout,
            btsnoop=str(self.btsnoop) if self.btsnoop else None,
        )

    @property
    def phone_name(self) -> str:
        """``--name``, else the hostname's; ``PhoneState.phone_name`` also remembers it."""
        from phone_bridge.state import default_phone_name

        return self.name or default_phone_name()


def check_auto_confirm(auto: bool, opts: CarOptions) -> CarOptions:
    """Refuse auto-confirm on real Bluetooth; without --radio, keep auto on the LAN.

    Returns:
        ``opts``, with ``--transport auto`` narrowed to the LAN when auto-confirming
        without an emulated radio.

    Raises:
        typer.Exit: auto-confirm on a real radio (exit 2).
    """
    radio = opts.radio
    emulated = radio is not None and is_emulated(radio)
    if auto and radio is not None and not emulated:
        msg = f"--auto-confirm is for emulation only: refused with --radio {radio}"
        raise fail(BadInput(msg), opts.as_json)
    if auto and radio is None and opts.transport is TransportChoice.ble:
        msg = (
            "--auto-confirm is for emulation only and is refused on real Bluetooth "
            "(use --radio with the emulated radio)"
        )
        raise fail(BadInput(msg), opts.as_json)
    if not auto:
        return opts
    log.warning("AUTO-CONFIRM IS ON: pairing codes are accepted without a human (emulation only)")
    if radio is None and opts.transport is TransportChoice.auto:
        # Never fall back to a real radio unattended.
        return dataclasses.replace(opts, transport=TransportChoice.lan)
    return opts


def start_keylog(path: Path | None, allow_real_radio: bool, opts: CarOptions) -> CarOptions:
    """Turn on ``--keylog`` (warning once), refused on real Bluetooth without consent.

    Returns:
        ``opts``; with a key log, no --radio and ``--transport auto``, narrowed to the LAN
        unless ``--keylog-real-radio`` (as ``check_auto_confirm`` does).

    Raises:
        typer.Exit: real Bluetooth without --keylog-real-radio, or an unsafe file (exit 2).
    """
    if path is None:
        return opts
    from shell import keylog
    from shell.errors import KeyLogError

    real_ble = opts.radio is None and opts.transport is TransportChoice.ble
    try:
        keylog.check_radio("real Bluetooth" if real_ble else opts.radio, allow_real_radio)
        keylog.enable(path)
    except KeyLogError as exc:
        raise fail(BadInput(str(exc)), opts.as_json) from None
    if opts.radio is None and opts.transport is TransportChoice.auto and not allow_real_radio:
        return dataclasses.replace(opts, transport=TransportChoice.lan)
    return opts
