"""Framing: length prefix, hard maximum, BLE segmentation, split-anywhere reassembly."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import FramingError, LocalProtocolError
from protocol.framing import (
    HEADER_SIZE,
    MAX_FRAME_SIZE,
    FrameDecoder,
    encode_frame,
    pack_messages,
    segment,
)


def feed_bytewise(stream: bytes) -> list[bytes]:
    dec = FrameDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += dec.frames(stream[i : i + 1])
    return out


def test_round_trip_whole_and_bytewise() -> None:
    payloads = [b"", b"a", b"hello" * 100, bytes(range(256))]
    stream = b"".join(encode_frame(p) for p in payloads)
    assert FrameDecoder().frames(stream) == payloads
    assert feed_bytewise(stream) == payloads


def test_partial_frame_is_kept_not_consumed() -> None:
    dec = FrameDecoder()
    frame = encode_frame(b"abcdef")
    assert dec.frames(frame[:7]) == []
    assert dec.buffered == 7
    assert dec.frames(frame[7:]) == [b"abcdef"]
    assert dec.buffered == 0


def test_oversized_length_prefix_rejected_before_buffering() -> None:
    dec = FrameDecoder()
    with pytest.raises(FramingError) as info:
        dec.frames((MAX_FRAME_SIZE + 1).to_bytes(4, "big"))
    assert info.value.reason.value == "frame-too-large"
    with pytest.raises(FramingError):  # stays failed
        dec.frames(b"")


def test_encode_refuses_oversized_payload() -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(b"x" * (MAX_FRAME_SIZE + 1))


@pytest.mark.parametrize("mtu", [23, 24, 185, 247, 512, 517])
def test_segment_respects_mtu_and_reassembles(mtu: int) -> None:
    payloads = [b"x" * 1000, b"", b"y" * 3]
    stream = b"".join(encode_frame(p) for p in payloads)
    chunks = list(segment(stream, mtu))
    assert all(0 < len(c) <= mtu - 3 for c in chunks)
    dec = FrameDecoder()
    got: list[bytes] = []
    for c in chunks:
        got += dec.frames(c)
    assert got == payloads


@pytest.mark.parametrize("mtu", [0, 22, 518])
def test_segment_rejects_impossible_mtu(mtu: int) -> None:
    with pytest.raises(LocalProtocolError):
        list(segment(b"abc", mtu))


@given(st.lists(st.binary(max_size=300), max_size=8), st.data())
def test_any_split_gives_same_frames(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = FrameDecoder()
    got: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        got += dec.frames(stream[prev:cut])
        prev = cut
    assert got == payloads


@given(st.binary(max_size=64))
def test_garbage_gives_frames_or_clean_error(garbage: bytes) -> None:
    dec = FrameDecoder(max_frame_size=1024)
    try:
        dec.frames(garbage)
    except FramingError:
        pass


@given(
    st.lists(st.integers(0, 300), max_size=12),
    st.integers(HEADER_SIZE + 300, 2_000),
    st.binary(max_size=40),
)
def test_pack_messages_keeps_frames_whole_under_the_limit(
    sizes: list[int], limit: int, tail: bytes
) -> None:
    frames = [encode_frame(bytes([i % 256]) * n) for i, n in enumerate(sizes)]
    data = b"".join(frames) + tail  # a tail that is no whole frame is cut anywhere
    messages = list(pack_messages(data, limit))
    assert b"".join(messages) == data
    assert all(len(m) <= limit for m in messages)
    # Every boundary between two messages falls on a frame boundary, up to the tail.
    bounds = set(itertools.accumulate(len(f) for f in frames))
    whole = len(data) - len(tail)
    assert all(b in bounds or b > whole for b in itertools.accumulate(map(len, messages[:-1])))


def test_pack_messages_of_a_sync_sized_flush() -> None:
    big = encode_frame(bytes(MAX_FRAME_SIZE))
    small = encode_frame(b"x")
    limit = MAX_FRAME_SIZE + 64
    assert list(pack_messages(small + small, limit)) == [small + small]
    assert list(pack_messages(small + big + small + big, limit)) == [small + big + small, big]
    assert list(pack_messages(big + big, limit)) == [big, big]
    assert list(pack_messages(b"", limit)) == [b""]
    assert list(pack_messages(b"\xff" * 10, 4)) == [b"\xff" * 4, b"\xff" * 4, b"\xff" * 2]
