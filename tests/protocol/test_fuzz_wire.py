"""Hypothesis fuzzing of what was not fuzzed yet (issue 12): application payloads (the codec
byte and zstd), both connection machines fed any bytes in any split at any time, and the
PBAP call-history reader. Each may refuse only with its documented error (or, for the
connections, a ``ConnectionFailed`` event: ``receive_data`` itself never raises), must
finish within the deadline, and must not buffer past its bounds.

Sized for CI: the whole file runs in a few seconds.
"""

from __future__ import annotations

import random
import tracemalloc
from datetime import timedelta

import msgspec
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.admission import PairingAdmission
from protocol.connection import CarConnection, ConnectionFailed, PhoneConnection, State
from protocol.errors import MessageError
from protocol.framing import encode_frame
from protocol.identity import Identity
from protocol.messages import SUPPORTED_VERSIONS, Hello, decode_app, encode, encode_app
from protocol.pbap.calls import parse_calls

FAST = settings(max_examples=200, deadline=timedelta(seconds=1),
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
CAR_ID = Identity.from_private_bytes(random.Random(1).randbytes(32))
PHONE_ID = Identity.from_private_bytes(random.Random(2).randbytes(32))
PHONE_HELLO = encode(Hello(versions=list(SUPPORTED_VERSIONS), role="phone",
                           device_id=PHONE_ID.device_id, name="Pixel", intent="pair"))  # fmt: skip
CAR_HELLO = encode(Hello(versions=list(SUPPORTED_VERSIONS), role="car",
                         device_id=CAR_ID.device_id, name="Car", selected=1))  # fmt: skip


# -- application payloads (PROTOCOL.md section 3) --------------------------------------
msgpackish = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip
zstd_frames = st.builds(
    lambda body, level, cut: zstandard.ZstdCompressor(level=level).compress(body)[:cut],
    st.binary(max_size=600), st.integers(1, 5), st.integers(0, 700),
)  # fmt: skip
payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda c, b: bytes((c,)) + b, st.integers(0, 3), st.binary(max_size=200)),
    st.builds(lambda v: b"\x00" + msgspec.msgpack.encode(v), msgpackish),
    st.builds(lambda f: b"\x01" + f, zstd_frames),
    st.builds(lambda v: b"\x01" + zstandard.compress(msgspec.msgpack.encode(v)), msgpackish),
)


@FAST
@given(payloads)
def test_application_payloads_decode_or_raise_message_error(data: bytes) -> None:
    try:
        msg = decode_app(data)
    except MessageError:
        return
    assert decode_app(encode_app(msg)) == msg  # what decodes is a message that round-trips


def test_a_zstd_bomb_is_refused_without_inflating_it() -> None:
    # 1 GiB of zeros compresses to ~32 KiB; its header says so, and the car refuses it.
    cctx = zstandard.ZstdCompressor(level=1)
    bomb = b"\x01" + cctx.compress(b"\x00" * (64 << 20))
    tracemalloc.start()
    try:
        try:
            decode_app(bomb)
        except MessageError:
            pass
        else:
            raise AssertionError("a 64 MiB payload decoded")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


# -- both connection machines, fed anything --------------------------------------------
def _car() -> CarConnection:
    return CarConnection(CAR_ID, "Car", lookup_peer=lambda _id: None,
                         admission=PairingAdmission(open_=True))  # fmt: skip


def _feed(conn: CarConnection | PhoneConnection, data: bytes, cuts: list[int],
          times: list[float]) -> None:  # fmt: skip
    """Feed ``data`` in pieces at increasing times; drain everything after each piece."""
    pos, now = 0, 0.0
    for i, cut in enumerate([*cuts, len(data)]):
        piece, pos = data[pos : pos + cut], pos + cut
        now += times[i % len(times)] if times else 0.0
        if conn.state is State.CLOSED:
            break
        conn.receive_data(piece, now)  # never raises while alive
        conn.tick(now)
        out = conn.data_to_send()
        assert len(out) <= 64 * 1024  # answers stay small before the session
        while (event := conn.next_event()) is not None:
            if isinstance(event, ConnectionFailed):
                assert conn.state.value == "closed"  # the state moved under mypy's feet


frame_streams = st.one_of(
    st.binary(max_size=400),
    st.lists(st.binary(max_size=80), max_size=6).map(lambda ps: b"".join(map(encode_frame, ps))),
    st.lists(payloads, max_size=4).map(lambda ps: b"".join(encode_frame(p[1:]) for p in ps)),
)
cut_lists = st.lists(st.integers(0, 64), max_size=8)
time_steps = st.lists(st.floats(0, 30, allow_nan=False), max_size=4)


@FAST
@given(st.booleans(), frame_streams, cut_lists, time_steps)
def test_the_car_connection_survives_any_stream(
    hello_first: bool, stream: bytes, cuts: list[int], times: list[float]
) -> None:
    data = (encode_frame(PHONE_HELLO) if hello_first else b"") + stream
    _feed(_car(), data, cuts, times)


@FAST
@given(st.booleans(), frame_streams, cut_lists, time_steps)
def test_the_phone_connection_survives_any_stream(
    hello_first: bool, stream: bytes, cuts: list[int], times: list[float]
) -> None:
    conn = PhoneConnection(PHONE_ID, "Pixel")
    conn.data_to_send()
    data = (encode_frame(CAR_HELLO) if hello_first else b"") + stream
    _feed(conn, data, cuts, times)


def test_a_huge_length_prefix_is_refused_without_buffering() -> None:
    conn = _car()
    tracemalloc.start()
    try:
        conn.receive_data((1 << 30).to_bytes(4, "big") + b"\x00" * 60_000, 0.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert conn.state is State.CLOSED and peak < 256 * 1024, peak
    assert isinstance(conn.next_event(), ConnectionFailed)


# -- PBAP call history (never raises, by its contract) ---------------------------------
call_lines = st.sampled_from([
    b"BEGIN:VCARD", b"END:VCARD", b"VERSION:2.1", b"VERSION:3.0", b"N:Doe;Jane",
    b"FN:Jane", b"TEL:+15550100", b"X-IRMC-CALL-DATETIME;MISSED:20240101T120000",
    b"X-IRMC-CALL-DATETIME;RECEIVED:2024", b"X-IRMC-CALL-DATETIME;DIALED:", b"TEL;CELL:",
    b"N;ENCODING=QUOTED-PRINTABLE:=C3=A9=", b"N;CHARSET=UTF-7:x", b" folded", b"\xff\xfe",
])  # fmt: skip


@FAST
@given(st.one_of(st.binary(max_size=400),
                 st.lists(call_lines, max_size=30).map(b"\r\n".join)),
       st.integers(0, 5))  # fmt: skip
def test_call_history_never_raises(body: bytes, limit: int) -> None:
    history = parse_calls(body, limit=limit)
    assert len(history.calls) <= limit and history.skipped >= 0
