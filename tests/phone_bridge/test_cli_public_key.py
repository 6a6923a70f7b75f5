"""``shell.keys.load_public_key``: the id ``status`` shows is always the key file's.

``status`` reads the public key from ``phone.key.pub`` instead of deriving it (which needs
cryptography's X25519); the cache is trusted only while it belongs to the key file's
current bytes, so a replaced key (a restored backup) shows its own id at once.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from protocol.identity import Identity
from shell.errors import KeyFileError
from shell.keys import load_or_create_identity, load_public_key


def test_the_cached_key_is_the_derived_one_and_private(tmp_path: Path) -> None:
    key = tmp_path / "phone.key"
    first = load_public_key(key)  # creates the identity and the cache
    assert first == load_or_create_identity(key).public_key
    cache = tmp_path / "phone.key.pub"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert load_public_key(key) == first


def test_a_replaced_key_is_not_shown_with_the_old_id(tmp_path: Path) -> None:
    key = tmp_path / "phone.key"
    old = load_public_key(key)
    other = Identity.generate()
    key.write_bytes(other.private_bytes())  # a restored backup, say
    assert load_public_key(key) == other.public_key != old


def test_a_forged_cache_is_ignored(tmp_path: Path) -> None:
    key = tmp_path / "phone.key"
    real = load_public_key(key)
    cache = tmp_path / "phone.key.pub"
    cache.write_bytes(cache.read_bytes()[:16] + bytes(32))  # the tag kept, another key
    assert load_public_key(key) == real
    cache.write_bytes(b"short")
    assert load_public_key(key) == real


def test_a_key_readable_by_others_is_refused_as_before(tmp_path: Path) -> None:
    key = tmp_path / "phone.key"
    load_public_key(key)
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match="must be 0600"):
        load_public_key(key)
