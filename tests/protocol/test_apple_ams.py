"""AMS codecs and the car's now-playing reducer: round trips, bounds, known answers."""

from __future__ import annotations

import hashlib

import pytest

from protocol.apple import AppleDataError
from protocol.apple.ams import (
    ACTION_COMMANDS,
    FLAG_TRUNCATED,
    AmsPlayer,
    EntityId,
    EntityUpdate,
    PlaybackInfo,
    PlaybackState,
    PlayerAttribute,
    QueueAttribute,
    RemoteCommand,
    TrackAttribute,
    decode_entity_attribute_request,
    decode_entity_attribute_value,
    decode_entity_update,
    decode_register,
    decode_remote_command,
    decode_remote_commands,
    encode_entity_attribute_request,
    encode_entity_update,
    encode_register,
    encode_remote_commands,
    format_playback_info,
    parse_playback_info,
    track_id_of,
)
from protocol.errors import MessageError, Reason

T, P, Q = EntityId.TRACK, EntityId.PLAYER, EntityId.QUEUE


def test_entity_update_known_answer_and_round_trip() -> None:
    data = encode_entity_update(T, TrackAttribute.TITLE, "Hey Jude", max_size=20)
    assert data == bytes.fromhex("020200") + b"Hey Jude"
    assert decode_entity_update(data) == EntityUpdate(2, 2, False, "Hey Jude")


def test_a_long_value_is_cut_at_a_character_boundary_and_flagged() -> None:
    value = "é" * 20  # 2 bytes each: 17 bytes of room hold 8 of them, not 8.5
    data = encode_entity_update(T, TrackAttribute.TITLE, value, max_size=20)
    assert len(data) == 19
    assert data[2] == FLAG_TRUNCATED
    upd = decode_entity_update(data)
    assert upd.truncated and upd.value == "é" * 8


@pytest.mark.parametrize("max_size", [3, 4, 5, 20, 185, 512, 514, 10_000])
def test_encoded_updates_always_fit(max_size: int) -> None:
    value = "a€😀" * 300
    data = encode_entity_update(T, TrackAttribute.ARTIST, value, max_size=max_size)
    assert len(data) <= min(max_size, 512)
    upd = decode_entity_update(data)
    assert value.startswith(upd.value) and upd.truncated


def test_a_value_that_fits_exactly_is_not_truncated() -> None:
    data = encode_entity_update(P, PlayerAttribute.NAME, "x" * 17, max_size=20)
    assert len(data) == 20 and data[2] == 0


def test_encode_refuses_unknown_ids_and_a_tiny_budget() -> None:
    with pytest.raises(ValueError):
        encode_entity_update(3, 0, "x", max_size=20)
    with pytest.raises(ValueError):
        encode_entity_update(T, 4, "x", max_size=20)
    with pytest.raises(ValueError):
        encode_entity_update(T, 0, "x", max_size=2)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02",
        b"\x02\x02",
        b"\x03\x00\x00",
        b"\x02\x04\x00",
        b"\x00\x03\x00",
        b"\x01\x04\x00",
        b"\x02\x02\x00" + b"a" * 510,
    ],
)
def test_bad_entity_updates_are_refused(data: bytes) -> None:
    with pytest.raises(AppleDataError) as e:
        decode_entity_update(data)
    assert isinstance(e.value, MessageError) and e.value.reason is Reason.MALFORMED


def test_reserved_flag_bits_are_ignored_and_bad_utf8_replaced() -> None:
    upd = decode_entity_update(b"\x02\x00\xfe\xffok")
    assert upd == EntityUpdate(2, 0, False, "\ufffdok")


def test_register_round_trip() -> None:
    data = encode_register(
        T,
        [
            TrackAttribute.ARTIST,
            TrackAttribute.ALBUM,
            TrackAttribute.TITLE,
            TrackAttribute.DURATION,
        ],
    )
    assert data == bytes.fromhex("0200010203")
    assert decode_register(data) == (2, (0, 1, 2, 3))
    assert decode_register(encode_register(P, [0, 1, 2])) == (0, (0, 1, 2))
    assert decode_register(encode_register(Q, [3])) == (1, (3,))


