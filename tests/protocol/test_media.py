"""Media model: extrapolation, commands, playlist advance, wire round trips."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import MessageError
from protocol.media import (
    ArtworkRequest,
    MediaCommand,
    NowPlaying,
    PlayerState,
    Track,
    advance,
    apply_command,
    artwork_of,
    now_playing,
    position_at,
    sniff_image_mime,
)
from protocol.messages import decode, encode

ART = hashlib.sha256(b"cover").digest()
TRACKS = (
    Track("t1", "One", ("A",), "Alb", 10_000, ART),
    Track("t2", "Two", ("B", "C"), "Alb", 20_000),
    Track("t3", "Three", (), "", 5_000),
)


def np_(
    state: str = "playing", pos: int = 1000, dur: int = 10_000, rate: float = 1.0
) -> NowPlaying:
    return NowPlaying("T", ["A"], "Al", dur, pos, rate, state, ART, "id")  # type: ignore[arg-type]


# --- extrapolation --------------------------------------------------------------------


def test_playing_position_moves_at_rate() -> None:
    assert position_at(np_(), 100, 2100) == 3000
    assert position_at(np_(rate=1.5), 0, 2000) == 4000


def test_paused_and_stopped_positions_do_not_move() -> None:
    assert position_at(np_("paused"), 0, 60_000) == 1000
    assert position_at(np_("stopped"), 0, 60_000) == 1000


def test_position_clamps_to_duration_and_clock_skew() -> None:
    assert position_at(np_(), 0, 1_000_000) == 10_000
    assert position_at(np_(), 5000, 0) == 1000  # now before received: no going back
    assert position_at(np_(dur=0), 0, 1_000_000) == 1_001_000  # unknown duration: no cap


# --- player ----------------------------------------------------------------------------


def playing(at: int = 0, index: int = 0, pos: int = 0) -> PlayerState:
    return PlayerState(TRACKS, index=index, state="playing", position_ms=pos, since_ms=at)


def test_play_pause_toggle() -> None:
    s = apply_command(PlayerState(TRACKS), MediaCommand("play"), 1000)
    assert (s.state, s.position_ms, s.since_ms) == ("playing", 0, 1000)
    s = apply_command(s, MediaCommand("pause"), 4000)
    assert (s.state, s.position_ms) == ("paused", 3000)
    assert advance(s, 99_000).position_ms == 3000  # paused stays put
    s = apply_command(s, MediaCommand("toggle"), 99_000)
    assert (s.state, s.position_ms) == ("playing", 3000)
    assert apply_command(s, MediaCommand("toggle"), 100_000).state == "paused"


def test_pause_when_stopped_stays_stopped() -> None:
    assert apply_command(PlayerState(TRACKS), MediaCommand("pause"), 0).state == "stopped"


def test_next_and_previous_wrap() -> None:
    s = apply_command(playing(index=2), MediaCommand("next"), 0)
    assert (s.index, s.position_ms, s.state) == (0, 0, "playing")
    s = apply_command(s, MediaCommand("previous"), 1000)  # 1 s in: go back a track
    assert (s.index, s.position_ms) == (2, 0)


def test_previous_late_in_a_track_restarts_it() -> None:
    s = apply_command(playing(index=1), MediaCommand("previous"), 8000)
    assert (s.index, s.position_ms) == (1, 0)


def test_seek_clamps_to_the_track() -> None:
    s = apply_command(playing(), MediaCommand("seek", 7000), 500)
    assert s.position_ms == 7000 and s.since_ms == 500
    assert apply_command(playing(), MediaCommand("seek", 10**9), 0).position_ms == 10_000


def test_invalid_commands_are_message_errors() -> None:
    with pytest.raises(MessageError):
        apply_command(playing(), MediaCommand("seek", -1), 0)
    with pytest.raises(MessageError):
        apply_command(playing(), MediaCommand("rewind"), 0)  # type: ignore[arg-type]


def test_empty_playlist_ignores_commands() -> None:
    empty = PlayerState(())
    assert apply_command(empty, MediaCommand("play"), 5).state == "stopped"
    assert now_playing(empty, 5).state == "stopped"


def test_advance_crosses_track_ends_and_wraps() -> None:
    s = advance(playing(), 12_000)  # 10 s track ends, 2 s into track 2
    assert (s.index, s.position_ms) == (1, 2000)
    s = advance(playing(), 36_000)  # 10 + 20 + 5 = 35 s lap, then 1 s into track 1
    assert (s.index, s.position_ms) == (0, 1000)


def test_advance_over_days_is_cheap_and_exact() -> None:
    s = advance(playing(), 86_400_000)  # 2468 laps of 35 s, then 20 s: 10 s into track 2
    assert (s.index, s.position_ms) == (1, 10_000)


def test_now_playing_reflects_the_player() -> None:
    msg = now_playing(playing(at=0, index=0), 4000)
    assert (msg.title, msg.artists, msg.position_ms, msg.state, msg.artwork) == (
        "One", ["A"], 4000, "playing", ART,
    )  # fmt: skip
    assert position_at(msg, 4000, 5000) == 5000


@given(
    st.lists(st.sampled_from(["play", "pause", "toggle", "next", "previous", "seek"]), max_size=30),
    st.lists(st.integers(0, 60_000), min_size=30, max_size=30),
)
def test_any_command_sequence_keeps_the_player_valid(actions: list[str], steps: list[int]) -> None:
    s, now = PlayerState(TRACKS), 0
    for action, step in zip(actions, steps, strict=False):
        now += step
        s = apply_command(s, MediaCommand(action, step), now)  # type: ignore[arg-type]
        assert 0 <= s.index < len(TRACKS)
        assert 0 <= s.position_ms <= TRACKS[s.index].duration_ms
        assert s.since_ms == now


# --- wire ------------------------------------------------------------------------------


@given(
    st.text(max_size=40),
    st.lists(st.text(max_size=10), max_size=3),
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.floats(0, 16),
    st.sampled_from(["playing", "paused", "stopped"]),
    st.sampled_from([b"", ART]),
)
def test_now_playing_round_trip(title, artists, dur, pos, rate, state, art) -> None:  # type: ignore[no-untyped-def]
    msg = NowPlaying(title, artists, "album", dur, pos, rate, state, art, "tid")
    assert decode(encode(msg)) == msg


def test_artwork_and_command_round_trip() -> None:
    art = artwork_of(b"\x89PNG....", "image/png")
    for msg in (art, ArtworkRequest(art.hash), MediaCommand("seek", 42), MediaCommand("next")):
        assert decode(encode(msg)) == msg


@pytest.mark.parametrize(
    "fields",
    [
        [43, "rewind", 0],  # unknown action
        [43, "seek", -5],  # negative seek
        [41, ART, "image/png", b"not the cover"],  # bytes do not match the hash
        [40, "t", [], "a", 1, 1, 1.0, "buffering", b"", "id"],  # unknown state
        [40, "t", [], "a", 1, 1, 1.0, "playing", b"short", "id"],  # artwork not a hash
        [40, "t", [], "a", -1, 1, 1.0, "playing", b"", "id"],  # negative duration
        [42, b"\x00" * 31],  # short hash
    ],
)
def test_bad_media_messages_are_message_errors(fields: list[object]) -> None:
    with pytest.raises(MessageError):
        decode(msgspec.msgpack.encode(fields))


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(8), "image/png"),
        (b"\xff\xd8\xff\xe0" + bytes(8), "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a" + bytes(8), "image/gif"),
        (b"GIF87a" + bytes(8), "image/gif"),
        (b"<svg xmlns=...>", None),
        (b"", None),
    ],
)
def test_sniff_image_mime_names_the_type_the_bytes_say(data: bytes, mime: str | None) -> None:
    assert sniff_image_mime(data) == mime
