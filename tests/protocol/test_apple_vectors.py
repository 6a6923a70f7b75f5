"""The AMS/ANCS hex test vectors of PROTOCOL.md section 11, checked both ways.

Every value printed in the document is parsed from it (not repeated here), rebuilt by the
encoders from the inputs the text names, and decoded back to those inputs; the Notification
Source event is also read by Bumble's parser as a second opinion.
"""

from __future__ import annotations

from bumble.profiles import ancs as bancs

from protocol.apple import ams, ancs
from tests.protocol.helpers import spec_vectors

NA = ancs.NotificationAttribute
VALUES = {
    NA.APP_IDENTIFIER: "com.apple.MobileSMS",
    NA.TITLE: "Alice",
    NA.SUBTITLE: "",
    NA.MESSAGE: "Lunch at 1?",
    NA.DATE: "20260315T123000",
    NA.POSITIVE_ACTION_LABEL: "Reply",
    NA.NEGATIVE_ACTION_LABEL: "Clear",
}




V = spec_vectors("apple")
CHECKED: set[str] = set()


def v(key: str) -> bytes:
    CHECKED.add(key)
    return V[key]


def test_ams_entity_updates() -> None:
    data = v("ams.update_title")
    assert ams.encode_entity_update(2, 2, "Hey Jude", max_size=20) == data
    assert ams.decode_entity_update(data) == ams.EntityUpdate(2, 2, False, "Hey Jude")
    title = "Ça plane pour moi — Plastic Bertrand"
    data = v("ams.update_truncated")
    assert ams.encode_entity_update(2, 2, title, max_size=23 - 3) == data
    upd = ams.decode_entity_update(data)
    assert upd.truncated and upd.value == "Ça plane pour mo" and len(data) == 20
    data = v("ams.update_playback")
    assert ams.encode_entity_update(0, 1, "1,1.0,12.345", max_size=20) == data
    info = ams.parse_playback_info(ams.decode_entity_update(data).value)
    assert info == ams.PlaybackInfo(ams.PlaybackState.PLAYING, 1.0, 12.345)


def test_ams_registers_requests_and_commands() -> None:
    for key, entity, attrs in [
        ("ams.register_player", ams.EntityId.PLAYER, (0, 1, 2)),
        ("ams.register_queue", ams.EntityId.QUEUE, (0, 1, 2, 3)),
        ("ams.register_track", ams.EntityId.TRACK, (0, 1, 2, 3)),
    ]:
        assert ams.encode_register(entity, attrs) == v(key)
        assert ams.decode_register(v(key)) == (entity, attrs)
    assert ams.encode_entity_attribute_request(2, 2) == v("ams.attribute_request")
    assert ams.decode_entity_attribute_request(v("ams.attribute_request")) == (2, 2)
    offered = {ams.RemoteCommand(i) for i in range(7)}
    assert ams.encode_remote_commands(offered) == v("ams.remote_commands")
    assert ams.decode_remote_commands(v("ams.remote_commands")) == offered
    assert ams.decode_remote_command(v("ams.command_next")) is ams.RemoteCommand.NEXT_TRACK
    assert bytes([ams.ACTION_COMMANDS["next"]]) == v("ams.command_next")


def test_ancs_event() -> None:
    ev = ancs.NotificationEvent(
        ancs.EventId.ADDED,
        ancs.EventFlags.POSITIVE_ACTION | ancs.EventFlags.NEGATIVE_ACTION,
        ancs.Category.SOCIAL,
        1,
        42,
    )
    assert ancs.encode_notification_source(ev) == v("ancs.event_added")
    assert ancs.decode_notification_source(v("ancs.event_added")) == ev
    theirs = bancs.Notification.from_bytes(v("ancs.event_added"))
    assert (theirs.event_id, theirs.event_flags, theirs.category_id) == (0, 24, 4)
    assert (theirs.category_count, theirs.notification_uid) == (1, 42)


def test_ancs_commands() -> None:
    get = ancs.GetNotificationAttributes(42, ancs.CAR_NOTIFICATION_ATTRIBUTES)
    assert ancs.encode_command(get) == v("ancs.get_notification")
    assert ancs.decode_command(v("ancs.get_notification")) == get
    app = ancs.GetAppAttributes("com.apple.MobileSMS", ancs.CAR_APP_ATTRIBUTES)
    assert ancs.encode_command(app) == v("ancs.get_app")
    assert ancs.decode_command(v("ancs.get_app")) == app
    act = ancs.PerformAction(42, ancs.ActionId.POSITIVE)
    assert ancs.encode_command(act) == v("ancs.perform_positive")
    assert ancs.decode_command(v("ancs.perform_positive")) == act


def test_ancs_answers_and_their_split_at_mtu_23() -> None:
    get = ancs.GetNotificationAttributes(42, ancs.CAR_NOTIFICATION_ATTRIBUTES)
    order = [a for a, _ in get.attributes]
    whole = v("ancs.notification_answer")
    assert ancs.encode_response(ancs.NotificationAttributes(42, VALUES), order) == whole
    chunks = [v(f"ancs.answer_mtu23.{i}") for i in range(5)]
    assert f"ancs.answer_mtu23.{len(chunks)}" not in V
    assert ancs.split(whole, 23) == chunks
    assert all(len(c) == 20 for c in chunks[:-1])
    reader = ancs.ResponseReader(get)
    results = [reader.feed(c) for c in chunks]
    assert results == [None] * 4 + [ancs.NotificationAttributes(42, VALUES)]
    assert ancs.parse_date(VALUES[NA.DATE]) == "2026-03-15T12:30:00"
    app = ancs.GetAppAttributes("com.apple.MobileSMS", ancs.CAR_APP_ATTRIBUTES)
    answer = ancs.AppAttributes(app.app_id, {ancs.AppAttribute.DISPLAY_NAME: "Messages"})
    assert ancs.encode_response(answer, [0]) == v("ancs.app_answer")
    assert ancs.ResponseReader(app).feed(v("ancs.app_answer")) == answer


def test_every_vector_in_the_document_is_checked() -> None:
    CHECKED.clear()
    for check in (
        test_ams_entity_updates,
        test_ams_registers_requests_and_commands,
        test_ancs_event,
        test_ancs_commands,
        test_ancs_answers_and_their_split_at_mtu_23,
    ):
        check()
    assert len(V) >= 20
    assert set(V) == CHECKED  # nothing printed in section 11 goes unchecked
