"""The store's part for Bluetooth Classic (PBAP) phones: bonds, book state, recent calls.

A Classic phone's contacts and photos live in the store's own ``contacts`` and ``photos``
tables, so the dashboard's listing, search and unpair work for it as for any phone. Those
tables reference ``phones(id)``, so a Classic phone also has a ``phones`` row, of ``kind``
"classic" and with no key: ``Store.pinned_key``, ``Store.phones`` and ``Store.add_phone``
see only "carhub" rows, so no CarHub phone can authenticate as (or pair over) a Classic
phone's id. Deleting that row erases everything of the phone through ``ON DELETE CASCADE``.

``classic_phones`` keeps the bond's name, the owner card's name and what the last complete
pull stored (``BookState``; ``has_state`` 0 when there is none, or when a pull has begun
writing pages and not finished: the next connection then pulls again). Pages are written
through ``Store._apply``, each in one transaction with that mark; ``finish`` applies a
pull's deletes, drops the photos left unused and keeps the new state in one transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from carhub.classic import CallEntry
from carhub.store import Store, StoreError, _search_text
from protocol.contacts import Contact, Photo
from protocol.pbap import BookState

__all__ = ["MAX_CALLS", "ClassicPhoneRecord", "ClassicStore"]

MAX_CALLS = 100  # the recent calls kept per phone (the newest; cch.vcf can hold more)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS classic_phones (
    id TEXT PRIMARY KEY REFERENCES phones(id) ON DELETE CASCADE,  -- BD_ADDR, 12 hex digits
    name TEXT NOT NULL,
    owner TEXT,  -- the owner card's name (handle 0.vcf), not a contact
    has_state INTEGER NOT NULL DEFAULT 0,
    database_id BLOB,
    primary_counter BLOB,
    secondary_counter BLOB,
    size INTEGER NOT NULL DEFAULT 0,
    bonded_at REAL NOT NULL,
    last_pull REAL  -- the last pull that read the book whole (or found it unchanged)
);
CREATE TABLE IF NOT EXISTS classic_calls (
    phone_id TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE,
    pos INTEGER NOT NULL,  -- 0 is the newest
    name TEXT NOT NULL,
    number TEXT NOT NULL,
    type TEXT NOT NULL,
    date TEXT NOT NULL,
    PRIMARY KEY (phone_id, pos)
) WITHOUT ROWID;
"""
_NO_ANCHOR = bytes(16)  # Classic rows have no sync anchor; _apply writes one anyway
_contact_dec = msgspec.msgpack.Decoder(Contact)
_enc = msgspec.msgpack.Encoder()
_STATE_SQL = (
    "UPDATE classic_phones SET has_state = ?, database_id = ?, primary_counter = ?,"
    " secondary_counter = ?, size = ?, last_pull = ? WHERE id = ?"
)


class ClassicPhoneRecord(msgspec.Struct, frozen=True):
    """A bonded Classic phone as stored."""

    id: str
    name: str
    owner: str | None
    bonded_at: float
    last_pull: float | None
    contacts: int


