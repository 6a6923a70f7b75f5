"""The emulated phone's phone book: a .vcf file, an owner card, a call history, and the
DatabaseIdentifier and version counters kept in the state dir (files 0600).

The file is re-read when its modification time or size changes (``refresh``, polled
once a second by the phone), and the counters move by ``protocol.pbap.cards``'s rules.
A file in UTF-16 or with a byte-order mark is re-encoded to UTF-8 before it is served.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from pathlib import Path

from phone_bridge.errors import BadInput, StateError
from protocol.pbap import split_cards
from protocol.pbap.cards import CounterState, next_counters
from protocol.pbap.server import Book
from protocol.vcard_lex import looks_like_vcard

__all__ = ["COUNTERS_FILE", "DATABASE_ID_FILE", "BookFile", "owner_card"]

log = logging.getLogger(__name__)

DATABASE_ID_FILE = "pbap-database-id"
COUNTERS_FILE = "pbap-counters.json"
MAX_FILE = 256 * 1024 * 1024  # a phone book with photos; more is not a phone book


def owner_card(name: str) -> bytes:
    """The phone's own card (handle 0): FN and N from ``name``, a number."""
    clean = name.replace("\\", "").replace(";", " ").replace(",", " ").strip() or "Owner"
    given, _, family = clean.rpartition(" ") if " " in clean else ("", "", clean)
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{clean}\r\nN:{family};{given};;;\r\n"
            "TEL;TYPE=CELL:+1 555 0100\r\nEND:VCARD\r\n").encode()


def _read_cards(path: Path, what: str) -> list[bytes]:
    """The vCard blocks of a file, or BadInput with one line."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise BadInput(f"{what} file {path} is over {MAX_FILE // 2**20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {what} file {path}: {exc.strerror}") from None
    if not data.strip():
        return []
    if not looks_like_vcard(data):
        raise BadInput(f"{what} file {path} is not a vCard file")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = data.decode("utf-16").encode("utf-8")
    data = data.removeprefix(b"\xef\xbb\xbf")
    return split_cards(data)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateError(f"cannot write {path}: {exc.strerror}") from None


class BookFile:
    """The book a ``PbapService`` serves, kept up to date with its files.

    Args:
        contacts: the .vcf file of contacts.
        state_dir: where the DatabaseIdentifier and counters persist (created 0700).
        owner: the owner card's name (handle 0).
        calls: a .vcf file of call history cards (PBAP cch format), or None.

    Raises:
        BadInput: a file is missing, unreadable or not a vCard file.
        StateError: the state dir or its files cannot be used.
    """

    def __init__(self, contacts: Path, state_dir: Path, *, owner: str = "Emulated Owner",
                 calls: Path | None = None) -> None:
        self.contacts, self.calls_path, self.owner = contacts, calls, owner
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"cannot create {state_dir}: {exc.strerror}") from None
        self._db_path = state_dir / DATABASE_ID_FILE
        self._counters_path = state_dir / COUNTERS_FILE
        self.database_id = self._database_id()
        self._counters = self._load_counters()
        self._calls: tuple[bytes, ...] = tuple(_read_cards(calls, "calls")) if calls else ()
        self._stamp: tuple[int, int] | None = None
        self.book = self._build(self._read())

    def _database_id(self) -> bytes:
        try:
            return bytes.fromhex(self._db_path.read_text(encoding="ascii").strip())[:16].ljust(
                16, b"\0")
        except FileNotFoundError:
            value = secrets.token_bytes(16)
            _write_private(self._db_path, value.hex() + "\n")
            return value
        except (OSError, ValueError) as exc:
            raise StateError(f"{self._db_path} is unusable ({exc}); delete it") from None

    def _load_counters(self) -> CounterState | None:
        try:
            raw = json.loads(self._counters_path.read_text(encoding="utf-8"))
            return CounterState(int(raw["primary"]), int(raw["secondary"]),
                                str(raw["primary_digest"]), str(raw["secondary_digest"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s unusable (%s): counters start again", self._counters_path, exc)
            return None

    def _read(self) -> list[bytes]:
        st = self.contacts.stat() if self.contacts.exists() else None
        self._stamp = (st.st_mtime_ns, st.st_size) if st else None
        return [owner_card(self.owner), *_read_cards(self.contacts, "contacts")]

    def _build(self, cards: list[bytes]) -> Book:
        state = next_counters(self._counters, cards)
        if state is not self._counters:
            _write_private(self._counters_path, json.dumps({
                "primary": state.primary, "secondary": state.secondary,
                "primary_digest": state.primary_digest,
                "secondary_digest": state.secondary_digest}) + "\n")
            self._counters = state
        return Book(tuple(cards), self._calls, self.database_id,
                    state.primary_bytes(), state.secondary_bytes())

    @property
    def counters(self) -> tuple[int, int]:
        """The primary and secondary version counters now."""
        assert self._counters is not None
        return self._counters.primary, self._counters.secondary

    def refresh(self) -> bool:
        """Re-read the contacts file if it changed since the last read.

        Returns:
            True when the book was rebuilt (its counters may or may not have moved: they
            move only when the content changed). A file that became unreadable or not a
            vCard file is logged once and the last good book is kept.
        """
        try:
            st = self.contacts.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return False
        try:
            before = self.counters
            self.book = self._build(self._read())
        except (BadInput, StateError) as exc:
            self._stamp = stamp
            log.warning("contacts not reloaded, the last good book stays: %s", exc)
            return False
        log.info("contacts reloaded: %d cards, counters %s -> %s",
                 len(self.book.cards) - 1, before, self.counters)
        return True
