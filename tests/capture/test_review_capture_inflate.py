"""A capture's session messages may inflate (zstd streams) only so far in all."""

from __future__ import annotations

import pytest

from protocol.capture import decode as decode_mod
from protocol.capture.decode import decode_capture
from protocol.capture.keylog import format_line, parse_keylog
from tests.capture.wire_doubles import pcap_of, recorded_pairing


def test_decoding_stops_with_an_error_past_the_inflation_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = recorded_pairing()
    assert rec.secrets is not None
    keys = parse_keylog(format_line(rec.secrets))
    whole = decode_capture(pcap_of(rec), keys)
    assert whole.error is None
    monkeypatch.setattr(decode_mod, "MAX_INFLATED", 40, raising=False)
    cut = decode_capture(pcap_of(rec), keys)
    assert cut.error is not None and "inflate past 40 bytes" in str(cut.error)
    # What came before the budget ran out is still shown, in order.
    names = [m.message for m in cut.messages]
    assert names == [m.message for m in whole.messages][: len(names)]
    assert "Hello" in names and len(names) < len(whole.messages)
