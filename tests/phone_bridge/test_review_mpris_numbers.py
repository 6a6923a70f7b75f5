"""A player's numbers are whatever it sends (a double for a length, infinity for a rate):
the car still gets a NowPlaying it can decode, and the bridge never raises."""

from __future__ import annotations

import pytest

from phone_bridge.mpris.model import PlayerView, now_playing_of
from protocol.messages import decode, encode


@pytest.mark.parametrize(
    ("prop", "value"),
    [("mpris:length", float("inf")), ("mpris:length", 1e300), ("mpris:length", -1e300),
     ("Rate", float("inf")), ("Rate", 1e308), ("Rate", float("nan")),
     ("Position", float("inf")), ("Position", 1e300)],
)  # fmt: skip
def test_absurd_numbers_still_make_a_valid_now_playing(prop: str, value: float) -> None:
    view = PlayerView("org.mpris.MediaPlayer2.odd", ":1.7")
    view.update({"PlaybackStatus": "Playing", "Metadata": {"xesam:title": "Odd"}}, 0.0)
    if prop in ("Rate", "Position"):
        view.update({prop: value}, 0.0)
    else:
        view.update({"Metadata": {"xesam:title": "Odd", prop: value}}, 0.0)
    np = now_playing_of(view, b"", 3600.0)  # an hour after the last reading
    again = decode(encode(np))  # the car validates it: ms >= 0, rate <= 16, uint64
    assert again == np and again.title == "Odd"
