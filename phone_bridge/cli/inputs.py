"""The user's files, read before connecting: a bad file changes nothing on the car."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from phone_bridge.cli.app import fail
from phone_bridge.errors import BridgeError

if TYPE_CHECKING:
    from phone_bridge.engine import Contacts
    from phone_bridge.player import Player

__all__ = ["read_contacts", "read_media"]


def read_contacts(path: Path, as_json: bool, allow_empty: bool = False) -> Contacts:
    """Parse the vCard file, or fail with one line.

    Raises:
        typer.Exit: unreadable, not a vCard file, cut short, no card readable, or empty
            without ``allow_empty`` (exit 2).
    """
    from phone_bridge.engine import load_contacts

    try:
        return load_contacts(path, allow_empty=allow_empty)
    except BridgeError as exc:
        raise fail(exc, as_json) from None


def read_media(path: Path, as_json: bool) -> Player:
    """Load a folder of audio files or a playlist into a player, or fail with one line.

    Raises:
        typer.Exit: nothing playable there (exit 2).
    """
    # Imported here: mutagen is only needed with --media.
    from phone_bridge.media_source import load_tracks
    from phone_bridge.player import Player

    try:
        tracks, artwork = load_tracks(path)
    except BridgeError as exc:  # MediaSourceError, a BadInput
        raise fail(exc, as_json) from None
    return Player(tracks, artwork)
