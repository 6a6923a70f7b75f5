"""``phone-bridge``: the phone side of CarHub, for people and for CI scripts.

Exit codes:
  0  success
  1  runtime failure (connection lost, protocol error)
  2  bad usage or bad input (e.g. a file that is not a vCard; nothing is sent)
  3  car not found or unreachable
  4  pairing failed (rejected, code mismatch, window closed, rate limited, timeout,
     or the car's key does not match the scanned QR code)
  5  not paired (locally, or the car no longer knows this phone)
  6  synced, but some cards in the file were malformed and skipped (listed)

Logs go to stderr; ``--json`` puts machine-readable results on stdout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import time
from collections.abc import Awaitable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from phone_bridge.bridge import Bridge, BridgeOptions
from phone_bridge.connect import ConnectOptions, resolve
from phone_bridge.discovery import discover, is_hostport
from phone_bridge.engine import (
    EXIT_BAD_INPUT,
    EXIT_NOT_PAIRED,
    BridgeError,
    do_pair,
    do_pair_oob,
    explain,
    load_contacts,
    open_session,
    sync_once,
)
from phone_bridge.state import PhoneState, StateError, default_state_dir
from protocol.identity import PairingUri, PairingUriError
from protocol.media import Artwork
from protocol.messages import Unpair
from shell.logs import setup_logging
from shell.radio import is_emulated

__all__ = ["app", "main"]

T = TypeVar("T")
EXIT_PARTIAL = 6
err_console = Console(stderr=True)
log = logging.getLogger("phone_bridge")

app = typer.Typer(
    help="CarHub phone bridge: discover cars, pair with a confirmed code, and keep a car's "
    "copy of your contacts and now-playing media in sync.\n\n\b\n" + __doc__.split("\n\n", 1)[1],
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class TransportChoice(StrEnum):
    auto = "auto"
    lan = "lan"
    ble = "ble"


class Ctx:
    state_dir: Path = default_state_dir()
    verbose: bool = False


CTX = Ctx()

# Shared options (typer has no option groups; these keep every command consistent).
JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
TRANSPORT = typer.Option(
    TransportChoice.auto, "--transport", help="auto prefers the LAN and falls back to BLE."
)
RADIO = typer.Option(
    None,
    "--radio",
    help="Run bleak on the emulated Bumble radio at this transport "
    "(e.g. tcp-client:127.0.0.1:7000). Without it, bleak uses this machine's Bluetooth.",
)
MDNS_IF = typer.Option(None, "--mdns-interface", help="IP address to browse mDNS on.")
TIMEOUT = typer.Option(3.0, "--timeout", help="Seconds to spend discovering.")
BTSNOOP = typer.Option(
    None, "--btsnoop", help="Write a btsnoop capture (Wireshark) of the BLE link (with --radio)."
)
NAME = typer.Option(
    None, "--name", help="This phone's name as the car shows it (default: from the hostname)."
)


@app.callback()
def _root(
    state_dir: Path = typer.Option(
        None,
        "--state-dir",
        help="Where this phone keeps its key, paired cars and sync state "
        "(default: ~/.local/state/carhub-phone).",
    ),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Debug logging."),
) -> None:
    """CarHub phone bridge."""
    CTX.state_dir = state_dir or default_state_dir()
    CTX.verbose = verbose
    setup_logging(verbose)


def _opts(
    transport: TransportChoice,
    radio: str | None,
    mdns_if: str | None,
    timeout: float,
    btsnoop: Path | None = None,
) -> ConnectOptions:
    return ConnectOptions(
        transport=transport.value,
        radio=radio,
        mdns_interface=mdns_if,
        discover_timeout=timeout,
        btsnoop=str(btsnoop) if btsnoop else None,
    )


def _name(name: str | None) -> str:
    return name or f"phone-bridge on {socket.gethostname()}"


def _fail(err: BridgeError, as_json: bool) -> typer.Exit:
    """Report a failure: one line on stderr (and ``{"ok": false}`` on stdout with --json).

    Returns:
        The ``typer.Exit`` carrying the error's exit code, for the caller to raise.
    """
    if as_json:
        print(json.dumps({"ok": False, "error": str(err), "exit_code": err.code}), flush=True)
    typer.echo(f"phone-bridge: error: {err}", err=True)
    return typer.Exit(err.code)


def _run(coro: Awaitable[T], as_json: bool) -> T:
    """Run a flow; turn any failure into one line on stderr and the matching exit code."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:  # every failure becomes one line and an exit code
        if CTX.verbose:
            log.exception("failed")
        raise _fail(explain(exc), as_json) from None


def _state(as_json: bool) -> PhoneState:
    """Open the state directory, or fail with one line (it may be missing or read-only)."""
    try:
        return PhoneState(CTX.state_dir)
    except StateError as exc:
        raise _fail(explain(exc), as_json) from None


