"""The fault tests' own checks can fail: each is fed a wreck it must refuse.

``Mirror`` is built by hand here (no processes) from a small book in two versions, as the
car would hold it after a sync from the old version to the new one was cut short.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.faults.mirror import Book, Mirror

_enc = msgspec.msgpack.Encoder()


def _books(tmp_path: Path) -> tuple[Book, Book]:
    old = Book.write(tmp_path / "old.vcf", 1_200)
    new = Book.write(tmp_path / "new.vcf", 1_200, version=1)
    assert new.boundaries == [500, 1_000, 1_200]
    return old, new


def _mirror(new: Book, old: Book, k: int) -> Mirror:
    """The first ``k`` contacts of ``new``, the rest of ``old``."""
    rows = [(c.uid, _enc.encode(c)) for c in new.contacts[:k] + old.contacts[k:]]
    return Mirror(rows, bytes(16))


def test_whole_batches_pass_and_torn_ones_fail(tmp_path: Path) -> None:
    old, new = _books(tmp_path)
    for k in (0, 500, 1_000, 1_200):
        assert _mirror(new, old, k).assert_whole_batches(new, old) == k
    with pytest.raises(AssertionError, match="not a whole number of batches"):
        _mirror(new, old, 499).assert_whole_batches(new, old)


def test_a_duplicate_a_gap_or_a_third_version_fails(tmp_path: Path) -> None:
    old, new = _books(tmp_path)
    m = _mirror(new, old, 500)
    with pytest.raises(AssertionError, match="duplicate"):
        Mirror([*m.rows, m.rows[0]], m.anchor).assert_whole_batches(new, old)
    with pytest.raises(AssertionError, match="old contacts left"):
        Mirror(m.rows[:-1], m.anchor).assert_whole_batches(new, old)
    # The new version of contacts 500..999 but not 0..499: whole in count, not a prefix.
    rows = [(c.uid, _enc.encode(c)) for c in old.contacts[:500] + new.contacts[500:1_000]]
    rows += [(c.uid, _enc.encode(c)) for c in old.contacts[1_000:]]
    with pytest.raises(AssertionError, match="not the phone's first"):
        Mirror(rows, m.anchor).assert_whole_batches(new, old)
    other = Book.write(tmp_path / "other.vcf", 1_200, version=7)
    rows = [*m.rows[:-1], (other.contacts[-1].uid, _enc.encode(other.contacts[-1]))]
    with pytest.raises(AssertionError, match="neither version"):
        Mirror(rows, m.anchor).assert_whole_batches(new, old)


def test_the_end_state_check_needs_every_contact_once(tmp_path: Path) -> None:
    old, new = _books(tmp_path)
    _mirror(new, old, 1_200).assert_is(new)
    with pytest.raises(AssertionError):
        _mirror(new, old, 1_000).assert_is(new)
    with pytest.raises(AssertionError):
        _mirror(new, old, 1_200).assert_is(old)
