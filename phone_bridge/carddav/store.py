"""What the phone remembers of a CardDAV address book, in its state directory.

    carddav/<key>.mpk   "CDV1" + msgpack ``BookState``, mode 0600, replaced atomically

``<key>`` is a hash of the URL and the user given, so two books (or two accounts) never
share a file. The state holds the address book found behind the URL, the RFC 6578 sync
token, and for each href its ETag, the card's UID and the card itself: a later pull fetches
only what changed, and every sync to the car is made from the whole stored book, so the
car's mirror receives exactly the delta. A state file that cannot be read is logged and
replaced by a full pull; the cards' UIDs are stable, so that never duplicates on the car.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import msgspec

from phone_bridge.errors import StateError
from shell.files import write_private

__all__ = ["BookState", "StoredCard", "load_book_state", "save_book_state", "state_path"]

log = logging.getLogger("phone_bridge.carddav")
_MAGIC = b"CDV1"


class StoredCard(msgspec.Struct, array_like=True, frozen=True):
    """One card of the book as the server last gave it."""

    etag: str
    uid: str  # the UID the importer gave it ("" if it could not be read)
    data: bytes


class BookState(msgspec.Struct):
    """The pull state of one address book."""

    source: str  # the URL the user gave
    book: str = ""  # the address book found behind it ("" until discovered)
    sync_collection: bool = True  # False: the server has no RFC 6578; compare ETags
    token: str = ""  # the last sync token ("" before the first pull)
    cards: dict[str, StoredCard] = msgspec.field(default_factory=dict)  # by href


_decoder = msgspec.msgpack.Decoder(BookState)
_encoder = msgspec.msgpack.Encoder()


def state_path(root: Path, url: str, user: str | None) -> Path:
    """Where the state of ``url`` read as ``user`` lives under the state dir ``root``."""
    key = hashlib.sha256(f"{url}\n{user or ''}".encode()).hexdigest()[:16]
    return root / "carddav" / f"{key}.mpk"


def load_book_state(path: Path, url: str) -> BookState:
    """Read the state at ``path``, or a fresh one (nothing pulled yet) for ``url``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return BookState(source=url)
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if not data.startswith(_MAGIC):
            raise msgspec.DecodeError("bad magic")
        state = _decoder.decode(data[len(_MAGIC) :])
    except msgspec.DecodeError as exc:
        log.warning("%s is unreadable (%s); pulling the whole address book again", path, exc)
        return BookState(source=url)
    if state.source != url:
        return BookState(source=url)
    return state


def save_book_state(path: Path, state: BookState) -> None:
    """Replace the state at ``path`` atomically (temporary file, fsync, rename), mode 0600.

    Raises:
        StateError: the state directory is not writable.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(path, _MAGIC + _encoder.encode(state), durable=True)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror}") from exc