@pytest.mark.parametrize("data", [b"", b"\x02", b"\x02\x00\x00", b"\x02\x04", b"\x05\x00"])
def test_bad_registers_are_refused(data: bytes) -> None:
    with pytest.raises(AppleDataError):
        decode_register(data)


def test_register_refuses_our_own_mistakes() -> None:
    for attrs in ([], [0, 0], [7]):
        with pytest.raises(ValueError):
            encode_register(T, attrs)


def test_entity_attribute_request_round_trip_and_value() -> None:
    data = encode_entity_attribute_request(T, TrackAttribute.TITLE)
    assert data == b"\x02\x02"
    assert decode_entity_attribute_request(data) == (2, 2)
    for bad in (b"", b"\x02", b"\x02\x02\x00", b"\x02\x09"):
        with pytest.raises(AppleDataError):
            decode_entity_attribute_request(bad)
    full = decode_entity_attribute_value(2, 2, b"A very long title")
    assert full == EntityUpdate(2, 2, False, "A very long title")
    with pytest.raises(AppleDataError):
        decode_entity_attribute_value(2, 2, b"x" * 513)


def test_remote_commands() -> None:
    offered = {RemoteCommand.PLAY, RemoteCommand.PAUSE, RemoteCommand.NEXT_TRACK}
    data = encode_remote_commands(offered)
    assert data == bytes([0, 1, 3])
    assert decode_remote_commands(data) == offered
    assert decode_remote_commands(b"\x00\x0e\xff\x02") == {
        RemoteCommand.PLAY,
        RemoteCommand.TOGGLE_PLAY_PAUSE,
    }
    assert decode_remote_commands(b"") == frozenset()
    assert decode_remote_command(b"\x04") is RemoteCommand.PREVIOUS_TRACK
    for bad in (b"", b"\x0e", b"\x00\x00"):
        with pytest.raises(AppleDataError):
            decode_remote_command(bad)
    assert set(ACTION_COMMANDS) == {"play", "pause", "toggle", "next", "previous"}


def test_playback_info() -> None:
    assert parse_playback_info("1,1.0,12.345") == PlaybackInfo(1, 1.0, 12.345)
    assert parse_playback_info("0,0.000,0.000000") == PlaybackInfo(0, 0.0, 0.0)
    info = PlaybackInfo(PlaybackState.PLAYING, 1.0, 12.345)
    assert format_playback_info(info) == "1,1.0,12.345"
    assert parse_playback_info(format_playback_info(info)) == info
    for bad in (
        "",
        "1,1.0",
        "1,1.0,2,3",
        "4,1.0,0",
        "x,1,1",
        "1,nan,0",
        "1,inf,0",
        "1,1e308,0",
        "1,1.0," + "9" * 70,
        "1,1_0,0",
    ):
        with pytest.raises(AppleDataError):
            parse_playback_info(bad)


def _feed(player: AmsPlayer, entity: int, attribute: int, value: str) -> bool:
    return player.update(EntityUpdate(entity, attribute, False, value))


