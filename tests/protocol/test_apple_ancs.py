"""ANCS codecs: Notification Source, Control Point commands, Data Source answers."""

from __future__ import annotations

from datetime import datetime

import pytest

from protocol.apple import AppleDataError
from protocol.apple.ancs import (
    CAR_APP_ATTRIBUTES,
    CAR_NOTIFICATION_ATTRIBUTES,
    MAX_RESPONSE,
    ActionId,
    AppAttribute,
    AppAttributes,
    Category,
    EventFlags,
    EventId,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttribute,
    NotificationAttributes,
    NotificationEvent,
    PerformAction,
    ResponseReader,
    category_name,
    decode_command,
    decode_notification_source,
    encode_answer,
    encode_command,
    encode_notification_source,
    encode_response,
    format_date,
    parse_date,
    split,
)

NA = NotificationAttribute
ORDER = [a for a, _ in CAR_NOTIFICATION_ATTRIBUTES]
GET = GetNotificationAttributes(0x01020304, CAR_NOTIFICATION_ATTRIBUTES)
VALUES = {
    NA.APP_IDENTIFIER: "com.apple.MobileSMS",
    NA.TITLE: "Alice",
    NA.SUBTITLE: "",
    NA.MESSAGE: "Lunch at 1? 🍜",
    NA.DATE: "20260315T123000",
    NA.POSITIVE_ACTION_LABEL: "Reply",
    NA.NEGATIVE_ACTION_LABEL: "Clear",
}


def test_notification_source_round_trip() -> None:
    ev = NotificationEvent(
        EventId.ADDED,
        EventFlags.IMPORTANT | EventFlags.POSITIVE_ACTION,
        Category.SOCIAL,
        3,
        0x01020304,
    )
    data = encode_notification_source(ev)
    assert data == bytes.fromhex("000a040304030201")
    assert decode_notification_source(data) == ev


def test_notification_source_refusals_and_leniency() -> None:
    for bad in (b"", b"\x00" * 7, b"\x00" * 9, b"\x03" + b"\x00" * 7):
        with pytest.raises(AppleDataError):
            decode_notification_source(bad)
    ev = decode_notification_source(bytes.fromhex("02ff630001000000"))
    assert ev.event is EventId.REMOVED and ev.flags == EventFlags(31) and ev.category == 0x63
    assert category_name(ev.category) == "other"
    assert category_name(Category.HEALTH_AND_FITNESS) == "health_and_fitness"
    assert category_name(1) == "incoming_call"


def test_get_notification_attributes_round_trip() -> None:
    data = encode_command(GET)
    assert data == bytes.fromhex("000403020100014000024000030002050607")
    assert decode_command(data) == GET


def test_get_app_attributes_and_perform_action_round_trip() -> None:
    app = GetAppAttributes("com.apple.MobileSMS", CAR_APP_ATTRIBUTES)
    data = encode_command(app)
    assert data == b"\x01com.apple.MobileSMS\x00\x00"
    assert decode_command(data) == app
    act = PerformAction(42, ActionId.NEGATIVE)
    assert encode_command(act) == bytes.fromhex("022a00000001")
    assert decode_command(encode_command(act)) == act


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x03",
        b"\x00\x01\x02",
        b"\x00\x01\x00\x00\x00",
        b"\x00\x01\x00\x00\x00\x01",
        b"\x00\x01\x00\x00\x00\x01\x40",
        b"\x00\x01\x00\x00\x00\x08",
        b"\x00\x01\x00\x00\x00\x00\x00",
        b"\x01\x00\x00",
        b"\x01app",
        b"\x01app\x00",
        b"\x01app\x00\x01",
        b"\x01\xffx\x00\x00",
        b"\x01" + b"a" * 300 + b"\x00\x00",
        b"\x02\x01\x00\x00\x00",
        b"\x02\x01\x00\x00\x00\x02",
        b"\x02\x01\x00\x00\x00\x00\x00",
    ],
)
def test_bad_commands_are_refused(data: bytes) -> None:
    with pytest.raises(AppleDataError):
        decode_command(data)


def test_encode_command_refuses_what_the_phone_would() -> None:
    for attrs in (
        (),
        ((NA.TITLE, None),),
        ((NA.DATE, 10),),
        ((9, None),),
        ((NA.DATE, None), (NA.DATE, None)),
        ((NA.TITLE, 0),),
    ):
        with pytest.raises(ValueError):
            encode_command(GetNotificationAttributes(1, attrs))
    for app_id, attrs in (
        ("", CAR_APP_ATTRIBUTES),
        ("a\0b", CAR_APP_ATTRIBUTES),
        ("a", ((AppAttribute.DISPLAY_NAME, 5),)),
        ("a", ((1, None),)),
    ):
        with pytest.raises(ValueError):
            encode_command(GetAppAttributes(app_id, attrs))


def _read(reader: ResponseReader, chunks: list[bytes]) -> object:
    results = [reader.feed(c) for c in chunks]
    assert all(r is None for r in results[:-1])
    return results[-1]


def test_a_response_split_at_mtu_23_reassembles() -> None:
    data = encode_response(NotificationAttributes(GET.uid, dict(VALUES)), ORDER)
    chunks = split(data, 23)
    assert len(chunks) > 3 and all(len(c) <= 20 for c in chunks)
    assert b"".join(chunks) == data
    assert _read(ResponseReader(GET), chunks) == NotificationAttributes(GET.uid, dict(VALUES))


