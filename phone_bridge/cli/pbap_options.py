"""The PBAP options ``emulate android`` and ``emulate ios`` share, and reading the book."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from phone_bridge.cli.app import fail
from phone_bridge.errors import BadInput, BridgeError

__all__ = [
    "ADDRESS_HELP",
    "CallsOpt",
    "ContactsOpt",
    "OwnerOpt",
    "PbapVersionOpt",
    "WaitOpt",
    "check_pbap_version",
    "read_books",
    "read_optional_books",
]

ContactsOpt = Annotated[
    Path | None,
    typer.Option("--contacts", metavar="FILE",
                 help="A .vcf file served over PBAP (re-read when it changes, so the version "
                 "counters change)."),
]
CallsOpt = Annotated[
    Path | None,
    typer.Option("--calls", metavar="FILE",
                 help="A .vcf call history in PBAP cch format (X-IRMC-CALL-DATETIME), "
                 "e.g. samples/calls.vcf; default: none."),
]
OwnerOpt = Annotated[
    str, typer.Option("--owner", metavar="NAME", help="The name on the owner card (handle 0).")
]
WaitOpt = Annotated[
    bool,
    typer.Option("--wait",
                 help="Do not connect to the car: stay BR/EDR connectable and wait for the car "
                 "to connect (POST /api/classic/connect on the car with the address the up "
                 "event prints), answering its SSP pairing."),
]
PbapVersionOpt = Annotated[
    str,
    typer.Option("--pbap-version", metavar="1.1|1.2",
                 help="The PBAP version served: 1.2, or 1.1 as older phones and many car "
                 "kits (SDP profile version 0x0101, no PbapSupportedFeatures, never a "
                 "DatabaseIdentifier or version counters)."),
]
PBAP_VERSIONS = ("1.1", "1.2")
ADDRESS_HELP = ("The car's Classic address AA:BB:CC:DD:EE:FF; default: scan LE for a CarHub "
                 "car and read it from its GATT info.")


def check_pbap_version(version: str, as_json: bool) -> str:
    """``version`` if it is 1.1 or 1.2, else fail with one line (exit 2)."""
    if version not in PBAP_VERSIONS:
        raise fail(BadInput(f"--pbap-version must be 1.1 or 1.2, got {version!r}"), as_json)
    return version


def read_books(contacts: Path, calls: Path | None, owner: str, state_dir: Path,
               as_json: bool) -> Any:
    """Read the book files, or fail with one line (exit 2 for bad files, 1 for state)."""
    from phone_bridge.pbap import BookFile

    try:
        return BookFile(contacts, state_dir, owner=owner, calls=calls)
    except BridgeError as exc:
        raise fail(exc, as_json) from None


def read_optional_books(contacts: Path | None, calls: Path | None, owner: str,
                        state_dir: Path, as_json: bool, *, wait: bool = False,
                        version: str = "1.2") -> Any:
    """``read_books`` when ``--contacts`` is given, else None; ``--calls`` or ``--wait``
    alone, or a bad ``--pbap-version``, fails with one line (exit 2)."""
    check_pbap_version(version, as_json)
    if contacts is None:
        if calls is not None or wait:
            raise fail(BadInput(f"{'--calls' if calls else '--wait'} needs --contacts"),
                       as_json)
        return None
    return read_books(contacts, calls, owner, state_dir, as_json)
