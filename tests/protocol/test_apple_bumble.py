"""Our AMS/ANCS bytes against Bumble's independent implementation (bumble.profiles).

protocol/ never imports Bumble; these tests do, to hold our codecs to a second reading of
Apple's specifications: Bumble's clients encode commands our phone-side decoders must parse,
and parse answers our phone-side encoders produce (split at ATT MTU 23, as on the air).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from bumble.profiles import ams as bams
from bumble.profiles import ancs as bancs

from protocol.apple.ams import (
    EntityId,
    PlayerAttribute,
    RemoteCommand,
    TrackAttribute,
    decode_entity_attribute_request,
    decode_register,
    decode_remote_command,
    encode_entity_update,
    encode_register,
)
from protocol.apple.ancs import (
    CAR_APP_ATTRIBUTES,
    CAR_NOTIFICATION_ATTRIBUTES,
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
    decode_command,
    decode_notification_source,
    encode_notification_source,
    encode_response,
    split,
)

NA = NotificationAttribute


class _Char:
    """A stand-in characteristic proxy: records writes, serves reads."""

    def __init__(self, on_write: Any = None, value: bytes = b"") -> None:
        self.writes: list[bytes] = []
        self.on_write = on_write
        self.value = value

    async def write_value(self, value: bytes, with_response: bool = False) -> None:
        self.writes.append(bytes(value))
        if self.on_write is not None:
            self.on_write(bytes(value))

    async def read_value(self) -> bytes:
        return self.value


class _Proxy:
    def __init__(self, **chars: _Char) -> None:
        self.__dict__.update(chars)


def test_notification_source_agrees_with_bumble() -> None:
    ev = NotificationEvent(
        EventId.MODIFIED,
        EventFlags.SILENT | EventFlags.NEGATIVE_ACTION,
        Category.EMAIL,
        2,
        0xDEADBEEF,
    )
    theirs = bancs.Notification.from_bytes(encode_notification_source(ev))
    assert (theirs.event_id, theirs.event_flags, theirs.category_id) == (1, 17, 6)
    assert (theirs.category_count, theirs.notification_uid) == (2, 0xDEADBEEF)
    assert decode_notification_source(bytes(theirs)) == ev


def _bumble_attrs(attrs: tuple[tuple[int, int | None], ...]) -> list[Any]:
    return [
        bancs.NotificationAttributeId(a) if m is None else (bancs.NotificationAttributeId(a), m)
        for a, m in attrs
    ]


def test_bumble_client_reads_our_notification_answer() -> None:
    values = {
        NA.APP_IDENTIFIER: "com.apple.MobileSMS",
        NA.TITLE: "Alice",
        NA.SUBTITLE: "Family",
        NA.MESSAGE: "Dinner at 7? " + "🍝" * 30,
        NA.DATE: "20260315T123000",
        NA.POSITIVE_ACTION_LABEL: "Reply",
        NA.NEGATIVE_ACTION_LABEL: "Clear",
    }

    async def run() -> list[Any]:
        client: bancs.AncsClient

        def phone(cmd_bytes: bytes) -> None:
            cmd = decode_command(cmd_bytes)
            assert cmd == GetNotificationAttributes(0x01020304, CAR_NOTIFICATION_ATTRIBUTES)
            assert isinstance(cmd, GetNotificationAttributes)
            wire = encode_response(
                NotificationAttributes(cmd.uid, values), [a for a, _ in cmd.attributes]
            )
            for chunk in split(wire, 23):
                client._on_data(chunk)

        client = bancs.AncsClient(_Proxy(control_point=_Char(phone)))  # type: ignore[arg-type]
        client._started = True
        return await client.get_notification_attributes(
            0x01020304, _bumble_attrs(CAR_NOTIFICATION_ATTRIBUTES)
        )

    got = {a.attribute_id: a.value for a in asyncio.run(run())}
    assert got[NA.DATE] == datetime(2026, 3, 15, 12, 30, 0)  # Bumble parses the date itself
    assert {a: v for a, v in got.items() if a != NA.DATE} == {
        a: v for a, v in values.items() if a != NA.DATE
    }


def test_bumble_client_reads_our_app_answer_and_sends_actions_we_parse() -> None:
    async def run() -> tuple[list[Any], list[bytes]]:
        client: bancs.AncsClient

        def phone(cmd_bytes: bytes) -> None:
            cmd = decode_command(cmd_bytes)
            if isinstance(cmd, GetAppAttributes):
                assert cmd == GetAppAttributes("com.apple.MobileSMS", CAR_APP_ATTRIBUTES)
                for chunk in split(
                    encode_response(AppAttributes(cmd.app_id, {0: "Messages"}), [0]), 23
                ):
                    client._on_data(chunk)

        cp = _Char(phone)
        client = bancs.AncsClient(_Proxy(control_point=cp))  # type: ignore[arg-type]
        client._started = True
        attrs = await client.get_app_attributes(
            "com.apple.MobileSMS", [bancs.AppAttributeId.DISPLAY_NAME]
        )
        await client.perform_positive_action(77)
        await client.perform_negative_action(78)
        return attrs, cp.writes

    attrs, writes = asyncio.run(run())
    assert [(a.attribute_id, a.value) for a in attrs] == [(0, "Messages")]
    assert [decode_command(w) for w in writes[1:]] == [PerformAction(77, 0), PerformAction(78, 1)]  # type: ignore[arg-type]


def test_bumble_ams_client_agrees_on_updates_registers_and_commands() -> None:
    long_title = "A Title Far Too Long For One Notification " * 3

    async def run() -> bams.AmsClient:
        ea = _Char(value=long_title.encode())
        eu = _Char()
        rc = _Char()
        client = bams.AmsClient(
            _Proxy(
                entity_attribute=ea,
                entity_update=eu,  # type: ignore[arg-type]
                remote_command=rc,
            )
        )
        await client.observe(bams.EntityId.TRACK, [bams.TrackAttributeId(i) for i in range(4)])
        assert eu.writes == [encode_register(EntityId.TRACK, [0, 1, 2, 3])]
        assert decode_register(eu.writes[0]) == (2, (0, 1, 2, 3))
        await client.next_track()
        assert decode_remote_command(rc.writes[-1]) is RemoteCommand.NEXT_TRACK
        for entity, attribute, value in [
            (EntityId.PLAYER, PlayerAttribute.NAME, "Music"),
            (EntityId.PLAYER, PlayerAttribute.PLAYBACK_INFO, "1,1.0,12.345"),
            (EntityId.PLAYER, PlayerAttribute.VOLUME, "0.75"),
            (EntityId.TRACK, TrackAttribute.ARTIST, "Artist é"),
            (EntityId.TRACK, TrackAttribute.DURATION, "431.333"),
            (EntityId.TRACK, TrackAttribute.TITLE, long_title),
        ]:
            await client._on_entity_update_notification(
                encode_entity_update(entity, attribute, value, max_size=20)
            )
        # The title did not fit 20 bytes: Bumble saw our truncated flag and re-read it.
        assert [decode_entity_attribute_request(w) for w in ea.writes] == [(2, 2)]
        return client

    client = asyncio.run(run())
    assert (client.player_name, client.player_volume) == ("Music", 0.75)
    assert client.player_playback_info == bams.PlaybackInfo(bams.PlaybackState.PLAYING, 1.0, 12.345)
    assert (client.track_artist, client.track_duration) == ("Artist é", 431.333)
    assert client.track_title == long_title
