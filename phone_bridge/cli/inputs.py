"""The user's files, read before connecting: a bad file changes nothing on the car."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from phone_bridge.cli.app import fail
from phone_bridge.errors import BridgeError

if TYPE_CHECKING:
    from phone_bridge.engine import Contacts
    from phone_bridge.player import MediaPlayer

__all__ = ["read_contacts", "read_media"]


def read_contacts(
    path: Path, as_json: bool, allow_empty: bool = False, state_dir: Path | None = None
) -> Contacts:
    """Parse the vCard file, or fail with one line.

    Args:
        path: the vCard file.
        as_json: report a failure as JSON on stdout too.
        allow_empty: accept an empty file (``--allow-deletes``).
        state_dir: the phone's state directory, whose ``BookCache`` then spares an
            unchanged file the parse.

    Raises:
        typer.Exit: unreadable, not a vCard file, cut short, no card readable, or empty
            without ``allow_empty`` (exit 2).
    """
    from phone_bridge.book_cache import BookCache
    from phone_bridge.engine import load_contacts
    from protocol.vcard import import_vcards

    importer = BookCache(state_dir).importer(path) if state_dir is not None else import_vcards
    try:
        return load_contacts(path, allow_empty=allow_empty, importer=importer)
    except BridgeError as exc:
        raise fail(exc, as_json) from None


def read_media(path: Path, as_json: bool) -> MediaPlayer:
    """Load a folder of audio files or a playlist into a player, or fail with one line.

    ``mpris:`` or ``mpris:NAME`` (never a path) follows an MPRIS player instead.

    Raises:
        typer.Exit: nothing playable there, or a bad MPRIS name (exit 2).
    """
    if str(path).startswith("mpris:"):
        from phone_bridge import mpris  # dbus_fast only with --media mpris:

        try:
            return mpris.open_player(path)
        except BridgeError as exc:
            raise fail(exc, as_json) from None
    # Imported here: mutagen is only needed with --media.
    from phone_bridge.media_source import load_tracks
    from phone_bridge.player import Player

    try:
        tracks, artwork = load_tracks(path)
    except BridgeError as exc:  # MediaSourceError, a BadInput
        raise fail(exc, as_json) from None
    return Player(tracks, artwork)
