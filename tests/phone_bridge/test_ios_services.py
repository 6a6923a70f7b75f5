"""AMS and ANCS of the emulated iPhone, read by Bumble's reference clients on a tiny car."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from bumble.profiles.ams import RemoteCommandId
from bumble.profiles.ancs import (
    AppAttributeId,
    CommandError,
    EventFlags,
    EventId,
    NotificationAttributeId,
)

from phone_bridge.ios import IPhone, IPhoneOptions, NotificationSpec
from phone_bridge.player import Player
from protocol.apple.ancs import Category
from protocol.media import Track
from radio import LocalRadio
from tests.phone_bridge.ios_car import CarSession, T, TinyCar

LONG_TITLE = "An Extraordinarily Long Song Title That Never Fits One Notification"
TRACKS = [
    Track(track_id="t1", title=LONG_TITLE, artists=("Ann",), album="First", duration_ms=200_000),
    Track(track_id="t2", title="Second", artists=("Bob",), album="Two", duration_ms=100_000),
]
MESSAGE = "Running late, the traffic on the ring road is terrible; see you at eight. " * 3
SMS = NotificationSpec(app_id="com.apple.MobileSMS", app_name="Messages", title="Anna",
                       subtitle="Family", message=MESSAGE, category=Category.SOCIAL,
                       positive_action="Reply", negative_action="Clear")


async def until(check: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), T)


class Setup:
    def __init__(self, phone: IPhone, car: TinyCar, session: CarSession,
                 events: list[dict[str, Any]]) -> None:
        self.phone, self.car, self.s, self.events = phone, car, session, events


@pytest.fixture
async def setup(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    mtu = getattr(request, "param", 23)
    air = LocalRadio()
    car = TinyCar(air)
    await car.start()
    events: list[dict[str, Any]] = []
    phone = IPhone(air, IPhoneOptions(
        state_dir=tmp_path, auto_confirm=True, player=Player(TRACKS, {}), mtu=mtu,
        notifications=[SMS], emit=events.append))
    await phone.start()
    try:
        s = await car.session(0)
        await asyncio.wait_for(s.ready.wait(), T)
        yield Setup(phone, car, s, events)
    finally:
        await phone.stop()
        await car.stop()


async def test_entity_updates_mark_a_long_title_truncated_and_it_reads_back_in_full(
    setup: Setup,
) -> None:
    ams = setup.s.ams
    assert ams is not None
    await until(lambda: ams.track_title == LONG_TITLE and ams.track_artist == "Ann")
    assert ams.track_album == "First" and ams.track_duration == 200.0
    assert ams.player_name == "Music"
    assert ams.player_playback_info.playback_state == 1  # playing
    raw = [u for u in setup.s.entity_updates if u[:2] == bytes([2, 2])]
    assert raw and raw[0][2] == 1  # FLAG_TRUNCATED
    assert len(raw[0]) == 20 and LONG_TITLE.encode().startswith(raw[0][3:])  # MTU 23 - 3


async def test_remote_commands_are_offered_and_change_the_track(setup: Setup) -> None:
    ams = setup.s.ams
    assert ams is not None
    await until(lambda: {RemoteCommandId.NEXT_TRACK, RemoteCommandId.PAUSE}
                <= ams.supported_commands)
    await asyncio.wait_for(ams.next_track(), T)
    await until(lambda: ams.track_title == "Second")
    assert setup.phone.options.player.state.index == 1
    await asyncio.wait_for(ams.pause(), T)
    await until(lambda: ams.player_playback_info.playback_state == 0)
    assert [e["command"] for e in setup.events if e["event"] == "remote-command"] == [
        "next_track", "pause"]


@pytest.mark.parametrize("setup", [23, 64], indirect=True)
async def test_notification_attributes_arrive_split_at_mtu_minus_3(setup: Setup) -> None:
    s = setup.s
    ancs = s.ancs
    assert ancs is not None
    await until(lambda: len(s.notifications) == 1)
    (added,) = s.notifications
    assert added.event_id == EventId.NOTIFICATION_ADDED and added.category_id == 4
    assert added.event_flags & EventFlags.POSITIVE_ACTION
    assert added.event_flags & EventFlags.NEGATIVE_ACTION
    attrs = await asyncio.wait_for(ancs.get_notification_attributes(added.notification_uid, [
        NotificationAttributeId.APP_IDENTIFIER, (NotificationAttributeId.TITLE, 64),
        (NotificationAttributeId.SUBTITLE, 64), (NotificationAttributeId.MESSAGE, 512),
        NotificationAttributeId.DATE, NotificationAttributeId.POSITIVE_ACTION_LABEL,
        NotificationAttributeId.NEGATIVE_ACTION_LABEL]), T)
    values = {a.attribute_id: a.value for a in attrs}
    assert values[NotificationAttributeId.APP_IDENTIFIER] == "com.apple.MobileSMS"
    assert values[NotificationAttributeId.TITLE] == "Anna"
    assert values[NotificationAttributeId.SUBTITLE] == "Family"
    assert values[NotificationAttributeId.MESSAGE] == MESSAGE
    assert values[NotificationAttributeId.POSITIVE_ACTION_LABEL] == "Reply"
    assert values[NotificationAttributeId.NEGATIVE_ACTION_LABEL] == "Clear"
    mtu = s.connection.att_mtu
    assert mtu == setup.phone.options.mtu
    assert len(s.data_chunks) > 1 and max(map(len, s.data_chunks)) == mtu - 3
    (app,) = await asyncio.wait_for(
        ancs.get_app_attributes("com.apple.MobileSMS", [AppAttributeId.DISPLAY_NAME]), T)
    assert app.value == "Messages"


async def test_an_action_is_logged_and_the_notification_removed(setup: Setup) -> None:
    s = setup.s
    ancs = s.ancs
    assert ancs is not None
    await until(lambda: len(s.notifications) == 1)
    uid = s.notifications[0].notification_uid
    await asyncio.wait_for(ancs.perform_positive_action(uid), T)
    await until(lambda: len(s.notifications) == 2)
    assert s.notifications[1].event_id == EventId.NOTIFICATION_REMOVED
    assert s.notifications[1].notification_uid == uid
    (action,) = [e for e in setup.events if e["event"] == "action"]
    assert action == {"event": "action", "uid": uid, "action": "positive", "label": "Reply",
                      "app_id": "com.apple.MobileSMS", "title": "Anna"}
    assert uid not in setup.phone.ancs.posted  # type: ignore[union-attr]
    # Acting on it again, or asking for it, is refused with ANCS's Invalid Parameter.
    with pytest.raises(CommandError) as info:
        await asyncio.wait_for(ancs.perform_negative_action(uid), T)
    assert info.value.error_code == 0xA2


async def test_bad_control_point_commands_get_ancs_errors(setup: Setup) -> None:
    proxy = setup.s.ancs._ancs_proxy  # type: ignore[union-attr]
    from bumble.att import ATT_Error
    for command, code in ((b"\x07", 0xA0), (b"\x00\x01", 0xA1), (b"\x00\x63\x00\x00\x00\x00", 0xA2),
                          (b"\x00\x63\x00\x00\x00\x01", 0xA1)):
        with pytest.raises(ATT_Error) as info:
            await asyncio.wait_for(proxy.control_point.write_value(command, with_response=True), T)
        assert info.value.error_code == code, command
