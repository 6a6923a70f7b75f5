"""The store's Apple-profile phones, and the migration of a database an older car made."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from carhub.store import ApplePhoneRecord, Store

# The schema before issue 10 (phones, contacts, photos, media, artwork), as a car made it.
OLD_SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE phones (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, public_key BLOB NOT NULL,
    fingerprint TEXT NOT NULL, paired_at REAL NOT NULL, last_sync REAL,
    anchor BLOB NOT NULL DEFAULT x'00000000000000000000000000000000'
);
CREATE TABLE contacts (
    phone_id TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE, uid TEXT NOT NULL,
    digest BLOB NOT NULL, name TEXT NOT NULL, search TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (phone_id, uid)
);
CREATE TABLE photos (
    phone_id TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE, hash BLOB NOT NULL,
    mime TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (phone_id, hash)
) WITHOUT ROWID;
CREATE TABLE media (
    phone_id TEXT PRIMARY KEY REFERENCES phones(id) ON DELETE CASCADE,
    data BLOB NOT NULL, received_at_ms INTEGER NOT NULL
);
CREATE TABLE artwork (
    phone_id TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE, hash BLOB NOT NULL,
    mime TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (phone_id, hash)
) WITHOUT ROWID;
INSERT INTO phones (id, name, public_key, fingerprint, paired_at) VALUES
    ('c1', 'Pixel', x'00', 'fp', 1.0);
"""


def test_an_old_database_gains_apple_phones_and_keeps_its_phones(tmp_path: Path) -> None:
    path = tmp_path / "carhub.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.close()
    store = Store(path)
    try:
        assert [p.id for p in store.phones()] == ["c1"]
        assert store.apple_phones() == []
        store.add_apple_phone("a1b2c3d4e5f6", "iPhone", 5.0)
        store.set_apple_profiles("a1b2c3d4e5f6", ("ams", "ancs"))
        assert store.apple_phones() == [
            ApplePhoneRecord("a1b2c3d4e5f6", "iPhone", ("ams", "ancs"), 5.0)
        ]
    finally:
        store.close()
    # And it opens again (the migration runs on every open).
    again = Store(path)
    try:
        assert [p.profiles for p in again.apple_phones()] == [("ams", "ancs")]
        assert [p.id for p in again.phones()] == ["c1"]
    finally:
        again.close()


def test_a_rebond_keeps_the_last_profiles_and_delete_says_whether_it_was_bonded(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "carhub.sqlite3")
    try:
        store.add_apple_phone("p1", "Old name", 1.0)
        store.set_apple_profiles("p1", ("ancs",))
        store.add_apple_phone("p2", "Second", 2.0)
        store.add_apple_phone("p1", "New name", 3.0)
        assert store.apple_phones() == [
            ApplePhoneRecord("p2", "Second", (), 2.0),
            ApplePhoneRecord("p1", "New name", ("ancs",), 3.0),
        ]
        assert store.delete_apple_phone("p1") is True
        assert store.delete_apple_phone("p1") is False
        assert [p.id for p in store.apple_phones()] == ["p2"]
        assert store.phones() == []  # CarHub phones are another table
    finally:
        store.close()