class ClassicStore:
    """Classic phones' tables, on the car's one ``Store`` (its lock and transactions).

    Args:
        store: the open store; the Classic tables are created in it if missing.

    Raises:
        StoreError: the tables could not be created.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        with store._tx() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    # -- bonds -----------------------------------------------------------------------------
    def add(self, phone_id: str, name: str, fingerprint: str, now: float) -> None:
        """Remember a bonded phone; a re-bond keeps its mirror, state and calls.

        Raises:
            StoreError: not stored (the id is a CarHub phone's, or the disk is full).
        """
        with self.store._tx() as db:
            kind = db.execute("SELECT kind FROM phones WHERE id = ?", (phone_id,)).fetchone()
            if kind is None:
                db.execute(
                    "INSERT INTO phones (id, name, public_key, fingerprint, paired_at, kind)"
                    " VALUES (?, ?, x'', ?, ?, 'classic')",
                    (phone_id, name, fingerprint, now),
                )
            elif kind[0] != "classic":
                raise StoreError(f"{phone_id} is a CarHub phone's id")
            db.execute(
                "INSERT INTO classic_phones (id, name, bonded_at) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                " bonded_at = excluded.bonded_at",
                (phone_id, name, now),
            )

    def phones(self) -> list[ClassicPhoneRecord]:
        """Every bonded Classic phone with its contact count, oldest bond first."""
        rows = self.store._query(
            "SELECT k.id, k.name, k.owner, k.bonded_at, k.last_pull,"
            " (SELECT COUNT(*) FROM contacts c WHERE c.phone_id = k.id)"
            " FROM classic_phones k ORDER BY k.bonded_at"
        )
        return [ClassicPhoneRecord(*r) for r in rows]

    def is_bonded(self, phone_id: str) -> bool:
        """Whether the phone is a bonded Classic phone."""
        return bool(self.store._query("SELECT 1 FROM classic_phones WHERE id = ?", (phone_id,)))

    def delete(self, phone_id: str) -> bool:
        """Erase the phone: its row, contacts, photos, state and calls (cascade)."""
        with self.store._tx() as db:
            cur = db.execute("DELETE FROM phones WHERE id = ? AND kind = 'classic'", (phone_id,))
            return cur.rowcount > 0

    # -- the book --------------------------------------------------------------------------
    def book_state(self, phone_id: str) -> BookState | None:
        """What the last complete pull stored, or None."""
        rows = self.store._query(
            "SELECT has_state, database_id, primary_counter, secondary_counter, size"
            " FROM classic_phones WHERE id = ?",
            (phone_id,),
        )
        if not rows or not rows[0][0]:
            return None
        _, db_id, primary, secondary, size = rows[0]
        return BookState(_blob(db_id), _blob(primary), _blob(secondary), int(size))

    def stored(self, phone_id: str, uids: list[str]) -> dict[str, tuple[bytes, Contact]]:
        """The stored digest and contact of each of ``uids`` the car has."""
        out: dict[str, tuple[bytes, Contact]] = {}
        unique = sorted(set(uids))
        for at in range(0, len(unique), 500):  # well under SQLite's bound on variables
            chunk = unique[at : at + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.store._query(
                f"SELECT uid, digest, data FROM contacts WHERE phone_id = ? AND uid IN ({marks})",
                (phone_id, *chunk),
            )
            out.update((str(u), (bytes(d), _contact_dec.decode(b))) for u, d, b in rows)
        return out

    def uids(self, phone_id: str) -> list[str]:
        """Every stored uid of the phone."""
        rows = self.store._query("SELECT uid FROM contacts WHERE phone_id = ?", (phone_id,))
        return [str(r[0]) for r in rows]

    def write_page(
        self,
        phone_id: str,
        upserts: list[tuple[Contact, bytes]],
        photos: list[Photo],
        owner: str | None,
        now: float,
    ) -> None:
        """Store one page atomically, and mark the stored state void until ``finish``.

        Raises:
            StoreError: nothing of the page was stored.
        """
        rows = [
            (phone_id, c.uid, digest, c.fn.casefold(), _search_text(c), _enc.encode(c))
            for c, digest in upserts
        ]
        also: list[tuple[str, tuple[object, ...]]] = [
            ("UPDATE classic_phones SET has_state = 0 WHERE id = ?", (phone_id,))
        ]
        if owner is not None:
            also.append(("UPDATE classic_phones SET owner = ? WHERE id = ?", (owner, phone_id)))
        self.store._apply(phone_id, rows, [], photos, _NO_ANCHOR, now, also=also)

    def finish(
        self, phone_id: str, deletes: list[str], state: BookState | None, now: float
    ) -> None:
        """Apply a whole pull's deletes, drop the photos no remaining contact names and keep
        its state (None: pull again), all in one transaction.

        Raises:
            StoreError: nothing was deleted or stored.
        """
        with self.store._tx() as db:
            db.execute(_STATE_SQL, (*_state_args(state), now, phone_id))
            db.executemany(
                "DELETE FROM contacts WHERE phone_id = ? AND uid = ?",
                [(phone_id, uid) for uid in deletes],
            )
            db.execute(
                "UPDATE phones SET anchor = ?, last_sync = ? WHERE id = ?",
                (_NO_ANCHOR, now, phone_id),
            )
            _drop_orphan_photos(db, phone_id)

    def keep_state(self, phone_id: str, state: BookState, now: float) -> None:
        """A pull found the book unchanged: keep ``state`` as the last complete one."""
        with self.store._tx() as db:
            db.execute(_STATE_SQL, (*_state_args(state), now, phone_id))

    def void_state(self, phone_id: str) -> None:
        """Forget the stored state (the mirror stays): the next connection pulls again.

        Raises:
            StoreError: not stored.
        """
        with self.store._tx() as db:
            db.execute("UPDATE classic_phones SET has_state = 0 WHERE id = ?", (phone_id,))

    # -- calls -----------------------------------------------------------------------------
    def set_calls(self, phone_id: str, calls: list[CallEntry]) -> None:
        """Replace the phone's recent calls with the newest ``MAX_CALLS`` of ``calls``."""
        rows = [
            (phone_id, i, c.name, c.number, c.type, c.date) for i, c in enumerate(calls[:MAX_CALLS])
        ]
        with self.store._tx() as db:
            db.execute("DELETE FROM classic_calls WHERE phone_id = ?", (phone_id,))
            db.executemany("INSERT INTO classic_calls VALUES (?, ?, ?, ?, ?, ?)", rows)

    def calls(self, phone_id: str) -> list[CallEntry]:
        """The phone's recent calls, newest first."""
        rows = self.store._query(
            "SELECT name, number, type, date FROM classic_calls WHERE phone_id = ? ORDER BY pos",
            (phone_id,),
        )
        return [CallEntry(str(n), str(no), t, str(d)) for n, no, t, d in rows]


def _drop_orphan_photos(db: sqlite3.Connection, phone_id: str) -> None:
    """Delete the phone's photos that no stored contact names (a photo replaced or gone)."""
    rows = db.execute("SELECT data FROM contacts WHERE phone_id = ?", (phone_id,))
    used = {_contact_dec.decode(r[0]).photo for r in rows}
    stored = db.execute("SELECT hash FROM photos WHERE phone_id = ?", (phone_id,)).fetchall()
    gone = [(phone_id, bytes(h)) for (h,) in stored if bytes(h) not in used]
    db.executemany("DELETE FROM photos WHERE phone_id = ? AND hash = ?", gone)


def _blob(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _state_args(state: BookState | None) -> tuple[object, ...]:
    if state is None:
        return (0, None, None, None, 0)
    return (1, state.database_id, state.primary, state.secondary, state.size)