def _contacts(path: Path, as_json: bool) -> Any:
    """Parse the vCard file before connecting: a bad file changes nothing on the car."""
    try:
        return load_contacts(path)
    except BridgeError as exc:
        raise _fail(exc, as_json) from None


# -- discover -------------------------------------------------------------------------
@app.command("discover")
def discover_cmd(
    timeout: float = TIMEOUT,
    transport: TransportChoice = TRANSPORT,
    radio: str = RADIO,
    mdns_interface: str = MDNS_IF,
    as_json: bool = JSON,
) -> None:
    """List the cars found over mDNS (and BLE with --radio or --transport ble)."""

    async def flow() -> list[dict[str, object]]:
        cars = await discover(
            timeout,
            interface=mdns_interface,
            radio=radio,
            use_mdns=transport is not TransportChoice.ble,
            use_ble=transport is TransportChoice.ble or radio is not None,
        )
        return [c.to_json() for c in cars]

    cars = _run(flow(), as_json)
    if as_json:
        print(json.dumps(cars))
        return
    if not cars:
        typer.echo("no cars found", err=True)
        return
    table = Table("name", "id", "address", "pairing", "seen via")
    for c in cars:
        table.add_row(
            str(c["name"]),
            str(c["id"]),
            str(c["address"] or c["ble_address"]),
            "open" if c["pairing_open"] else "closed",
            ", ".join(c["via"]),  # type: ignore[arg-type]
        )
    Console().print(table)


# -- pair -----------------------------------------------------------------------------
@app.command("pair")
def pair_cmd(
    car: str = typer.Argument(
        None,
        help="Car id (or prefix), name, or HOST:PORT. Optional with --uri, which says "
        "where the car is.",
    ),
    uri: str = typer.Option(
        None,
        "--uri",
        help="Pair by the car's QR code: the scanned carhub://pair?... URI ('-' reads it "
        "from stdin, keeping its secret out of the process list). Nothing to compare; "
        "exit 4 if the car's key does not match the code.",
    ),
    confirm_code: str = typer.Option(
        None,
        "--confirm-code",
        help="For scripts: confirm only if the car's code equals this (spaces ignored); "
        "otherwise reject and exit 4.",
    ),
    auto_confirm: bool = typer.Option(
        False, "--auto-confirm", help="EMULATION ONLY: accept the code without asking."
    ),
    name: str = NAME,
    transport: TransportChoice = TRANSPORT,
    radio: str = RADIO,
    mdns_interface: str = MDNS_IF,
    timeout: float = TIMEOUT,
    btsnoop: Path = BTSNOOP,
    as_json: bool = JSON,
) -> None:
    """Pair with a car: both screens show a 6-digit code that the users confirm.

    With --uri (the car's QR code, from its dashboard) there is no code: the scanned
    secret proves the car, and CAR may be left out.
    """
    if uri is not None:
        opts = _opts(transport, radio, mdns_interface, timeout, btsnoop)
        _pair_by_uri(car, uri, confirm_code, auto_confirm, name, transport, opts, as_json)
        return
    if car is None:
        missing = BridgeError("missing CAR (or --uri with the car's QR code)", EXIT_BAD_INPUT)
        raise _fail(missing, as_json)
    transport = _check_auto_confirm(auto_confirm, transport, radio, as_json)
    opts = _opts(transport, radio, mdns_interface, timeout, btsnoop)
    state = _state(as_json)

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

    async def flow() -> dict[str, Any]:
        target = await resolve(car, state, opts)
        paired, link = await do_pair(state, target, opts, _name(name), decide)
        await link.aclose("paired")
        return {
            "ok": True,
            "car": {"id": paired.id, "name": paired.name, "fingerprint": paired.fingerprint},
            "transport": link.transport.name,
        }

    _print_paired(_run(flow(), as_json), as_json)