def test_absent_attributes_are_sent_empty() -> None:
    data = encode_response(NotificationAttributes(GET.uid, {NA.TITLE: "T"}), ORDER)
    resp = _read(ResponseReader(GET), [data])
    assert isinstance(resp, NotificationAttributes)
    assert resp.values[NA.TITLE] == "T" and resp.values[NA.MESSAGE] == ""
    assert set(resp.values) == set(ORDER)


def test_app_attributes_response() -> None:
    cmd = GetAppAttributes("com.apple.MobileSMS", CAR_APP_ATTRIBUTES)
    data = encode_response(AppAttributes(cmd.app_id, {0: "Messages"}), [0])
    assert data == b"\x01com.apple.MobileSMS\x00\x00\x08\x00Messages"
    assert _read(ResponseReader(cmd), split(data, 23)) == AppAttributes(cmd.app_id, {0: "Messages"})


def _refused(reader: ResponseReader, data: bytes) -> None:
    with pytest.raises(AppleDataError):
        for c in split(data, 23):
            reader.feed(c)


def test_reader_refuses_mismatches() -> None:
    good = encode_response(NotificationAttributes(GET.uid, dict(VALUES)), ORDER)
    _refused(ResponseReader(GET), b"\x01" + good[1:])  # wrong command id
    _refused(ResponseReader(GET), good[:1] + b"\x09" + good[2:])  # wrong uid
    _refused(ResponseReader(GET), good + b"\x00")  # trailing byte
    short = GetNotificationAttributes(GET.uid, ((NA.TITLE, 64),))
    _refused(ResponseReader(short), encode_response(NotificationAttributes(GET.uid, {}), [2]))
    _refused(ResponseReader(GET), encode_response(NotificationAttributes(GET.uid, {}), [1, 1]))
    app = GetAppAttributes("com.a", CAR_APP_ATTRIBUTES)
    _refused(ResponseReader(app), encode_response(AppAttributes("com.b", {0: "B"}), [0]))
    _refused(ResponseReader(app), encode_response(AppAttributes("com.a.x", {0: "B"}), [0]))
    _refused(ResponseReader(app), b"\x01com.a" + b"\x00\x05\x00\x00")  # unknown attribute id


def test_reader_bounds_the_answer() -> None:
    reader = ResponseReader(GET)
    # A length field that can never fit the bound is refused at once, before its bytes.
    with pytest.raises(AppleDataError):
        reader.feed(bytes.fromhex("0004030201") + b"\x00\xff\xff")
    reader = ResponseReader(GET)
    head = bytes.fromhex("0004030201") + b"\x00\xf0\x1f"  # 8176 bytes: fits, just
    assert reader.feed(head) is None
    with pytest.raises(AppleDataError):
        for _ in range(MAX_RESPONSE // 20 + 2):
            reader.feed(b"x" * 20)
    with pytest.raises(AppleDataError):
        reader.feed(b"")  # a failed reader stays failed


def test_reader_refuses_data_after_the_end() -> None:
    reader = ResponseReader(GET)
    assert reader.feed(encode_response(NotificationAttributes(GET.uid, {}), ORDER)) is not None
    with pytest.raises(AppleDataError):
        reader.feed(b"\x00")


def test_split_bounds() -> None:
    assert split(b"", 23) == []
    assert [len(c) for c in split(b"x" * 41, 23)] == [20, 20, 1]
    assert split(b"x" * 600, 517) == [b"x" * 514, b"x" * 86]
    with pytest.raises(ValueError):
        split(b"x", 22)


def test_dates() -> None:
    assert parse_date("20260315T123000") == "2026-03-15T12:30:00"
    assert format_date(datetime(2026, 3, 15, 12, 30, 0)) == "20260315T123000"
    for bad in (
        "",
        "20260315",
        "2026-03-15T12:30:00",
        "20261315T123000",
        "20260230T000000",
        "20260315T250000",
        "20260315T12300",
        "２０２６0315T123000",
        "20260315t123000",
    ):
        with pytest.raises(AppleDataError):
            parse_date(bad)


def test_the_phone_cuts_values_to_the_max_lengths_asked() -> None:
    cmd = GetNotificationAttributes(9, ((NA.TITLE, 3), (NA.MESSAGE, 7), (NA.DATE, None)))
    wire = encode_answer(cmd, {NA.TITLE: "Zoë Ng", NA.MESSAGE: "ok", NA.DATE: "20260315T123000"})
    resp = ResponseReader(cmd).feed(wire)
    assert resp == NotificationAttributes(
        9, {NA.TITLE: "Zo", NA.MESSAGE: "ok", NA.DATE: "20260315T123000"}
    )  # "Zoë" is 4 bytes: 3 cannot hold the ë, and the cut never splits it
    app = GetAppAttributes("com.x", CAR_APP_ATTRIBUTES)
    assert ResponseReader(app).feed(encode_answer(app, {})) == AppAttributes("com.x", {0: ""})


def test_dates_keep_four_digit_years_and_commands_refuse_bad_uids() -> None:
    assert parse_date("00010101T000000") == "0001-01-01T00:00:00"
    with pytest.raises(ValueError):
        encode_command(PerformAction(2**32, ActionId.POSITIVE))
    with pytest.raises(AppleDataError):
        decode_command(b"\x00\x01\x00\x00\x00" + b"\x05" * 600)
