"""``phone-bridge sync``: sync contacts (and now-playing) once, then exit."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phone_bridge.carddav.options import (
    CardDav,
    CardDavCa,
    CardDavPasswordFile,
    CardDavUser,
    ContactSource,
)
from phone_bridge.cli.app import open_state, run_flow
from phone_bridge.cli.inputs import read_media
from phone_bridge.cli.options import (
    DEFAULT_TIMEOUT,
    AllowDeletes,
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
    start_keylog,
)
from phone_bridge.errors import EXIT_PARTIAL

if TYPE_CHECKING:
    from rich.progress import Progress

    from phone_bridge.cli.session import CarSession
    from phone_bridge.engine import Contacts
    from phone_bridge.player import MediaPlayer
    from phone_bridge.state import PhoneState
    from protocol.media import Artwork
    from protocol.sync import SyncSummary

__all__ = ["sync_cmd"]


def sync_cmd(
    car: Annotated[str, typer.Argument(help="Car id (or prefix), name, or HOST:PORT.")],
    contacts: Annotated[
        Path | None, typer.Option("--contacts", help="A vCard file (2.1, 3.0 or 4.0).")
    ] = None,
    carddav: CardDav = None,
    dav_user: CardDavUser = None,
    dav_pw: CardDavPasswordFile = None,
    dav_ca: CardDavCa = None,
    media: Annotated[
        Path | None,
        typer.Option(
            "--media",
            help="A folder of audio files or an M3U playlist: push now-playing; or mpris: / "
            "mpris:NAME: the MPRIS player's.",
        ),
    ] = None,
    allow_deletes: AllowDeletes = False,
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
    """Sync contacts (and optionally now-playing) once, with a progress bar and a summary.

    A file cut short, or one in which no card could be read, is refused (exit 2). A sync
    that would delete more than half of the car's copy and more than 20 contacts stops
    with exit 7 and sends nothing, unless --allow-deletes; with it, an empty file empties
    the car's copy.
    """
    opts = CarOptions(transport, radio, mdns_interface, timeout, btsnoop, name, as_json)
    opts = start_keylog(keylog, keylog_real_radio, opts)
    source = ContactSource(contacts, carddav, dav_user, dav_pw, dav_ca)
    state = open_state(as_json)
    _, book = source.read(state.root, allow_deletes=allow_deletes, as_json=as_json)
    player = read_media(media, as_json) if media else None
    r = run_flow(_sync(state, car, opts, book, player, allow_deletes), as_json)
    if as_json:
        print(json.dumps(r))
    else:
        typer.echo(
            f"synced with {r['car']} over {r['transport']}: {r['added']} added, "
            f"{r['changed']} changed, {r['deleted']} deleted, {r['unchanged']} unchanged, "
            f"{len(r['skipped'])} skipped, {len(r['skipped_lines'])} bad lines left out; "
            f"{r['bytes']:,} bytes in {r['seconds']:.2f} s"
        )
        for s in r["skipped"]:
            typer.echo(f"  skipped card at line {s['line']}: {s['reason']}", err=True)
        for s in r["skipped_lines"]:
            typer.echo(f"  skipped line {s['line']} (card kept): {s['reason']}", err=True)
    if r["skipped"] or r["skipped_lines"]:
        raise typer.Exit(EXIT_PARTIAL)


async def _sync(
    state: PhoneState,
    car: str,
    opts: CarOptions,
    book: Contacts,
    player: MediaPlayer | None,
    allow_deletes: bool,
) -> dict[str, Any]:
    """Sync once over a fresh session; push now-playing (and its artwork) if a player.

    A car paired before is dialled at its last known address first (``connect_car``), so
    an unmoved car costs no mDNS browse; the time reported starts after discovery, if any.
    """
    from phone_bridge.cli.session import connect_car
    from phone_bridge.engine import sync_once

    progress = _progress(opts.as_json)
    start = time.perf_counter()

    def resolved() -> None:
        nonlocal start
        start = time.perf_counter()

    async with connect_car(state, car, opts, closing="sync done", resolved=resolved) as s:
        with progress or contextlib.nullcontext():
            summary = await sync_once(
                state, s.link, s.car, book, _reporter(progress), allow_deletes=allow_deletes
            )
        await _push_now_playing(s, player)
        wire = s.link.bytes_sent
    return _synced_json(s, summary, book, wire, time.perf_counter() - start)


def _progress(as_json: bool) -> Progress | None:
    """A progress bar on stderr, only on a terminal and never with --json (else None).

    rich is imported only then: it costs a scripted sync ~30 ms of start-up.
    """
    if as_json or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("syncing contacts"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _reporter(progress: Progress | None) -> Callable[[int, int], None]:
    """The ``on_progress`` callback that moves the bar (a no-op without one)."""
    if progress is None:
        return lambda done, total: None
    task = progress.add_task("sync", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return on_progress


async def _push_now_playing(s: CarSession, player: MediaPlayer | None) -> None:
    if player is None:
        return
    np = player.now_playing()
    await s.link.send(np)
    art: Artwork | None = player.artwork.get(np.artwork)
    if art is not None:
        await s.link.send(art)


def _synced_json(
    s: CarSession, summary: SyncSummary, book: Contacts, wire: int, seconds: float
) -> dict[str, Any]:
    return {
        "ok": True,
        "car": s.car.id,
        "transport": s.link.transport.name,
        "added": summary.added,
        "changed": summary.changed,
        "deleted": summary.deleted,
        "unchanged": summary.unchanged,
        "photos": summary.photos_sent,
        "skipped": [{"line": e.line, "reason": e.reason} for e in book.errors],
        "skipped_lines": [{"line": e.line, "reason": e.reason} for e in book.warnings],
        "bytes": wire,
        "seconds": round(seconds, 3),
    }
