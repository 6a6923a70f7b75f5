"""What a capture holds is printed, never obeyed: no terminal controls reach the terminal."""

from __future__ import annotations

import json

from capture.cli import _json_line, _short
from protocol.capture.conversation import Decoded

HOSTILE = "Car\x1b]0;owned\x07\x9b2J\u202eevil\x85"


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E]


def test_text_output_escapes_every_control_a_peer_can_put_in_a_name() -> None:
    shown = _short(HOSTILE)
    assert _raw_controls(shown) == []
    assert "Car" in shown and "evil" in shown


def test_json_output_escapes_them_and_stays_the_same_json() -> None:
    msg = Decoded(1.5, "lan", "car->phone", "Hello", {"name": HOSTILE, "n": 3})
    line = _json_line(msg)
    assert _raw_controls(line) == []
    assert json.loads(line)["fields"] == {"name": HOSTILE, "n": 3}
