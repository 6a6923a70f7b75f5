"""Now playing from this machine's MPRIS players (``--media mpris:`` / ``--media mpris:NAME``).

A Linux laptop standing in for a phone plays music in whatever MPRIS player it runs (VLC,
mpv with mpv-mpris, Rhythmbox, Spotify, a browser...). ``open_player`` returns the bridge's
media player for such a ``--media`` value: it follows the active player on the session bus
(``$DBUS_SESSION_BUS_ADDRESS``), or ``org.mpris.MediaPlayer2.NAME`` (and its instances,
``NAME.instance123``), and turns the car's commands into MPRIS calls. "Active" is defined
in ``phone_bridge.mpris.model``: the player that started playing last, else the one that
changed last.

This package's ``__init__`` imports nothing heavy: dbus_fast is imported only when a player
is opened, so the CLI starts as fast without ``--media mpris:``.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from phone_bridge.errors import BadInput

if TYPE_CHECKING:
    from phone_bridge.mpris.player import MprisPlayer

__all__ = ["PREFIX", "is_mpris", "open_player"]

PREFIX = "mpris:"
_BUS_PREFIX = "org.mpris.MediaPlayer2."


def is_mpris(value: str | os.PathLike[str]) -> bool:
    """Whether a ``--media`` value names an MPRIS player (such a value is never a path)."""
    return str(value).startswith(PREFIX)


def open_player(value: str | os.PathLike[str], *, snapshot: bool = True) -> MprisPlayer:
    """The media player for ``--media mpris:`` or ``--media mpris:NAME``.

    Args:
        value: the ``--media`` value; ``NAME`` may also be the whole bus name.
        snapshot: read the players once now (outside an event loop only), so the first
            now-playing sent (``sync``) is the player's; ``run`` then follows them.

    Returns:
        The player; it connects to the bus in ``run`` (or ``snapshot``).

    Raises:
        BadInput: ``NAME`` cannot be part of a D-Bus name.
    """
    name = str(value)[len(PREFIX) :]
    name = name[len(_BUS_PREFIX) :] if name.startswith(_BUS_PREFIX) else name
    from phone_bridge.mpris.model import valid_player_name
    from phone_bridge.mpris.player import MprisPlayer

    if name and not valid_player_name(name):
        raise BadInput(
            f"--media {value}: {name!r} is not an MPRIS player name "
            f"(letters, digits, _ and -, in dot-separated parts; e.g. mpris:vlc)"
        )
    player = MprisPlayer(name or None)
    if snapshot and not _in_event_loop():
        asyncio.run(player.snapshot())
    return player


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