def test_player_builds_now_playing() -> None:
    p = AmsPlayer()
    assert p.now_playing().state == "stopped"
    assert _feed(p, P, PlayerAttribute.NAME, "Music") is False  # not part of NowPlaying
    assert p.player_name == "Music"
    assert _feed(p, T, TrackAttribute.ARTIST, "The Beatles")
    assert _feed(p, T, TrackAttribute.ALBUM, "Past Masters")
    assert _feed(p, T, TrackAttribute.TITLE, "Hey Jude")
    assert _feed(p, T, TrackAttribute.DURATION, "431.333")
    assert _feed(p, P, PlayerAttribute.PLAYBACK_INFO, "1,1.000,12.345")
    assert _feed(p, P, PlayerAttribute.VOLUME, "0.5") is False
    assert _feed(p, Q, QueueAttribute.COUNT, "12") is False
    np = p.now_playing()
    assert (np.title, np.artists, np.album) == ("Hey Jude", ["The Beatles"], "Past Masters")
    assert (np.duration_ms, np.position_ms, np.rate, np.state) == (431_333, 12_345, 1.0, "playing")
    assert np.artwork == b""
    assert np.track_id == track_id_of("The Beatles", "Past Masters", "Hey Jude")
    assert len(np.track_id) == 16
    assert _feed(p, P, PlayerAttribute.PLAYBACK_INFO, "1,1.000,12.345") is False  # same


def test_track_id_changes_with_the_track_only() -> None:
    a = track_id_of("A", "B", "C")
    assert a == track_id_of("A", "B", "C")
    assert (
        len({a, track_id_of("A", "B", "D"), track_id_of("AB", "", "C"), track_id_of("A", "BC", "")})
        == 4
    )
    assert track_id_of("", "", "") == ""


@pytest.mark.parametrize(
    ("info", "state", "rate"),
    [
        ("0,0.0,5", "paused", 0.0),
        ("2,-2.0,5", "playing", 0.0),
        ("3,2.0,5", "playing", 2.0),
        ("3,99.0,5", "playing", 16.0),
    ],
)
def test_playback_states_map_to_the_media_model(info: str, state: str, rate: float) -> None:
    p = AmsPlayer()
    _feed(p, P, PlayerAttribute.PLAYBACK_INFO, info)
    np = p.now_playing()
    assert (np.state, np.rate, np.position_ms) == (state, rate, 5000)


def test_hostile_values_are_clamped_or_refused() -> None:
    p = AmsPlayer()
    _feed(p, P, PlayerAttribute.PLAYBACK_INFO, "1,1.0,-30")
    _feed(p, T, TrackAttribute.DURATION, "-5")
    assert (p.now_playing().position_ms, p.now_playing().duration_ms) == (0, 0)
    _feed(p, P, PlayerAttribute.PLAYBACK_INFO, "")  # no app playing
    assert p.now_playing().state == "stopped"
    before = p.now_playing()
    for entity, attr, value in [
        (P, 1, "1,1,1,1"),
        (P, 2, "loud"),
        (T, 3, "1e9"),
        (Q, 0, "one"),
        (5, 0, ""),
        (T, 9, ""),
    ]:
        with pytest.raises(AppleDataError):
            _feed(p, entity, attr, value)
    assert p.now_playing() == before


def test_truncated_numbers_wait_for_the_re_read_and_texts_show() -> None:
    p = AmsPlayer()
    _feed(p, P, PlayerAttribute.PLAYBACK_INFO, "1,1.0,10")
    assert p.update(EntityUpdate(P, PlayerAttribute.PLAYBACK_INFO, True, "0,0.0,")) is False
    assert p.update(EntityUpdate(T, TrackAttribute.DURATION, True, "12")) is False
    assert (p.now_playing().state, p.now_playing().duration_ms) == ("playing", 0)
    assert p.update(EntityUpdate(T, TrackAttribute.TITLE, True, "A very long t"))
    assert p.now_playing().title == "A very long t"
    assert p.update(decode_entity_attribute_value(2, 2, b"A very long title"))
    assert p.now_playing().title == "A very long title"


def test_track_id_known_answer() -> None:
    # SHA-256 of u32-length-prefixed UTF-8 fields (PROTOCOL.md 11.1), first 16 hex digits.
    blob = b"".join(len(f).to_bytes(4, "little") + f for f in (b"A", b"", "é".encode()))
    assert track_id_of("A", "", "é") == hashlib.sha256(blob).hexdigest()[:16]
    assert track_id_of("A\x1f", "", "") != track_id_of("A", "", "")
