"""MPRIS as values: which player is followed, what the car is told, what a command calls."""

from __future__ import annotations

import pytest

from phone_bridge.errors import BadInput
from phone_bridge.mpris import is_mpris, open_player
from phone_bridge.mpris.model import (
    NO_TRACK,
    PlayerView,
    command_call,
    matches,
    now_playing_of,
    pick_active,
    valid_player_name,
)

P = "org.mpris.MediaPlayer2."


def view(name: str, status: str = "Paused", changed: float = 0.0, since: float = 0.0,
         **md: object) -> PlayerView:  # fmt: skip
    v = PlayerView(bus_name=P + name, owner=":1." + name, status=status,
                   changed_at=changed, playing_since=since)  # fmt: skip
    v.metadata = {k.replace("_", ":", 1): x for k, x in md.items()}
    return v


def test_the_player_that_started_playing_last_wins_over_paused_and_older_ones() -> None:
    a = view("a", "Playing", changed=9, since=1)
    b = view("b", "Playing", changed=2, since=2)  # started later, changed less recently
    c = view("c", "Paused", changed=10)
    assert pick_active([a, b, c], None) is b
    assert pick_active([a, c], None) is a


def test_without_a_player_playing_the_last_changed_one_wins() -> None:
    a, b = view("a", changed=5), view("b", "Stopped", changed=7)
    assert pick_active([a, b], None) is b
    assert pick_active([], None) is None
    # Equal in every way: the name decides, so the choice never flips back and forth.
    assert pick_active([view("z"), view("m")], None).bus_name == P + "m"  # type: ignore[union-attr]


def test_a_named_player_is_followed_alone_with_its_instances() -> None:
    vlc, vlc2, mpv = view("vlc"), view("vlc.instance42", "Playing", since=3), view("mpv", "Playing")
    assert pick_active([vlc, mpv], "vlc") is vlc
    assert pick_active([vlc, vlc2, mpv], "vlc") is vlc2
    assert pick_active([mpv], "vlc") is None
    assert not matches(P + "vlcx", "vlc") and matches(P + "vlc.i1", "vlc")
    assert not matches("org.freedesktop.DBus", None)


def test_metadata_becomes_now_playing_in_the_car_s_units() -> None:
    v = view("a", "Playing", mpris_trackid="/t/1", xesam_title=" Song ",
             xesam_artist=["A", "", "B"], xesam_album="Alb", mpris_length=183_500_000)  # fmt: skip
    v.seek(60_000_000, now=100.0)
    v.rate = 2.0
    np = now_playing_of(v, b"\x01" * 32, now=101.5)
    assert (np.title, np.artists, np.album, np.track_id) == ("Song", ["A", "B"], "Alb", "/t/1")
    assert (np.duration_ms, np.state, np.rate) == (183_500, "playing", 2.0)
    assert np.artwork == b"\x01" * 32
    assert np.position_ms == 63_000  # 60 s + 1.5 s at rate 2
    # Paused: the position stays; past the end: clamped to the length.
    v.update({"PlaybackStatus": "Paused"}, now=101.5)
    assert now_playing_of(v, b"", now=500.0).position_ms == 63_000
    v.seek(999_000_000, now=0)
    assert now_playing_of(v, b"", now=0).position_ms == 183_500


def test_odd_metadata_as_real_players_send_it() -> None:
    # An artist as a lone string, a length as a double, no title but a URL, no track id.
    v = view("a", xesam_artist="Solo", mpris_length=1000.0, xesam_url="file:///m/My%20Song.mp3")
    np = now_playing_of(v, b"", now=0)
    assert (np.artists, np.duration_ms, np.title) == (["Solo"], 1, "My Song.mp3")
    assert len(np.track_id) == 32  # derived: stable for the same track
    assert now_playing_of(v, b"", now=0).track_id == np.track_id
    # Garbage where numbers belong, an absurd rate, an unknown status: still a valid message.
    v = view("b", "Buffering", mpris_length="long", xesam_title=7)
    v.rate = 1e9
    np = now_playing_of(v, b"", now=0)
    assert (np.duration_ms, np.rate, np.state, np.title) == (0, 16.0, "stopped", "")


def test_nothing_followed_is_a_stopped_untitled_now_playing() -> None:
    np = now_playing_of(None, b"", now=0)
    assert (np.title, np.state, np.track_id, np.artwork) == ("", "stopped", "", b"")


@pytest.mark.parametrize(
    ("action", "member"),
    [("play", "Play"), ("pause", "Pause"), ("toggle", "PlayPause"), ("next", "Next"),
     ("previous", "Previous")],
)  # fmt: skip
def test_each_car_command_is_its_mpris_call(action: str, member: str) -> None:
    assert command_call(action, 0, view("a"), now=0) == (member, "", [])


def test_seek_is_set_position_with_the_track_id_or_a_relative_seek_without_one() -> None:
    v = view("a", mpris_trackid="/t/9")
    assert command_call("seek", 42_000, v, now=0) == ("SetPosition", "ox", ["/t/9", 42_000_000])
    for tid in (None, NO_TRACK):
        v = view("b", mpris_trackid=tid) if tid else view("b")
        v.seek(10_000_000, now=0)
        assert command_call("seek", 42_000, v, now=0) == ("Seek", "x", [32_000_000])


def test_media_values_starting_with_mpris_are_player_names_never_paths() -> None:
    assert is_mpris("mpris:") and is_mpris("mpris:vlc") and not is_mpris("./mpris:vlc")
    for good in ("vlc", "vlc.instance123", "spotify", "mpv-1", "chromium.instance_4"):
        assert valid_player_name(good), good
    for bad in ("has space", "9lives", "a..b", "a/b", ".x", "x" * 300):
        assert not valid_player_name(bad), bad
    with pytest.raises(BadInput, match="not an MPRIS player name"):
        open_player("mpris:has space", snapshot=False)
    assert open_player("mpris:org.mpris.MediaPlayer2.vlc", snapshot=False).wanted == "vlc"
    assert open_player("mpris:", snapshot=False).wanted is None
