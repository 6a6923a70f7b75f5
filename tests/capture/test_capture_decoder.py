"""The capture decoder, sans-I/O: btsnoop and pcap bytes in, CarHub messages out.

The traffic is real (a phone and a car joined in memory, ``wire_doubles``), wrapped as a
BLE host's HCI or a LAN capture would carry it; what is checked is what a user reads:
every message named as in PROTOCOL.md, in order, with its direction, and the session's
ones decrypted only with the key log.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocol.capture.decode import decode_capture
from protocol.capture.keylog import KeyLog, format_line, parse_keylog
from protocol.framing import FrameDecoder
from tests.capture.wire_doubles import Recording, btsnoop_of, pcap_of, recorded_pairing

PLAIN = [
    "Hello",
    "Hello",
    "PairRequest",
    "PairCommit",
    "PairNonce",
    "PairReveal",
    "PairConfirm",
    "PairConfirm",
    "PairResult",
    "NoiseHandshake",
    "NoiseHandshake",
]
SESSION = [("car->phone", "ContactsState", 0), ("phone->car", "NowPlaying", 0),
           ("phone->car", "NowPlaying", 1), ("phone->car", "Ping", 2),
           ("car->phone", "Pong", 1)]  # fmt: skip


@pytest.fixture(scope="module")
def rec() -> Recording:
    return recorded_pairing()


@pytest.fixture(scope="module")
def keys(rec: Recording) -> KeyLog:
    assert rec.secrets is not None
    return parse_keylog("# a comment\n\n" + format_line(rec.secrets))


def _names(data: bytes, keys: KeyLog | None) -> list[tuple[str, str, int | None]]:
    result = decode_capture(data, keys)
    assert result.error is None, result.error
    return [(m.direction, m.message, m.counter) for m in result.messages]


def test_the_session_really_uses_the_version_2_zstd_stream(rec: Recording) -> None:
    # Both NowPlaying messages are zstd stream pieces (codec 02): the second continues the
    # stream the first began, so a decoder that kept no state per direction would fail.
    assert rec.secrets is not None
    frames = FrameDecoder().frames(b"".join(d for _, to_car, d in rec.chunks if to_car))
    sealed = [f for f in frames if f[:1] == b"\x00"]
    aead = ChaCha20Poly1305(rec.secrets.phone_to_car)
    codecs = [aead.decrypt(b"\0" * 4 + f[:8], f[8:], f[:8])[0] for f in sealed]
    assert codecs == [2, 2, 0]


def test_a_version_1_session_with_zstd_frames_decodes_too() -> None:
    rec = recorded_pairing(versions=(1,))
    assert rec.secrets is not None
    frames = FrameDecoder().frames(b"".join(d for _, to_car, d in rec.chunks if to_car))
    aead = ChaCha20Poly1305(rec.secrets.phone_to_car)
    sealed = [f for f in frames if f[:1] == b"\x00"]
    assert [aead.decrypt(b"\0" * 4 + f[:8], f[8:], f[:8])[0] for f in sealed] == [1, 1, 0]
    got = _names(btsnoop_of(rec), parse_keylog(format_line(rec.secrets)))
    assert got[len(PLAIN) :] == SESSION


@pytest.mark.parametrize("view", ["car", "phone"])
@pytest.mark.parametrize(("mtu", "fragment"), [(23, 27), (247, 251), (517, 9)])
def test_btsnoop_of_either_host_decrypts_with_the_key_log(
    rec: Recording, keys: KeyLog, view: str, mtu: int, fragment: int
) -> None:
    got = _names(btsnoop_of(rec, view=view, mtu=mtu, fragment=fragment), keys)
    assert [n for _, n, _ in got[: len(PLAIN)]] == PLAIN
    assert got[0][0] == "phone->car" and got[1][0] == "car->phone"
    assert got[len(PLAIN) :] == SESSION


def test_without_the_key_log_session_frames_are_encrypted_with_their_counters(
    rec: Recording,
) -> None:
    result = decode_capture(btsnoop_of(rec), None)
    sealed = result.messages[len(PLAIN) :]
    assert [m.message for m in sealed] == ["encrypted"] * len(SESSION)
    assert [(m.direction, m.fields["counter"]) for m in sealed] == [(d, n) for d, _, n in SESSION]
    assert all(m.fields["length"] >= 24 for m in sealed)
    # The plaintext part needs no key.
    assert [m.message for m in result.messages[: len(PLAIN)]] == PLAIN


def test_fields_are_json_values_named_as_in_the_protocol(rec: Recording, keys: KeyLog) -> None:
    msgs = decode_capture(btsnoop_of(rec), keys).messages
    hello, request = msgs[0].fields, msgs[2].fields
    assert hello["role"] == "phone" and hello["intent"] == "pair" and hello["versions"] == [2, 1]
    assert len(request["public_key"]) == 64 and request["method"] == "numeric"
    playing = next(m for m in msgs if m.message == "NowPlaying")
    assert (
        playing.fields["title"].startswith("A long title") and playing.fields["state"] == "playing"
    )


def test_a_key_log_of_another_session_opens_nothing(rec: Recording) -> None:
    assert rec.secrets is not None
    other = format_line(rec.secrets).split()
    other[3] = "00" * 32  # the right session, a wrong phone->car key
    result = decode_capture(btsnoop_of(rec), parse_keylog(" ".join(other)))
    to_car = [m for m in result.messages if m.counter is not None and m.direction == "phone->car"]
    assert {m.message for m in to_car} == {"encrypted"}
    assert "does not open" in to_car[0].fields["error"]


@pytest.mark.parametrize(("segment", "reorder"), [(100, False), (7, True), (65000, False)])
def test_pcap_of_the_websocket_session(
    rec: Recording, keys: KeyLog, segment: int, reorder: bool
) -> None:
    got = _names(pcap_of(rec, segment=segment, reorder=reorder), keys)
    assert [n for _, n, _ in got] == PLAIN + [n for _, n, _ in SESSION]
    assert got[len(PLAIN) :] == SESSION


def test_times_are_seconds_from_the_first_packet(rec: Recording, keys: KeyLog) -> None:
    msgs = decode_capture(btsnoop_of(rec), keys).messages
    assert msgs[0].time == pytest.approx(0.001)  # the connection event came 1 ms before
    assert [m.time for m in msgs] == sorted(m.time for m in msgs)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"hello world", b"btsnoop\x00", b"btsnoop\x00\x00\x00\x00\x02\x00\x00\x03\xea",
     b"\xd4\xc3\xb2\xa1" + b"\x00" * 3, b"\x0a\x0d\x0d\x0a" + b"\xff" * 40],
)  # fmt: skip
def test_garbage_is_one_clear_error_and_no_messages(garbage: bytes) -> None:
    result = decode_capture(garbage, None)
    assert result.messages == [] and result.error is not None
    assert "\n" not in str(result.error) and str(result.error)


@pytest.mark.parametrize("make", [btsnoop_of, pcap_of])
def test_a_truncated_capture_keeps_what_came_before_the_cut(
    rec: Recording, keys: KeyLog, make: object
) -> None:
    data = make(rec)  # type: ignore[operator]
    result = decode_capture(data[: len(data) - 5], keys)
    assert result.error is not None and "truncated" in str(result.error)
    assert [m.message for m in result.messages[: len(PLAIN)]] == PLAIN


def test_a_capture_that_lost_a_session_frame_says_so_and_goes_on(
    rec: Recording, keys: KeyLog
) -> None:
    # Drop the first NowPlaying frame: the second is a zstd stream piece that continues
    # a stream this decoder never saw, so it cannot be inflated; the capture still decodes.
    i, (time, _, data) = next((i, c) for i, c in enumerate(rec.chunks) if c[1] and c[2][4] == 0)
    first = 4 + int.from_bytes(data[:4], "big")
    chunks = [*rec.chunks[:i], (time, True, data[first:]), *rec.chunks[i + 1 :]]
    result = decode_capture(btsnoop_of(Recording(chunks, rec.secrets)), keys)
    assert result.error is None
    lost = [m for m in result.messages if m.direction == "phone->car" and m.counter == 1]
    assert lost[0].message == "undecodable" and "zstd" in lost[0].fields["error"]
    assert [m.message for m in result.messages if m.direction == "car->phone"][-1] == "Pong"
