"""Hypothesis fuzzing of every AMS/ANCS decoder: bad bytes raise AppleDataError only.

The car decodes whatever an iPhone (or anything claiming to be one) sends; a decoder that
raised anything else, hung, or buffered without bound would crash or stall the car. Sizes
are kept small so the whole file runs in a few seconds.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.apple import AppleDataError
from protocol.apple.ams import (
    AmsPlayer,
    decode_entity_attribute_request,
    decode_entity_attribute_value,
    decode_entity_update,
    decode_register,
    decode_remote_command,
    decode_remote_commands,
    encode_entity_update,
    parse_playback_info,
)
from protocol.apple.ancs import (
    CAR_APP_ATTRIBUTES,
    CAR_NOTIFICATION_ATTRIBUTES,
    MAX_RESPONSE,
    AppAttributes,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttributes,
    ResponseReader,
    decode_command,
    decode_notification_source,
    encode_command,
    encode_response,
    parse_date,
    split,
)
from protocol.media import NowPlaying
from protocol.messages import decode, encode

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ORDER = [a for a, _ in CAR_NOTIFICATION_ATTRIBUTES]
GET = GetNotificationAttributes(7, CAR_NOTIFICATION_ATTRIBUTES)
APP = GetAppAttributes("com.example.chat", CAR_APP_ATTRIBUTES)

# Raw bytes, and bytes that start like the real thing so the fuzzer gets past the headers.
small_ids = st.integers(0, 4)
entity_updates = st.one_of(
    st.binary(max_size=600),
    st.builds(
        lambda e, a, f, v: bytes((e, a, f)) + v,
        small_ids,
        small_ids,
        st.integers(0, 255),
        st.binary(max_size=40),
    ),
)
text_values = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"-?[0-9]{1,12}(\.[0-9]{0,25})?(,-?[0-9]{0,3}(\.[0-9]*)?){0,3}", fullmatch=True),
)


def _only_apple_errors(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except AppleDataError:
        pass


@FAST
@given(entity_updates)
def test_ams_byte_decoders(data: bytes) -> None:
    for fn in (
        decode_entity_update,
        decode_register,
        decode_entity_attribute_request,
        decode_remote_commands,
        decode_remote_command,
    ):
        _only_apple_errors(fn, data)
    _only_apple_errors(
        decode_entity_attribute_value, data[:1] or b"\x00", data[1:2] or b"\x00", data
    )


@FAST
@given(text_values)
def test_playback_info_parser(text: str) -> None:
    _only_apple_errors(parse_playback_info, text)


def _wire_valid(np: NowPlaying) -> None:
    """The car may forward NowPlaying in its media model: it must pass the schema."""
    assert decode(encode(np)) == np


@FAST
@given(
    st.lists(
        st.one_of(
            entity_updates,
            st.builds(
                lambda e, a, v: bytes((e, a, 0)) + v.encode(),
                st.integers(0, 2),
                st.integers(0, 3),
                text_values,
            ),
        ),
        max_size=12,
    )
)
def test_ams_player_never_breaks_now_playing(updates: list[bytes]) -> None:
    player = AmsPlayer()
    for data in updates:
        before = player.now_playing()
        try:
            changed = player.update(decode_entity_update(data))
        except AppleDataError:
            assert player.now_playing() == before  # a refused update changes nothing
            continue
        np = player.now_playing()
        assert changed == (np != before)
        assert np.state in ("playing", "paused", "stopped")
        assert 0.0 <= np.rate <= 16.0 and np.position_ms >= 0 and np.duration_ms >= 0
        _wire_valid(np)


@FAST
@given(st.text(max_size=300), st.integers(3, 600), st.integers(0, 2), st.integers(0, 2))
def test_encoded_entity_updates_fit_and_decode_to_a_prefix(
    value: str, max_size: int, entity: int, attribute: int
) -> None:
    data = encode_entity_update(entity, attribute, value, max_size=max_size)
    assert len(data) <= min(max_size, 512)
    upd = decode_entity_update(data)
    clean = value.encode("utf-8", errors="replace").decode()
    assert clean.startswith(upd.value)
    assert upd.truncated == (upd.value != clean)


@FAST
@given(
    st.one_of(
        st.binary(max_size=40),
        st.builds(lambda c, b: bytes((c,)) + b, st.integers(0, 3), st.binary(max_size=40)),
    )
)
def test_ancs_byte_decoders(data: bytes) -> None:
    _only_apple_errors(decode_notification_source, data)
    _only_apple_errors(decode_command, data)


@FAST
@given(st.one_of(st.text(max_size=20), st.from_regex(r"[0-9]{8}T[0-9]{6}", fullmatch=True)))
def test_date_parser(text: str) -> None:
    _only_apple_errors(parse_date, text)


headers = st.sampled_from(
    [
        b"",
        b"\x00\x07\x00\x00\x00",
        b"\x01com.example.chat\x00",
        b"\x00\x07\x00\x00\x00\x01\xff\xff",
    ]
)
chunkings = st.lists(st.integers(0, 64), max_size=40)


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        out.append(data[i : i + n])
        i += n
    out.append(data[i:])
    return out


@FAST
@given(st.sampled_from([GET, APP]), headers, st.binary(max_size=1200), chunkings)
def test_reader_on_arbitrary_bytes_in_arbitrary_splits(
    command: GetNotificationAttributes | GetAppAttributes,
    head: bytes,
    tail: bytes,
    sizes: list[int],
) -> None:
    reader = ResponseReader(command)
    fed = 0
    for chunk in _chunks(head + tail, sizes):
        try:
            result = reader.feed(chunk)
        except AppleDataError:
            return
        fed += len(chunk)
        assert fed <= MAX_RESPONSE
        if result is not None:
            assert isinstance(result, (NotificationAttributes, AppAttributes))
            return


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_reader_refuses_past_the_bound(filler: bytes) -> None:
    # A header with an attribute length that fits, then endless bytes: refused by 8 KiB.
    reader = ResponseReader(GET)
    reader.feed(b"\x00\x07\x00\x00\x00" + struct.pack("<BH", 0, MAX_RESPONSE - 8))
    fed = 8
    with pytest.raises(AppleDataError):
        for _ in range(MAX_RESPONSE + 1):  # bounded: a reader that never refused fails here
            reader.feed(filler)
            fed += len(filler)
            assert fed <= MAX_RESPONSE


attr_text = st.text(max_size=60)


@FAST
@given(st.integers(0, 2**32 - 1), st.fixed_dictionaries({a: attr_text for a in ORDER}), st.data())
def test_a_valid_answer_reassembles_from_every_split(
    uid: int, values: dict[int, str], data: st.DataObject
) -> None:
    cmd = GetNotificationAttributes(uid, CAR_NOTIFICATION_ATTRIBUTES)
    wire = encode_response(NotificationAttributes(uid, values), ORDER)
    expected = NotificationAttributes(uid, {a: _clean(v) for a, v in values.items()})
    for cut in range(1, len(wire)):  # every two-piece split
        reader = ResponseReader(cmd)
        assert reader.feed(wire[:cut]) is None
        assert reader.feed(wire[cut:]) == expected
    sizes = data.draw(chunkings)
    reader = ResponseReader(cmd)
    results = [reader.feed(c) for c in _chunks(wire, sizes) if c]
    assert results[-1] == expected and all(r is None for r in results[:-1])
    for mtu in (23, 24, 100, 185, 517):
        reader = ResponseReader(cmd)
        assert [reader.feed(c) for c in split(wire, mtu)][-1] == expected


@FAST
@given(st.text(min_size=1, max_size=40).filter(lambda s: "\0" not in s), attr_text)
def test_app_answers_round_trip(app_id: str, name: str) -> None:
    cmd = GetAppAttributes(app_id, CAR_APP_ATTRIBUTES)
    try:
        encode_command(cmd)
    except ValueError:
        return  # an app id the car would never send (too long once encoded)
    wire = encode_response(AppAttributes(app_id, {0: name}), [0])
    reader = ResponseReader(cmd)
    results = [reader.feed(c) for c in split(wire, 23)]
    assert results[-1] == AppAttributes(app_id, {0: _clean(name)})


def _clean(text: str) -> str:
    return text.encode("utf-8", errors="replace").decode()
