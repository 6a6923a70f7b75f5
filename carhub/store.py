"""The car's SQLite store: paired phones (pinned keys), their contacts, media and artwork.

One SQLite file in WAL mode in the state directory. Every contacts batch is applied in one
transaction together with its new anchor, so a crash or a full disk leaves the mirror at
the previous anchor and the phone's resume logic re-sends the batch. Unpairing deletes a
phone's row and, through ``ON DELETE CASCADE``, everything stored for it.

A ``phones`` row is a CarHub phone's (``kind`` "carhub", its pinned key) or a Bluetooth
Classic phone's (``kind`` "classic", no key: ``carhub.store_classic``, which adds that
phone's tables); pinning, lookups and listing here see "carhub" rows only.

Contacts are stored as their msgpack encoding (the very bytes the phone sent, see
``apply_synced``) plus a lower-cased ``search`` column for the dashboard's filter.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import msgspec

from carhub.errors import CarhubError
from protocol.contacts import Contact, Photo
from protocol.sync import ApplyBatch, MirrorState

__all__ = ["ApplePhoneRecord", "PhoneRecord", "Store", "StoreError"]

_SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS phones (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    public_key BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    paired_at REAL NOT NULL,
    last_sync REAL,
    anchor BLOB NOT NULL DEFAULT x'00000000000000000000000000000000',
    -- "carhub": a pinned key; "classic": a PBAP phone's mirror (no key; carhub.store_classic)
    kind TEXT NOT NULL DEFAULT 'carhub'
);
CREATE TABLE IF NOT EXISTS contacts (
    phone_id TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    digest BLOB NOT NULL,
    name TEXT NOT NULL,
    search TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (phone_id, uid)
);  -- a rowid table: rows are ~300 B, where WITHOUT ROWID inserts are 2x slower
-- No index on name: maintaining one tripled the cost of a 100k-contact sync, while
-- sorting one phone's contacts for a dashboard page takes milliseconds.
DROP INDEX IF EXISTS contacts_by_name;
CREATE TABLE IF NOT EXISTS photos (
    phone_id TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE,
    hash BLOB NOT NULL,
    mime TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (phone_id, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS media (
    phone_id TEXT PRIMARY KEY REFERENCES phones(id) ON DELETE CASCADE,
    data BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS artwork (
    phone_id TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE,
    hash BLOB NOT NULL,
    mime TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (phone_id, hash)
) WITHOUT ROWID;
-- Apple-profile phones (AMS/ANCS over BLE): no key pinned here (the LE bond is carhub.ble's),
-- no contacts. A table of its own, so a database of an older car gains it on open.
CREATE TABLE IF NOT EXISTS apple_phones (
    id TEXT PRIMARY KEY,  -- the identity address, 12 lower-case hex digits
    name TEXT NOT NULL,
    profiles TEXT NOT NULL DEFAULT '',  -- what it offered when last connected: "ams,ancs"
    bonded_at REAL NOT NULL
);
"""

_enc = msgspec.msgpack.Encoder()
_contact_dec = msgspec.msgpack.Decoder(Contact)


class StoreError(CarhubError):
    """The store could not complete an operation (disk full, corrupt file, ...)."""


@dataclass(frozen=True)
class PhoneRecord:
    id: str
    name: str
    public_key: bytes
    fingerprint: str
    paired_at: float
    last_sync: float | None
    contacts: int


@dataclass(frozen=True)
class ApplePhoneRecord:
    id: str
    name: str
    profiles: tuple[str, ...]
    bonded_at: float


