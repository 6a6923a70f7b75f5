"""``phone-bridge``: the phone side of CarHub, for people and for CI scripts.

Exit codes:
  0  success
  1  runtime failure (connection lost, protocol error)
  2  bad usage or bad input (e.g. a file that is not a vCard, is cut short inside a
     card, or has no readable card; nothing is sent)
  3  car not found or unreachable
  4  pairing failed (rejected, code mismatch, window closed, rate limited, timeout,
     or the car's key does not match the scanned QR code)
  5  not paired (locally, or the car no longer knows this phone)
  6  synced, but some cards or lines in the file were malformed and skipped (listed)
  7  refused: the sync would delete more than half of the car's copy (and over 20
     contacts); nothing is sent (--allow-deletes lets it through)
  8  the contacts source (a CardDAV server) refused our credentials

Logs go to stderr; ``--json`` puts machine-readable results on stdout.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from phone_bridge.cli.coerce import LeanGroup
from phone_bridge.errors import BridgeError, explain
from shell.logs import setup_logging

if TYPE_CHECKING:
    from phone_bridge.state import PhoneState

__all__ = ["ROOT", "RootOptions", "app", "fail", "main", "open_state", "run_flow"]

T = TypeVar("T")
log = logging.getLogger("phone_bridge")
# The exit code of a process that Ctrl-C stopped (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

app = typer.Typer(
    cls=LeanGroup,
    help="CarHub phone bridge: discover cars, pair with a confirmed code, and keep a car's "
    "copy of your contacts and now-playing media in sync.\n\n\b\n"
    + (__doc__ or "").split("\n\n", 1)[1],
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _default_state_dir() -> Path:
    from phone_bridge.state import default_state_dir

    return default_state_dir()


@dataclass
class RootOptions:
    """The options before the command (``--state-dir``, ``-v``), set once by the callback."""

    state_dir: Path = field(default_factory=_default_state_dir)
    verbose: bool = False


ROOT = RootOptions()


@app.callback()
def _root(
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Where this phone keeps its key, paired cars and sync state "
            "(default: ~/.local/state/carhub-phone).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Debug logging.")] = False,
) -> None:
    """CarHub phone bridge."""
    ROOT.state_dir = state_dir or _default_state_dir()
    ROOT.verbose = verbose
    setup_logging(verbose)


def fail(err: BridgeError, as_json: bool) -> typer.Exit:
    """Report a failure: one line on stderr (and ``{"ok": false}`` on stdout with --json).

    Args:
        err: the failure, whose message and exit code the user sees.
        as_json: also print the failure as JSON on stdout.

    Returns:
        The ``typer.Exit`` carrying the error's exit code, for the caller to raise.
    """
    if as_json:
        print(json.dumps({"ok": False, "error": str(err), "exit_code": err.code}), flush=True)
    typer.echo(f"phone-bridge: error: {err}", err=True)
    return typer.Exit(err.code)


def run_flow(coro: Coroutine[Any, Any, T], as_json: bool) -> T:
    """Run a command's flow; turn any failure into one line on stderr and its exit code.

    Args:
        coro: the flow.
        as_json: report a failure as JSON on stdout too.

    Returns:
        What the flow returned.

    Raises:
        typer.Exit: the flow failed (with the code ``explain`` gives) or was interrupted.
    """
    import asyncio  # only the commands that talk to a car need an event loop

    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # every failure becomes one line and an exit code
        if ROOT.verbose:
            log.exception("failed")
        raise fail(explain(exc), as_json) from None


def open_state(as_json: bool) -> PhoneState:
    """Open the state directory, or fail with one line (it may be missing or read-only).

    Raises:
        typer.Exit: the directory is unusable (exit 1).
    """
    from phone_bridge.state import PhoneState

    try:
        return PhoneState(ROOT.state_dir)
    except BridgeError as exc:
        raise fail(exc, as_json) from None


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
