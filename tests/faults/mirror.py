"""What a user checks after a fault: the car's SQLite file, its mirror, the phone's book.

A ``Book`` is the phone's vCard file parsed as ``phone-bridge`` parses it, plus where the
sync splits it into batches (the phone's own ``ContactsSender`` planning a sync into an
empty mirror), so a test can say "the car holds exactly the first k whole batches".
Every check raises ``AssertionError`` with what it saw; the tests add their seed.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import msgspec

from phone_bridge.state import PhoneState
from protocol.contacts import Contact
from protocol.sync import EMPTY_ANCHOR, ContactsBatch, ContactsSender, ContactsState
from protocol.vcard import import_vcards
from shell.sample_data import generate_vcards
from tests.e2e.helpers import Car

__all__ = ["Book", "Mirror", "db_path", "integrity", "seeded"]

_dec = msgspec.msgpack.Decoder(Contact)


def seeded(name: str, seed: int | None = None) -> tuple[random.Random, int]:
    """A RNG and its seed (random unless given), for failure messages to repeat a run."""
    seed = random.randrange(2**32) if seed is None else seed
    print(f"{name}: seed {seed}")
    return random.Random(seed), seed


@dataclass
class Book:
    """The phone's contacts in file order, and the batch boundaries of a full sync."""

    path: Path
    contacts: list[Contact]
    boundaries: list[int]  # contacts held after each whole batch of a sync from empty
    data: bytes = b""

    @classmethod
    def write(cls, path: Path, count: int, version: int = 0) -> Book:
        """Write ``count`` sample cards; ``version`` > 0 changes every card's family name
        (not FN, from which a card without a UID gets its uid)."""
        data = generate_vcards(count)
        if version:
            data = data.replace(b"\r\nN:", b"\r\nN:v%d " % version)
        path.write_bytes(data)
        return cls.read(path)

    def install(self) -> Book:
        """Write this version back to its file (the phone reads it at its next sync)."""
        self.path.write_bytes(self.data)
        return self

    @classmethod
    def read(cls, path: Path) -> Book:
        data = path.read_bytes()
        result = import_vcards(data)
        assert not result.errors and not result.truncated, result.errors[:3]
        contacts = list(result.contacts)
        sender = ContactsSender(contacts, dict(result.photos), None, window=10**9)
        batches = sender.receive(ContactsState(EMPTY_ANCHOR, 0))
        sizes = [len(b.upserts) for b in batches if isinstance(b, ContactsBatch)]
        bounds = [sum(sizes[: i + 1]) for i in range(len(sizes))]
        return cls(path, contacts, bounds, data)

    @cached_property
    def by_uid(self) -> dict[str, Contact]:
        return {c.uid: c for c in self.contacts}


@dataclass
class Mirror:
    """One phone's contacts in the car's SQLite file, read as another process would."""

    rows: list[tuple[str, bytes]]  # (uid, stored msgpack bytes), every row, duplicates kept
    anchor: bytes

    @classmethod
    def load(cls, car: Car, phone_id: str) -> Mirror:
        """Read the mirror (read-only; the car may be running, or dead since a kill -9)."""
        with _ro(car) as db:
            rows = [
                (str(u), bytes(d))
                for u, d in db.execute(
                    "SELECT uid, data FROM contacts WHERE phone_id = ?", (phone_id,)
                )
            ]
            row = db.execute("SELECT anchor FROM phones WHERE id = ?", (phone_id,)).fetchone()
        return cls(rows, bytes(row[0]) if row else bytes(16))

    @property
    def uids(self) -> list[str]:
        return [u for u, _ in self.rows]

    def assert_whole_batches(self, new: Book, old: Book | None = None) -> int:
        """A sync from ``old`` (None: an empty mirror) to ``new`` was cut short: the car
        holds the first k contacts of ``new`` as the phone has them, k a whole number of
        batches, and every other contact as ``old`` has it. Returns k.
        """
        n = len(self.rows)
        assert len(set(self.uids)) == n, f"duplicate uids on the car ({n} rows)"
        mine, before = new.by_uid, old.by_uid if old else {}
        fresh = {uid for uid, data in self.rows if _dec.decode(data) == mine.get(uid)}
        k = len(fresh)
        assert k == 0 or k in new.boundaries, (
            f"the car holds {k} contacts of the new book: not a whole number of batches "
            f"(batches end at {new.boundaries[:3]}...{new.boundaries[-1]})"
        )
        assert fresh == {c.uid for c in new.contacts[:k]}, (
            f"the car's {k} new contacts are not the phone's first {k}"
        )
        stale = [(uid, data) for uid, data in self.rows if uid not in fresh]
        bad = [uid for uid, data in stale if _dec.decode(data) != before.get(uid)]
        assert not bad, f"{len(bad)} contacts on the car are neither version, e.g. {bad[:3]}"
        expected = len(before) - k if before else 0  # the versions share their uids
        assert len(stale) == expected, (
            f"{len(stale)} old contacts left beside {k} new: expected {expected}"
        )
        return k

    def assert_equal_to_phone(self, book: Book) -> None:
        """Every contact the car holds is the phone's version of it, field for field."""
        mine = book.by_uid
        for uid, data in self.rows:
            assert _dec.decode(data) == mine.get(uid), f"the car's {uid} differs from the phone's"

    def assert_is(self, book: Book) -> None:
        """The car holds exactly the phone's book: same uids, once each, same contents."""
        assert len(self.rows) == len(book.contacts), (len(self.rows), len(book.contacts))
        assert len(set(self.uids)) == len(self.rows), "duplicate uids on the car"
        assert set(self.uids) == set(book.by_uid), "the car's uids are not the phone's"
        self.assert_equal_to_phone(book)

    def assert_holds_acked(self, phone_dir: Path, car_id: str) -> int:
        """Nothing the phone saw acked is missing: every contact of its last acked snapshot
        is on the car as acked, or as a batch the phone sent after it (stored, ack lost).

        Returns:
            How many contacts the phone counts as acked.
        """
        snap = PhoneState(phone_dir).snapshot(car_id)
        acked = snap.digests if snap else {}
        later = {(u, d) for item in (snap.inflight if snap else []) for u, d in item.upserts}
        held = {uid: _digest(data) for uid, data in self.rows}
        lost = [u for u, d in acked.items() if held.get(u) != d and (u, held.get(u)) not in later]
        assert not lost, f"{len(lost)} acked contacts not on the car, e.g. {lost[:3]}"
        return len(acked)


def integrity(car: Car) -> str:
    """``PRAGMA integrity_check`` of the car's database ("ok" when intact)."""
    with _ro(car) as db:
        return "; ".join(str(r[0]) for r in db.execute("PRAGMA integrity_check"))


def db_path(car: Car) -> Path:
    return car.state_dir / "carhub.sqlite3"


class _ro:
    """A read-only connection to the car's database, closed on exit."""

    def __init__(self, car: Car) -> None:
        path = db_path(car)
        assert path.exists(), f"no database at {path}"
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc: object) -> None:
        self.db.close()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()
