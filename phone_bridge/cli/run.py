"""``phone-bridge run``: stay connected to a car until stopped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phone_bridge.carddav.options import (
    CardDav,
    CardDavCa,
    CardDavInterval,
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
    check_auto_confirm,
    start_keylog,
)

if TYPE_CHECKING:
    from phone_bridge.bridge import BridgeOptions
    from phone_bridge.player import MediaPlayer
    from phone_bridge.state import PhoneState

__all__ = ["run_cmd"]

Media = Annotated[
    Path | None,
    typer.Option(
        "--media",
        help="A folder of audio files or an M3U playlist for the player; or mpris: "
        "(the active MPRIS player) or mpris:NAME (org.mpris.MediaPlayer2.NAME).",
    ),
]


def run_cmd(
    car: Annotated[
        str | None,
        typer.Argument(
            help="Car id (or prefix), name, or HOST:PORT; omitted: the first car found."
        ),
    ] = None,
    *,
    contacts: Annotated[
        Path | None, typer.Option("--contacts", help="A vCard file; re-synced on change.")
    ] = None,
    carddav: CardDav = None,
    dav_user: CardDavUser = None,
    dav_pw: CardDavPasswordFile = None,
    dav_ca: CardDavCa = None,
    dav_every: CardDavInterval = 30.0,
    media: Media = None,
    auto_confirm: Annotated[
        bool,
        typer.Option(
            "--auto-confirm",
            help="EMULATION ONLY: pair with the car if needed, accepting the code without asking.",
        ),
    ] = False,
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
    """Stay connected: sync on file changes, play media, obey the car, reconnect with backoff."""
    opts = CarOptions(transport, radio, mdns_interface, timeout, btsnoop, name, as_json)
    opts = check_auto_confirm(auto_confirm, start_keylog(keylog, keylog_real_radio, opts))
    source = ContactSource(contacts, carddav, dav_user, dav_pw, dav_ca, dav_every)
    state = open_state(as_json)
    feed, _ = source.read(state.root, allow_deletes=allow_deletes, as_json=as_json)
    player = read_media(media, as_json) if media else None

    def emit(event: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(event), flush=True)

    from phone_bridge.bridge import BridgeOptions

    options = BridgeOptions(
        car=car,
        contacts=contacts,
        media=media,
        name=state.phone_name(opts.name),
        auto_confirm=auto_confirm,
        connect=opts.connect,
        allow_deletes=allow_deletes,
        feed=feed,
    )
    run_flow(_serve(state, options, player, emit), as_json)


async def _serve(
    state: PhoneState,
    options: BridgeOptions,
    player: MediaPlayer | None,
    emit: Callable[[dict[str, Any]], None],
) -> None:
    """Run the bridge (and the player) until one of them stops; then stop the other."""
    import asyncio

    from phone_bridge.bridge import Bridge

    bridge = Bridge(state, options, player, emit)
    tasks = [asyncio.create_task(bridge.run())]
    if player is not None:
        tasks.append(asyncio.create_task(player.run()))
    if options.feed is not None:
        tasks.append(asyncio.create_task(options.feed.run()))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            t.result()
    finally:
        for t in tasks:
            t.cancel()
