"""protocol.intake: the car's bound on unauthenticated connections, per peer and in all."""

from __future__ import annotations

import pytest

from protocol.intake import MAX_PENDING, MAX_PENDING_PER_PEER, ConnectionIntake


def test_the_figures_are_the_documented_ones() -> None:
    assert (MAX_PENDING_PER_PEER, MAX_PENDING) == (8, 64)


def test_under_the_bounds_nothing_is_displaced() -> None:
    intake = ConnectionIntake(per_peer=3, total=5)
    assert [intake.admit("a").evict for _ in range(3)] == [(), (), ()]
    assert intake.pending("a") == 3 and intake.pending() == 3


def test_a_peer_at_its_bound_displaces_its_own_oldest() -> None:
    intake = ConnectionIntake(per_peer=2, total=10)
    first, second = intake.admit("a"), intake.admit("a")
    other = intake.admit("b")
    third = intake.admit("a")
    assert third.evict == (first.ticket,)
    assert intake.pending("a") == 2 and intake.pending("b") == 1
    assert intake.admit("a").evict == (second.ticket,)
    assert other.ticket not in intake.admit("a").evict


def test_at_the_total_the_busiest_peer_loses_its_oldest() -> None:
    intake = ConnectionIntake(per_peer=3, total=4)
    phone = intake.admit("phone")  # the oldest of all, but its peer holds only one
    flood = [intake.admit("x") for _ in range(3)]
    newcomer = intake.admit("y")
    assert newcomer.evict == (flood[0].ticket,)
    assert intake.pending("phone") == 1 and intake.pending() == 4
    assert phone.ticket not in intake.admit("z").evict


def test_release_is_idempotent_and_frees_the_slot() -> None:
    intake = ConnectionIntake(per_peer=1, total=1)
    a = intake.admit("a")
    intake.release(a.ticket)
    intake.release(a.ticket)
    assert intake.pending() == 0
    assert intake.admit("b").evict == ()
    intake.release(a.ticket)  # an old ticket never frees someone else's slot
    assert intake.pending() == 1


def test_a_displaced_ticket_is_no_longer_counted() -> None:
    intake = ConnectionIntake(per_peer=1, total=8)
    old = intake.admit("a")
    intake.admit("a")
    intake.release(old.ticket)  # its connection ends later: changes nothing
    assert intake.pending("a") == 1


def test_bounds_must_make_sense() -> None:
    with pytest.raises(ValueError):
        ConnectionIntake(per_peer=0, total=1)
    with pytest.raises(ValueError):
        ConnectionIntake(per_peer=5, total=4)
