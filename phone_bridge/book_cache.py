"""A cache of the parsed address book, so an unchanged vCard file is not parsed again.

Parsing 10k vCards costs ~0.3-0.7 s; reading back what they gave costs ~20 ms. The cache
holds what ``protocol.vcard.import_vcards`` returned for one file's bytes, keyed by those
bytes' BLAKE2b hash (never by mtime: an edit within the same second, or a copied file,
must not be missed), and by the importer's version: the hash of the importer's source
(``protocol/vcard*.py``, ``contacts.py``, ``errors.py``) and ``FORMAT``, so a changed
importer parses again instead of trusting what an older one gave.

Layout, in the phone's state directory::

    books/<path key>.mpk    "CHK1" + importer version (16) + content hash (32) + msgpack

one file per vCard path (the key is a hash of the resolved path): a new version of the file
replaces its entry. A file is replaced atomically (a temporary file, then a rename) and is
mode 0600 like the rest of the state. A cache that cannot be read or decoded is logged as
one line and ignored (the file is parsed again and the entry rewritten); a cache that
cannot be written is logged and skipped. Never fatal: it only ever costs a parse.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import cache
from pathlib import Path

import msgspec

import protocol
from protocol.contacts import Contact, Photo
from protocol.errors import VCardError
from protocol.vcard import ImportResult, import_vcards
from shell.files import write_private

__all__ = ["FORMAT", "BookCache", "importer_version"]

log = logging.getLogger("phone_bridge.book_cache")

FORMAT = 1  # bump when _Book changes shape
_MAGIC = b"CHK1"
_VERSION_SIZE = 16
_HASH_SIZE = 32
_HEADER = len(_MAGIC) + _VERSION_SIZE + _HASH_SIZE


class _Book(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One ``ImportResult``, as stored (errors as ``(line, reason)`` pairs)."""

    contacts: list[Contact]
    photos: list[Photo]
    errors: list[tuple[int, str]]
    warnings: list[tuple[int, str]]
    cards_seen: int
    is_vcard: bool
    truncated: bool


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Book)


@cache
def importer_version() -> bytes:
    """The importer's version: a hash of its source files and of ``FORMAT``.

    Returns:
        16 bytes; any edit to the importer (or the contact types) changes them.
    """
    root = Path(protocol.__file__).parent
    files = [*sorted(root.glob("vcard*.py")), root / "contacts.py", root / "errors.py"]
    h = hashlib.blake2b(FORMAT.to_bytes(4, "big"), digest_size=_VERSION_SIZE)
    for f in files:
        h.update(f.name.encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError:  # no source (a zipped install): never match an older entry
            h.update(os.urandom(16))
    return h.digest()


class BookCache:
    """The parsed-book cache of one state directory.

    Args:
        state_dir: the phone's state directory (``books/`` is created in it on first write).
    """

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "books"
        self.hits = 0
        self.misses = 0

    def importer(self, path: Path) -> _Importer:
        """An ``import_vcards`` for the bytes of ``path`` that goes through the cache."""
        return _Importer(self, self._entry(path))

    def _entry(self, path: Path) -> Path:
        key = hashlib.blake2b(str(path.resolve()).encode(), digest_size=8).hexdigest()
        return self.dir / f"{key}.mpk"

    def load(self, entry: Path, digest: bytes) -> ImportResult | None:
        """The cached import of the bytes whose hash is ``digest``, or None."""
        try:
            data = entry.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("book cache %s unreadable (%s): parsing the file", entry, exc.strerror)
            return None
        if data[:_HEADER] != _MAGIC + importer_version() + digest:
            return None  # another version of the file, or of the importer
        try:
            book = _decoder.decode(memoryview(data)[_HEADER:])
        except (msgspec.MsgspecError, UnicodeDecodeError, ValueError) as exc:
            log.warning("book cache %s is corrupt (%s): parsing the file", entry, exc)
            return None
        return ImportResult(
            book.contacts,
            {p.hash: p for p in book.photos},
            [VCardError(line, reason) for line, reason in book.errors],
            book.cards_seen,
            is_vcard=book.is_vcard,
            warnings=[VCardError(line, reason) for line, reason in book.warnings],
            truncated=book.truncated,
        )

    def store(self, entry: Path, digest: bytes, result: ImportResult) -> None:
        """Replace ``entry`` with ``result`` (atomically, mode 0600); log a failure."""
        book = _Book(
            result.contacts,
            list(result.photos.values()),
            [(e.line, e.reason) for e in result.errors],
            [(e.line, e.reason) for e in result.warnings],
            result.cards_seen,
            result.is_vcard,
            result.truncated,
        )
        body = _MAGIC + importer_version() + digest + _encoder.encode(book)
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(entry, body)
        except OSError as exc:
            log.warning("book cache %s not written (%s)", entry, exc.strerror or exc)


class _Importer:
    """``import_vcards`` through the cache, for one path (``load_contacts(importer=)``)."""

    def __init__(self, owner: BookCache, entry: Path) -> None:
        self.owner = owner
        self.entry = entry

    def __call__(self, data: bytes) -> ImportResult:
        digest = hashlib.blake2b(data, digest_size=_HASH_SIZE).digest()
        cached = self.owner.load(self.entry, digest)
        if cached is not None:
            self.owner.hits += 1
            return cached
        self.owner.misses += 1
        result = import_vcards(data)
        self.owner.store(self.entry, digest, result)
        return result
