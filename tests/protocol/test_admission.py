"""The car's pairing policy: window, one at a time, three rate limits, the one-time QR secret."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.admission import OOB_LIFETIME, PairingAdmission, Refusal
from protocol.errors import PairingError, Reason
from protocol.identity import Identity, PairingUri

CAR = Identity.generate()
A, B = object(), object()  # two connections


def opened(seconds: float = 0, now: float = 0.0) -> PairingAdmission:
    adm = PairingAdmission()
    adm.open(now, seconds)
    return adm


def reason(r: Refusal | None) -> Reason | None:
    return r.reason if r is not None else None


# -- the window ---------------------------------------------------------------------------
def test_closed_window_refuses() -> None:
    adm = PairingAdmission()
    assert reason(adm.request(A, "p1", "", 0.0)) is Reason.PAIRING_CLOSED
    err = adm.request(A, "p1", "", 0.0)
    assert err is not None and isinstance(err.error(), PairingError)


def test_window_closes_itself_at_its_deadline_and_zero_never_does() -> None:
    adm = opened(10, now=100.0)
    assert adm.is_open(109.9) and adm.closes_at == 110.0
    assert not adm.is_open(110.0) and adm.closes_at is None
    forever = opened(0)
    assert forever.is_open(1e9) and forever.closes_at is None


def test_window_that_starts_open() -> None:
    adm = PairingAdmission(open_=True, closes_at=5.0)
    assert adm.is_open(4.0) and not adm.is_open(5.0)


# -- one at a time ------------------------------------------------------------------------
def test_one_pairing_at_a_time() -> None:
    adm = opened()
    assert adm.request(A, "pa", "10.0.0.2", 1.0) is None
    assert adm.request(A, "pa", "10.0.0.2", 1.0) is None  # the holder may ask again
    assert reason(adm.request(B, "pb", "10.0.0.3", 1.0)) is Reason.PAIRING_BUSY
    adm.finished(A, "pa", "10.0.0.2", paired=True, now=2.0)
    assert adm.request(B, "pb", "10.0.0.3", 2.0) is None


def test_may_pin_refuses_a_connection_that_does_not_hold_the_slot() -> None:
    adm = opened()
    assert adm.request(A, "pa", "", 1.0) is None
    assert reason(adm.may_pin(B, None, 1.0)) is Reason.PAIRING_BUSY
    assert adm.may_pin(A, None, 1.0) is None


# -- rate limits --------------------------------------------------------------------------
def fail(adm: PairingAdmission, phone_id: str, peer: str, now: float) -> None:
    holder = object()
    adm.request(holder, phone_id, peer, now)
    adm.finished(holder, phone_id, peer, paired=False, now=now)


def test_rate_limits_one_phone_then_lets_it_back() -> None:
    adm = opened()
    for i in range(5):
        fail(adm, "p1", "", 1000.0 + i)
    assert reason(adm.request(A, "p1", "", 1005.0)) is Reason.RATE_LIMITED
    assert adm.request(B, "p2", "", 1005.0) is None  # another phone is not punished
    adm.finished(B, "p2", "", paired=True, now=1005.0)
    assert adm.request(A, "p1", "", 1004.0 + 31) is None  # the 30 s lockout is over


def test_global_bucket_stops_id_rotation() -> None:
    adm = opened()
    for i in range(20):  # each id fails once, far below the per-phone limit
        fail(adm, f"rotating-{i}", f"10.0.0.{i}", 1000.0)
    assert reason(adm.request(A, "brand-new", "10.9.9.9", 1001.0)) is Reason.RATE_LIMITED


def rotate(adm: PairingAdmission, n: int, now: float, tag: str) -> None:
    """A stranger fails ``n`` pairings, with a fresh id and a fresh address each time."""
    for i in range(n):
        fail(adm, f"{tag}-id-{i}", f"{tag}-addr-{i}", now)


def test_car_wide_lockouts_grow_while_a_stranger_keeps_rotating_addresses() -> None:
    adm = opened()
    rotate(adm, 20, 1000.0, "a")
    assert reason(adm.request(A, "owner", "10.0.0.1", 1029.0)) is Reason.RATE_LIMITED
    rotate(adm, 20, 1030.0, "b")  # the first lockout (30 s) is over: the stranger goes on
    # The second lockout of the streak lasts 60 s, not another 30 s.
    assert reason(adm.request(A, "owner", "10.0.0.1", 1030.0 + 45)) is Reason.RATE_LIMITED
    rotate(adm, 20, 1090.0, "c")
    assert reason(adm.request(A, "owner", "10.0.0.1", 1090.0 + 100)) is Reason.RATE_LIMITED
    assert adm.request(A, "owner", "10.0.0.1", 1090.0 + 120) is None


def test_a_legit_pairing_after_the_backoff_works_and_ends_the_streak() -> None:
    adm = opened()
    rotate(adm, 20, 0.0, "a")
    rotate(adm, 20, 30.0, "b")  # locked until 90
    assert adm.request(A, "owner", "10.0.0.1", 90.0) is None
    assert adm.may_pin(A, None, 91.0) is None
    adm.finished(A, "owner", "10.0.0.1", paired=True, now=91.0)
    rotate(adm, 20, 100.0, "c")  # a new streak starts at 30 s again
    assert reason(adm.request(B, "p2", "10.0.0.2", 129.0)) is Reason.RATE_LIMITED
    assert adm.request(B, "p2", "10.0.0.2", 130.0) is None


def test_hellos_refused_while_the_window_is_closed_do_not_spend_the_car_wide_budget() -> None:
    adm = PairingAdmission()
    rotate(adm, 40, 0.0, "closed")  # each is refused pairing-closed
    adm.open(1.0, 0)
    assert adm.request(A, "owner", "10.0.0.1", 1.0) is None


def test_hellos_refused_as_busy_do_not_spend_the_car_wide_budget() -> None:
    adm = opened()
    assert adm.request(A, "owner", "10.0.0.1", 0.0) is None
    rotate(adm, 40, 0.0, "busy")  # each is refused pairing-busy: A holds the slot
    adm.finished(A, "owner", "10.0.0.1", paired=False, now=1.0)
    assert adm.request(B, "owner", "10.0.0.1", 1.0) is None


def test_rate_limit_also_keys_on_the_peer_address() -> None:
    adm = opened()
    for i in range(5):  # a fresh claimed id each time, from one host
        fail(adm, f"id-{i}", "10.0.0.9", 1.0)
    assert reason(adm.request(A, "id-new", "10.0.0.9", 2.0)) is Reason.RATE_LIMITED
    assert adm.request(A, "id-new", "10.0.0.10", 2.0) is None


def test_success_clears_the_phones_count() -> None:
    adm = opened()
    for i in range(4):
        fail(adm, "p1", "h", float(i))
    adm.request(A, "p1", "h", 4.0)
    adm.finished(A, "p1", "h", paired=True, now=4.0)
    fail(adm, "p1", "h", 5.0)
    assert adm.request(A, "p1", "h", 5.0) is None


# -- the QR secret ------------------------------------------------------------------------
def test_show_uri_opens_the_window_and_expires_with_it() -> None:
    adm = PairingAdmission()
    uri = PairingUri.create(CAR)
    assert adm.show_uri(uri, 100.0, 120) == 220.0
    assert adm.is_open(100.0) and adm.oob_secret(100.0) == uri.secret
    assert adm.shown_uri(219.0) == (uri, 220.0)
    assert adm.shown_uri(220.0) is None and adm.oob_secret(220.0) is None


def test_without_a_window_end_the_code_lasts_oob_lifetime() -> None:
    adm = opened(0)
    uri = PairingUri.create(CAR)
    assert adm.show_uri(uri, 10.0, 120) == 10.0 + OOB_LIFETIME
    assert adm.is_open(10.0 + OOB_LIFETIME)  # the window stays, the code goes
    assert adm.shown_uri(10.0 + OOB_LIFETIME) is None


def test_closing_the_window_drops_the_code() -> None:
    adm = PairingAdmission()
    adm.show_uri(PairingUri.create(CAR), 0.0, 120)
    adm.close()
    assert adm.shown_uri(1.0) is None


def test_the_secret_is_one_time_and_replaceable() -> None:
    adm = PairingAdmission()
    old = PairingUri.create(CAR)
    adm.show_uri(old, 0.0, 120)
    new = PairingUri.create(CAR)
    adm.show_uri(new, 1.0, 120)
    adm.request(A, "p", "", 1.0)
    assert reason(adm.may_pin(A, old.secret, 1.0)) is Reason.OOB_MISMATCH  # replaced
    assert adm.may_pin(A, new.secret, 1.0) is None
    assert adm.shown_uri(1.0) is None  # consumed
    assert reason(adm.may_pin(A, new.secret, 1.0)) is Reason.OOB_MISMATCH  # used


def test_a_numeric_pairing_does_not_consume_the_code() -> None:
    adm = PairingAdmission()
    uri = PairingUri.create(CAR)
    adm.show_uri(uri, 0.0, 120)
    adm.request(A, "p", "", 1.0)
    assert adm.may_pin(A, None, 1.0) is None
    assert adm.oob_secret(1.0) == uri.secret


# -- every state meets every input --------------------------------------------------------
STATES = ["closed", "open", "busy", "limited", "qr"]
INPUTS = ["request", "may_pin", "may_pin_oob", "finished_ok", "finished_fail", "close", "tick"]


def in_state(name: str) -> tuple[PairingAdmission, PairingUri]:
    adm = PairingAdmission()
    uri = PairingUri.create(CAR)
    if name != "closed":
        adm.open(0.0, 0)
    if name == "busy":
        adm.request(B, "other", "", 0.0)
    if name == "limited":
        for _ in range(5):
            fail(adm, "p", "h", 0.0)
    if name == "qr":
        adm.show_uri(uri, 0.0, 0)
    return adm, uri


EXPECTED_REQUEST = {
    "closed": Reason.PAIRING_CLOSED,
    "open": None,
    "busy": Reason.PAIRING_BUSY,
    "limited": Reason.RATE_LIMITED,
    "qr": None,
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("inp", INPUTS)
def test_every_state_meets_every_input(state: str, inp: str) -> None:
    adm, uri = in_state(state)
    if inp == "request":
        assert reason(adm.request(A, "p", "h", 1.0)) is EXPECTED_REQUEST[state]
    elif inp == "may_pin":
        want = {"busy": Reason.PAIRING_BUSY, "closed": Reason.PAIRING_CLOSED}.get(state)
        assert reason(adm.may_pin(A, None, 1.0)) is want
    elif inp == "may_pin_oob":
        got = reason(adm.may_pin(A, uri.secret, 1.0))
        want = {"busy": Reason.PAIRING_BUSY, "closed": Reason.PAIRING_CLOSED, "qr": None}.get(
            state, Reason.OOB_MISMATCH
        )
        assert got is want
    elif inp in ("finished_ok", "finished_fail"):
        adm.finished(A, "p", "h", paired=inp == "finished_ok", now=1.0)  # never raises
        assert adm.is_open(1.0) is (state != "closed")
    elif inp == "close":
        adm.close()
        assert not adm.is_open(1.0) and adm.shown_uri(1.0) is None
    else:
        assert adm.is_open(1e6) is (state != "closed")


# -- properties ---------------------------------------------------------------------------
ops = st.lists(
    st.tuples(
        st.sampled_from(["request", "pin", "fail", "ok", "open", "close", "uri"]),
        st.integers(0, 3),
        st.floats(0, 5, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_at_most_one_holder_and_a_secret_pins_at_most_once(steps: list) -> None:
    adm = PairingAdmission()
    holders = [object() for _ in range(4)]
    now, pins, uri = 0.0, 0, None
    for op, who, dt in steps:
        now += dt
        h = holders[who]
        if op == "request":
            admitted = adm.request(h, f"id{who}", f"h{who}", now) is None
            others = [x for x in holders if x is not h]
            if admitted:  # nobody else may be admitted until h finishes
                assert all(adm.request(x, "x", "", now) is not None for x in others[:1])
        elif op == "pin" and uri is not None:
            if adm.may_pin(h, uri.secret, now) is None:
                pins += 1
        elif op in ("fail", "ok"):
            adm.finished(h, f"id{who}", f"h{who}", paired=op == "ok", now=now)
        elif op == "open":
            adm.open(now, dt * 10)
        elif op == "close":
            adm.close()
        elif op == "uri":
            uri = PairingUri.create(CAR)
            adm.show_uri(uri, now, 30)
            pins = 0
        assert pins <= 1
        assert adm.shown_uri(now) is None or adm.is_open(now)