class Store:
    """Thread-safe wrapper of one SQLite connection.

    Args:
        path: the database file; its folder must exist.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # check_same_thread=False: today every call comes from the event loop (a 500-contact
            # batch commits in a few ms); the lock keeps it safe if a caller uses a thread.
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # The page cache holds a 100k-contact book's index. (A larger WAL before each
            # checkpoint was faster but filled a small car disk: tests/faults disk_full.)
            self._db.execute("PRAGMA cache_size=-16000")
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(phones)")}
            if "kind" not in columns:  # a database of a car from before Classic phones
                self._db.execute(
                    "ALTER TABLE phones ADD COLUMN kind TEXT NOT NULL DEFAULT 'carhub'"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one IMMEDIATE transaction; translate SQLite errors."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(str(exc)) from exc

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        # SQLite rows are untyped; each caller converts its columns.
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from exc

    # -- phones ------------------------------------------------------------------------
    def add_phone(
        self, phone_id: str, name: str, public_key: bytes, fingerprint: str, now: float
    ) -> None:
        """Pin a newly paired phone (re-pairing replaces its key and erases its old data)."""
        with self._tx() as db:
            # Never over a Classic phone's row: the INSERT then fails and nothing is pinned.
            db.execute("DELETE FROM phones WHERE id = ? AND kind = 'carhub'", (phone_id,))
            db.execute(
                "INSERT INTO phones (id, name, public_key, fingerprint, paired_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (phone_id, name, public_key, fingerprint, now),
            )

    def pinned_key(self, phone_id: str) -> bytes | None:
        """Return the pinned public key of a paired phone."""
        rows = self._query(
            "SELECT public_key FROM phones WHERE id = ? AND kind = 'carhub'", (phone_id,)
        )
        return bytes(rows[0][0]) if rows else None

    def phones(self) -> list[PhoneRecord]:
        """Return every paired phone with its contact count."""
        rows = self._query(
            "SELECT p.id, p.name, p.public_key, p.fingerprint, p.paired_at, p.last_sync,"
            " (SELECT COUNT(*) FROM contacts c WHERE c.phone_id = p.id)"
            " FROM phones p WHERE p.kind = 'carhub' ORDER BY p.paired_at"
        )
        return [PhoneRecord(*r) for r in rows]

    def phone(self, phone_id: str) -> PhoneRecord | None:
        """Return one paired phone."""
        return next((p for p in self.phones() if p.id == phone_id), None)

    def delete_phone(self, phone_id: str) -> bool:
        """Unpair: delete the phone's key and every contact, photo, media row and artwork."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM phones WHERE id = ?", (phone_id,))
            return cur.rowcount > 0

    def rename_phone(self, phone_id: str, name: str) -> None:
        """Record the name the phone announced in its latest Hello."""
        with self._tx() as db:
            db.execute(
                "UPDATE phones SET name = ? WHERE id = ? AND kind = 'carhub'", (name, phone_id)
            )

    # -- Apple-profile phones ------------------------------------------------------------
    def add_apple_phone(self, phone_id: str, name: str, now: float) -> None:
        """Remember a newly bonded Apple-profile phone (a re-bond keeps its last profiles)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO apple_phones (id, name, bonded_at) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE"
                " SET name = excluded.name, bonded_at = excluded.bonded_at",
                (phone_id, name, now),
            )

    def apple_phones(self) -> list[ApplePhoneRecord]:
        """Return every bonded Apple-profile phone, oldest bond first."""
        rows = self._query(
            "SELECT id, name, profiles, bonded_at FROM apple_phones ORDER BY bonded_at"
        )
        return [
            ApplePhoneRecord(str(i), str(n), tuple(p for p in str(pr).split(",") if p), float(t))
            for i, n, pr, t in rows
        ]

    def set_apple_profiles(self, phone_id: str, profiles: tuple[str, ...]) -> None:
        """Record what the phone offers now (shown while it is away)."""
        with self._tx() as db:
            db.execute(
                "UPDATE apple_phones SET profiles = ? WHERE id = ?", (",".join(profiles), phone_id)
            )

    def delete_apple_phone(self, phone_id: str) -> bool:
        """Forget an Apple-profile phone; True if it was bonded."""
        with self._tx() as db:
            return db.execute("DELETE FROM apple_phones WHERE id = ?", (phone_id,)).rowcount > 0

    # -- contacts ----------------------------------------------------------------------
    def mirror_state(self, phone_id: str) -> MirrorState:
        """Load what the sync machine needs: the anchor, digests and photo hashes."""
        with self._lock:
            row = self._db.execute("SELECT anchor FROM phones WHERE id = ?", (phone_id,)).fetchone()
            digests = dict(
                self._db.execute("SELECT uid, digest FROM contacts WHERE phone_id = ?", (phone_id,))
            )
            photos = {
                bytes(h)
                for (h,) in self._db.execute(
                    "SELECT hash FROM photos WHERE phone_id = ?", (phone_id,)
                )
            }
        anchor = bytes(row[0]) if row else bytes(16)
        return MirrorState(anchor=anchor, digests=digests, photos=photos)

    def apply_batch(
        self,
        phone_id: str,
        *,
        upserts: list[tuple[Contact, bytes]],
        deletes: list[str],
        photos: list[Photo],
        anchor: bytes,
        now: float,
    ) -> None:
        """Apply one contacts batch and its new anchor atomically.

        Args:
            upserts: contacts with their digests.
            deletes: uids to remove.
            photos: photo blobs to keep.
            anchor: the mirror's anchor after this batch.
            now: Unix time, recorded as the phone's last sync.

        Raises:
            StoreError: nothing was applied (for example the disk is full).
        """
        rows = [
            (phone_id, c.uid, digest, c.fn.casefold(), _search_text(c), _enc.encode(c))
            for c, digest in upserts
        ]
        self._apply(phone_id, rows, deletes, photos, anchor, now)

    def apply_synced(self, phone_id: str, batch: ApplyBatch, *, now: float) -> None:
        """Apply one batch as ``ContactsReceiver`` handed it over, atomically with its anchor.

        Each contact is kept as the msgpack bytes the phone sent (``batch.encoded``), under
        the digest the receiver made of those same bytes: nothing is encoded again.

        Raises:
            StoreError: nothing was applied (for example the disk is full).
        """
        # The receiver always fills ``encoded`` (it encodes only when no bytes came with it).
        ups = batch.upserts
        if not len(ups) == len(batch.digests) == len(batch.encoded):
            raise ValueError("an ApplyBatch needs a digest and the bytes of every upsert")
        rows = list(
            zip(
                repeat(phone_id),
                map(_UID, ups),
                map(_DIGEST, batch.digests),
                map(str.casefold, map(_FN, ups)),
                map(_search_text, ups),
                batch.encoded,
            )
        )
        self._apply(phone_id, rows, batch.deletes, batch.photos, batch.new_anchor, now)

    def _apply(
        self,
        phone_id: str,
        rows: list[tuple[str, str, bytes, str, str, bytes]],
        deletes: list[str],
        photos: list[Photo],
        anchor: bytes,
        now: float,
        also: Sequence[tuple[str, tuple[object, ...]]] = (),
    ) -> None:
        """Write contact rows, deletes, photos, the new anchor and ``also``'s SQL in one
        transaction (``carhub.store_classic`` adds a Classic phone's state so)."""
        with self._tx() as db:
            for sql, args in also:
                db.execute(sql, args)
            db.executemany(
                "INSERT OR REPLACE INTO contacts (phone_id, uid, digest, name, search, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany(
                "DELETE FROM contacts WHERE phone_id = ? AND uid = ?",
                [(phone_id, uid) for uid in deletes],
            )
            db.executemany(
                "INSERT OR IGNORE INTO photos (phone_id, hash, mime, data) VALUES (?, ?, ?, ?)",
                [(phone_id, p.hash, p.mime, p.data) for p in photos],
            )
            db.execute(
                "UPDATE phones SET anchor = ?, last_sync = ? WHERE id = ?",
                (anchor, now, phone_id),
            )

    def contacts(
        self, phone_id: str, q: str = "", limit: int = 50, offset: int = 0
    ) -> tuple[int, list[Contact]]:
        """Return (total matching, one page of contacts sorted by name)."""
        where, args = "phone_id = ?", [phone_id]
        if q:
            where += " AND search LIKE ? ESCAPE '\\'"
            args.append("%" + _like_escape(q.casefold()) + "%")
        total = self._query(f"SELECT COUNT(*) FROM contacts WHERE {where}", tuple(args))[0][0]
        rows = self._query(
            f"SELECT data FROM contacts WHERE {where} ORDER BY name LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return int(total), [_contact_dec.decode(r[0]) for r in rows]

    def photo(self, phone_id: str, photo_hash: bytes) -> Photo | None:
        """Return a stored contact photo."""
        rows = self._query(
            "SELECT mime, data FROM photos WHERE phone_id = ? AND hash = ?", (phone_id, photo_hash)
        )
        if not rows:
            return None
        mime, data = rows[0]
        return Photo(hash=photo_hash, mime=str(mime), data=bytes(data))

    # -- media -------------------------------------------------------------------------
    def set_media(self, phone_id: str, data: bytes, received_at_ms: int) -> None:
        """Keep the phone's latest now-playing message (encoded)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO media (phone_id, data, received_at_ms) VALUES (?, ?, ?)",
                (phone_id, data, received_at_ms),
            )

    def all_media(self) -> list[tuple[str, bytes, int]]:
        """Return every phone's last now-playing message, oldest first."""
        rows = self._query(
            "SELECT phone_id, data, received_at_ms FROM media ORDER BY received_at_ms"
        )
        return [(str(p), bytes(d), int(t)) for p, d, t in rows]

    def media(self, phone_id: str) -> tuple[bytes, int] | None:
        """Return the phone's latest now-playing message and when it arrived."""
        rows = self._query("SELECT data, received_at_ms FROM media WHERE phone_id = ?", (phone_id,))
        return (bytes(rows[0][0]), int(rows[0][1])) if rows else None

    def put_artwork(self, phone_id: str, art_hash: bytes, mime: str, data: bytes) -> None:
        """Keep one artwork image, by hash."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO artwork (phone_id, hash, mime, data) VALUES (?, ?, ?, ?)",
                (phone_id, art_hash, mime, data),
            )

    def artwork(self, phone_id: str, art_hash: bytes) -> tuple[str, bytes] | None:
        """Return (mime, bytes) of an artwork image."""
        rows = self._query(
            "SELECT mime, data FROM artwork WHERE phone_id = ? AND hash = ?", (phone_id, art_hash)
        )
        return (str(rows[0][0]), bytes(rows[0][1])) if rows else None

    def has_artwork(self, phone_id: str, art_hash: bytes) -> bool:
        """Tell whether an artwork image is already stored."""
        return bool(
            self._query(
                "SELECT 1 FROM artwork WHERE phone_id = ? AND hash = ?", (phone_id, art_hash)
            )
        )


_NUMBER, _ADDRESS = operator.attrgetter("number"), operator.attrgetter("address")
_UID, _FN, _DIGEST = operator.attrgetter("uid"), operator.attrgetter("fn"), operator.itemgetter(1)


def _search_text(c: Contact) -> str:
    """The lower-cased text the dashboard search matches against."""
    return " ".join((c.fn, c.org, *map(_NUMBER, c.phones), *map(_ADDRESS, c.emails))).casefold()


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