def _print_paired(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        c = result["car"]
        typer.echo(f"paired with {c['name']} ({c['id']}), fingerprint {c['fingerprint']}")


def _pair_by_uri(
    car: str | None,
    text: str,
    confirm_code: str | None,
    auto_confirm: bool,
    name: str | None,
    transport: TransportChoice,
    opts: ConnectOptions,
    as_json: bool,
) -> None:
    """``pair --uri``: pair by the car's QR code (OOB), nothing to compare."""
    if confirm_code is not None or auto_confirm:
        what = "--confirm-code" if confirm_code is not None else "--auto-confirm"
        raise _fail(
            BridgeError(f"--uri pairs without a code: drop {what}", EXIT_BAD_INPUT), as_json
        )
    if text == "-":
        text = sys.stdin.readline()
    try:
        scanned = PairingUri.parse(text)
    except PairingUriError as exc:
        raise _fail(
            BridgeError(f"not a carhub pairing code: {exc.detail}", EXIT_BAD_INPUT), as_json
        ) from None
    # Where the car is: CAR if given, else the URI's endpoint, else its id (mDNS/BLE).
    query = car or scanned.device_id
    if car is None and scanned.host and transport is not TransportChoice.ble:
        query = scanned.host if is_hostport(scanned.host) else query
    state = _state(as_json)

    async def flow() -> dict[str, Any]:
        target = await resolve(query, state, opts)
        paired, link = await do_pair_oob(state, target, opts, _name(name), scanned)
        await link.aclose("paired")
        return {
            "ok": True,
            "car": {"id": paired.id, "name": paired.name, "fingerprint": paired.fingerprint},
            "transport": link.transport.name,
            "method": "oob",
        }

    _print_paired(_run(flow(), as_json), as_json)


async def _ask(prompt: str) -> bool:
    """Ask y/n on the terminal (stderr); no terminal or EOF means no."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = await asyncio.to_thread(sys.stdin.readline)
    return line.strip().lower() in ("y", "yes")


def _check_auto_confirm(
    auto: bool, transport: TransportChoice, radio: str | None, as_json: bool
) -> TransportChoice:
    """Refuse auto-confirm on real Bluetooth; without --radio, keep auto on the LAN."""
    emulated = radio is not None and is_emulated(radio)
    if auto and radio is not None and not emulated:
        raise _fail(
            BridgeError(
                f"--auto-confirm is for emulation only: refused with --radio {radio}",
                EXIT_BAD_INPUT,
            ),
            as_json,
        )
    if auto and radio is None and transport is TransportChoice.ble:
        raise _fail(
            BridgeError(
                "--auto-confirm is for emulation only and is refused on real Bluetooth "
                "(use --radio with the emulated radio)",
                EXIT_BAD_INPUT,
            ),
            as_json,
        )
    if auto:
        log.warning(
            "AUTO-CONFIRM IS ON: pairing codes are accepted without a human (emulation only)"
        )
        if radio is None and transport is TransportChoice.auto:
            return TransportChoice.lan  # never fall back to a real radio unattended
    return transport


# -- sync -----------------------------------------------------------------------------
@app.command("sync")
def sync_cmd(
    car: str = typer.Argument(..., help="Car id (or prefix), name, or HOST:PORT."),
    contacts: Path = typer.Option(..., "--contacts", help="A vCard file (2.1, 3.0 or 4.0)."),
    media: Path = typer.Option(
        None, "--media", help="A folder of audio files or an M3U playlist: push now-playing."
    ),
    name: str = NAME,
    transport: TransportChoice = TRANSPORT,
    radio: str = RADIO,
    mdns_interface: str = MDNS_IF,
    timeout: float = TIMEOUT,
    btsnoop: Path = BTSNOOP,
    as_json: bool = JSON,
) -> None:
    """Sync contacts (and optionally now-playing) once, with a progress bar and a summary."""
    opts = _opts(transport, radio, mdns_interface, timeout, btsnoop)
    state = _state(as_json)
    book = _contacts(contacts, as_json)
    player = _player(media, as_json) if media else None
    progress = Progress(
        TextColumn("syncing contacts"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json or not err_console.is_terminal,
        transient=True,
    )
    task = progress.add_task("sync", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    async def flow() -> dict[str, Any]:
        target = await resolve(car, state, opts)
        start = time.perf_counter()
        link = await open_session(state, target, opts, _name(name))
        try:
            assert target.paired is not None
            with progress:
                summary = await sync_once(state, link, target.paired, book, on_progress)
            if player is not None:
                np = player.now_playing()
                await link.send(np)
                art: Artwork | None = player.artwork.get(np.artwork)
                if art is not None:
                    await link.send(art)
            wire = link.bytes_sent
        finally:
            await link.aclose("sync done")
        return {
            "ok": True,
            "car": target.paired.id,
            "transport": link.transport.name,
            "added": summary.added,
            "changed": summary.changed,
            "deleted": summary.deleted,
            "unchanged": summary.unchanged,
            "photos": summary.photos_sent,
            "skipped": [{"line": e.line, "reason": e.reason} for e in book.errors],
            "bytes": wire,
            "seconds": round(time.perf_counter() - start, 3),
        }

    r = _run(flow(), as_json)
    if as_json:
        print(json.dumps(r))
    else:
        typer.echo(
            f"synced with {r['car']} over {r['transport']}: {r['added']} added, "
            f"{r['changed']} changed, {r['deleted']} deleted, {r['unchanged']} unchanged, "
            f"{len(r['skipped'])} skipped; {r['bytes']:,} bytes in {r['seconds']:.2f} s"
        )
        for s in r["skipped"]:
            typer.echo(f"  skipped card at line {s['line']}: {s['reason']}", err=True)
    if r["skipped"]:
        raise typer.Exit(EXIT_PARTIAL)


def _player(media: Path, as_json: bool) -> Any:
    from phone_bridge.media_source import MediaSourceError, load_tracks
    from phone_bridge.player import Player

    try:
        tracks, artwork = load_tracks(media)
    except MediaSourceError as exc:
        raise _fail(BridgeError(str(exc), EXIT_BAD_INPUT), as_json) from None
    return Player(tracks, artwork)


# -- run ------------------------------------------------------------------------------
@app.command("run")
def run_cmd(
    car: str = typer.Argument(
        None, help="Car id (or prefix), name, or HOST:PORT; omitted: the first car found."
    ),
    contacts: Path = typer.Option(..., "--contacts", help="A vCard file; re-synced on change."),
    media: Path = typer.Option(
        None, "--media", help="A folder of audio files or an M3U playlist for the player."
    ),
    auto_confirm: bool = typer.Option(
        False,
        "--auto-confirm",
        help="EMULATION ONLY: pair with the car if needed, accepting the code without asking.",
    ),
    name: str = NAME,
    transport: TransportChoice = TRANSPORT,
    radio: str = RADIO,
    mdns_interface: str = MDNS_IF,
    timeout: float = TIMEOUT,
    btsnoop: Path = BTSNOOP,
    as_json: bool = JSON,
) -> None:
    """Stay connected: sync on file changes, play media, obey the car, reconnect with backoff."""
    transport = _check_auto_confirm(auto_confirm, transport, radio, as_json)
    state = _state(as_json)
    _contacts(contacts, as_json)
    player = _player(media, as_json) if media else None

    def emit(event: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(event), flush=True)

    async def flow() -> None:
        bridge = Bridge(
            state,
            BridgeOptions(
                car=car,
                contacts=contacts,
                media=media,
                name=_name(name),
                auto_confirm=auto_confirm,
                connect=_opts(transport, radio, mdns_interface, timeout, btsnoop),
            ),
            player,
            emit,
        )
        tasks = [asyncio.create_task(bridge.run())]
        if player is not None:
            tasks.append(asyncio.create_task(player.run()))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
        finally:
            for t in tasks:
                t.cancel()

    _run(flow(), as_json)


# -- unpair / status ------------------------------------------------------------------
@app.command("unpair")
def unpair_cmd(
    car: str = typer.Argument(..., help="Car id (or prefix), name, or HOST:PORT."),
    name: str = NAME,
    transport: TransportChoice = TRANSPORT,
    radio: str = RADIO,
    mdns_interface: str = MDNS_IF,
    timeout: float = TIMEOUT,
    as_json: bool = JSON,
) -> None:
    """Unpair: ask the car to erase this phone's data, then forget the car here."""
    state = _state(as_json)
    opts = _opts(transport, radio, mdns_interface, timeout)

    async def flow() -> dict[str, Any]:
        target = await resolve(car, state, opts)
        if target.paired is None:
            raise BridgeError(f"not paired with {target.label}", EXIT_NOT_PAIRED)
        told = True
        try:
            link = await open_session(state, target, opts, _name(name))
            await link.send(Unpair())
            await _wait_closed(link)
        except Exception as exc:  # the car may be gone or have forgotten us already
            told = False
            log.warning("could not tell the car (%s); forgetting it here anyway", explain(exc))
        state.forget_car(target.paired.id)
        return {"ok": True, "car": target.paired.id, "car_erased": told}

    r = _run(flow(), as_json)
    if as_json:
        print(json.dumps(r))
    else:
        tail = "; the car erased this phone's data" if r["car_erased"] else ""
        typer.echo(f"unpaired from {r['car']}{tail}")


async def _wait_closed(link: Any, timeout: float = 5.0) -> None:
    """Wait for the car's Bye after Unpair."""
    from phone_bridge.client import LinkClosed

    try:
        while True:
            await link.next_event(timeout)
    except LinkClosed:
        return
    finally:
        await link.aclose()


@app.command("status")
def status_cmd(as_json: bool = JSON) -> None:
    """Show this phone's id and the cars it is paired with."""
    state = _state(as_json)
    try:
        cars = state.cars()
        me = state.identity
    except Exception as exc:  # a damaged cars.json or key file: one line, exit 1
        raise _fail(explain(exc), as_json) from None
    rows = [
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
        print(json.dumps({"phone_id": me.device_id, "fingerprint": me.fingerprint, "cars": rows}))
        return
    typer.echo(f"this phone: {me.device_id} ({me.fingerprint})")
    if not rows:
        typer.echo("no paired cars")
        return
    table = Table("name", "id", "endpoint", "last sync")
    for r in rows:
        last = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["last_sync"]))
            if r["last_sync"]
            else "never"
        )
        table.add_row(str(r["name"]), str(r["id"]), str(r["endpoint"] or r["ble_address"]), last)
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
