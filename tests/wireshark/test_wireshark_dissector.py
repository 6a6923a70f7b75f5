"""The Wireshark dissector, ``tools/wireshark/carhub.lua``, read by tshark on real captures.

The captures come from real processes (``tests.capture.make_captures``): a pairing then a
sync over the emulated BLE radio (the car's, the phone's and the radio's btsnoop) and over
loopback WebSocket (dumpcap), plus a pairing the car refuses. Each test reads them the way a
user would, ``tshark -X lua_script:carhub.lua -r CAPTURE -T fields -e carhub.msg ...``,
and checks the message names in order, the directions, the fields and the session counters.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.capture.make_captures import BleCaptures, LanCapture, ble_captures, lan_capture
from tests.wireshark.btsnoop import NOTIFICATION, WRITE_COMMAND, write_btsnoop
from tests.wireshark.captures import refused_pair_capture

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tools" / "wireshark" / "carhub.lua"
TSHARK = shutil.which("tshark")

PAIRING = [
    ("phone->car", "Hello"), ("car->phone", "Hello"),
    ("phone->car", "PairRequest"), ("car->phone", "PairCommit"),
    ("phone->car", "PairNonce"), ("car->phone", "PairReveal"),
    ("car->phone", "PairConfirm"), ("phone->car", "PairConfirm"),
    ("car->phone", "PairResult"),
]  # fmt: skip
HANDSHAKE = [("phone->car", "NoiseHandshake"), ("car->phone", "NoiseHandshake")]
SESSION_OPEN = [("phone->car", "Hello"), ("car->phone", "Hello"), *HANDSHAKE]
SEP = "|"  # tshark's aggregator for several frames in one packet (names hold no "|")


@dataclass(frozen=True)
class Frame:
    """One CarHub frame as tshark showed it."""

    packet: int
    conn: str  # the BLE connection (frame of its Connect) or the TCP stream
    direction: str
    msg: str
    length: int
    counter: int | None


def tshark(
    capture: Path, *fields: str, display: str = "carhub", options: tuple[str, ...] = ()
) -> list[list[list[str]]]:
    """Run tshark with the plugin; one row per packet, one list of values per field."""
    assert TSHARK, "tshark is not installed: apt-get install tshark (CI installs it)"
    args = [TSHARK, "-X", f"lua_script:{PLUGIN}", "-r", str(capture), "-Y", display, *options,
            "-T", "fields", "-E", f"aggregator={SEP}", "-E", "occurrence=a"]  # fmt: skip
    for name in (*fields, "_ws.expert.message"):
        args += ["-e", name]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # A script that fails to load only warns on stderr; one that fails on a packet adds a
    # "Lua Error" expert item to it. Either fails the test.
    assert "Lua" not in proc.stderr and "rror" not in proc.stderr, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line.strip()]
    assert not [r for r in rows if "Lua Error" in r[-1]], [r[-1] for r in rows]
    return [[cell.split(SEP) if cell else [] for cell in row[:-1]] for row in rows]


def frames(capture: Path) -> list[Frame]:
    """Every CarHub frame of ``capture``, in order."""
    out: list[Frame] = []
    rows = tshark(capture, "frame.number", "bthci_acl.connect_in", "tcp.stream",
                  "carhub.direction", "carhub.msg", "carhub.len", "carhub.counter")  # fmt: skip
    for number, connect, stream, dirs, msgs, lens, counters in rows:
        assert len(dirs) == len(msgs) == len(lens), (number, dirs, msgs, lens)
        # Only session frames have a counter: they take the counters in their order.
        assert len(counters) == msgs.count("encrypted"), (number, msgs, counters)
        left = iter(counters)
        for d, m, n in zip(dirs, msgs, lens, strict=True):
            c = int(next(left)) if m == "encrypted" else None
            out.append(Frame(int(number[0]), (connect or stream or ["?"])[0], d, m, int(n), c))
    return out


def by_conn(found: list[Frame]) -> list[list[Frame]]:
    conns: dict[str, list[Frame]] = {}
    for fr in found:
        conns.setdefault(fr.conn, []).append(fr)
    return list(conns.values())


def plain(conn: list[Frame]) -> list[tuple[str, str]]:
    return [(fr.direction, fr.msg) for fr in conn if fr.msg != "encrypted"]


def assert_session_counters(conn: list[Frame]) -> None:
    """Each direction's session frames count 0, 1, 2, ... and start after the handshake."""
    for direction in ("phone->car", "car->phone"):
        ours = [fr for fr in conn if fr.direction == direction]
        names = [fr.msg for fr in ours]
        first = names.index("encrypted")
        assert names[first - 1] == "NoiseHandshake", names
        assert set(names[first:]) == {"encrypted"}, names
        assert [fr.counter for fr in ours[first:]] == list(range(len(ours) - first)), ours
        # counter (8) + tag (16) + at least the codec byte and a message
        assert all(fr.length >= 26 for fr in ours[first:]), ours


@pytest.fixture(scope="module")
def ble(tmp_path_factory: pytest.TempPathFactory) -> BleCaptures:
    return ble_captures(tmp_path_factory.mktemp("ble"), contacts=200)


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> LanCapture:
    return lan_capture(tmp_path_factory.mktemp("lan"), contacts=200)


def test_car_btsnoop_shows_pairing_then_the_sync_session(ble: BleCaptures) -> None:
    pairing, sync = by_conn(frames(ble.car))
    assert plain(pairing) == PAIRING + HANDSHAKE
    assert plain(sync) == SESSION_OPEN
    for conn in (pairing, sync):
        assert_session_counters(conn)
    # The sync sent contacts: the phone's session frames carry far more than the car's.
    up = sum(fr.length for fr in sync if fr.direction == "phone->car" and fr.counter is not None)
    assert up > 2000, sync


def test_phone_btsnoops_and_the_radio_show_the_same_frames(ble: BleCaptures) -> None:
    car = frames(ble.car)
    pair, sync = frames(ble.phone_pair), frames(ble.phone_sync)
    key = [(fr.direction, fr.msg, fr.length, fr.counter) for fr in car]
    assert [(fr.direction, fr.msg, fr.length, fr.counter) for fr in pair + sync] == key
    # The radio records every controller: each frame once from each side.
    radio = frames(ble.radio)
    assert sorted((fr.direction, fr.msg, fr.length) for fr in radio) == sorted(
        (fr.direction, fr.msg, fr.length) for fr in car + car
    )


def test_frames_are_reassembled_from_every_att_value(ble: BleCaptures) -> None:
    """Every byte of the channel writes and notifications belongs to a shown frame."""
    # The plugin takes the ATT value, so count it as the L2CAP length less opcode + handle.
    writes = "carhub && (btatt.opcode == 0x52 || btatt.opcode == 0x1b)"
    att_bytes = sum(int(row[0][0]) - 3 for row in tshark(ble.car, "btl2cap.length", display=writes))
    found = frames(ble.car)
    assert sum(4 + fr.length for fr in found) == att_bytes
    mtu_payload = 244  # the phone asks for MTU 247
    assert max(fr.length for fr in found) > mtu_payload  # some frame spans several writes
    segments = tshark(ble.car, "carhub.segment", display="carhub.segment")
    assert segments and all(" of " in row[0][0] for row in segments), segments


def test_fields_of_hello_and_pairing_messages(ble: BleCaptures) -> None:
    rows = tshark(ble.phone_pair, "carhub.msg", "carhub.hello.role", "carhub.hello.intent",
                  "carhub.hello.versions", "carhub.hello.selected", "carhub.hello.device_id",
                  "carhub.pairrequest.method", "carhub.pairrequest.public_key",
                  "carhub.paircommit.commitment", "carhub.pairresult.accepted",
                  display="carhub.tag")  # fmt: skip
    hello_phone, hello_car = rows[0], rows[1]
    assert hello_phone[:5] == [["Hello"], ["phone"], ["pair"], ["2,1"], ["0"]]
    assert hello_car[:5] == [["Hello"], ["car"], ["pair"], ["2,1"], ["2"]]
    ids = {hello_phone[5][0], hello_car[5][0]}
    assert len(ids) == 2 and all(len(i) == 16 for i in ids), ids
    request = next(r for r in rows if r[0] == ["PairRequest"])
    assert request[6] == ["numeric"] and len(request[7][0]) == 64  # 32-byte key, in hex
    commit = next(r for r in rows if r[0] == ["PairCommit"])
    assert len(commit[8][0]) == 64
    result = next(r for r in rows if r[0] == ["PairResult"])
    assert result[9] == ["1"]  # accepted = true


def test_lan_websocket_capture_shows_the_same_conversation(
    lan: LanCapture, ble: BleCaptures
) -> None:
    found = frames(lan.pcap)
    pairing, sync = by_conn(found)
    assert plain(pairing) == PAIRING + HANDSHAKE
    assert plain(sync) == SESSION_OPEN
    for conn in (pairing, sync):
        assert_session_counters(conn)
    # Same messages as over BLE; only the carrier differs.
    ble_found = frames(ble.car)
    assert [(fr.direction, fr.msg) for fr in found] == [(fr.direction, fr.msg) for fr in ble_found]


def test_session_frames_show_counter_and_plaintext_length(lan: LanCapture) -> None:
    rows = tshark(lan.pcap, "carhub.len", "carhub.counter", "carhub.plaintext_len",
                  "carhub.ciphertext", display="carhub.msg == \"encrypted\"")  # fmt: skip
    assert rows
    for lens, counters, plains, ciphers in rows:
        # A packet may also hold a NoiseHandshake: its length comes first.
        for n, p, c in zip(lens[-len(counters) :], plains, ciphers, strict=True):
            assert int(p) == int(n) - 24 and len(c) // 2 == int(n) - 8


def test_a_refused_pairing_shows_the_error(tmp_path: Path) -> None:
    cap = refused_pair_capture(tmp_path)
    rows = tshark(cap, "carhub.direction", "carhub.msg", "carhub.error.reason")
    assert [(r[0], r[1]) for r in rows] == [
        (["phone->car"], ["Hello"]), (["car->phone"], ["Error"]),
    ]  # fmt: skip
    assert rows[1][2] == ["pairing-closed"]


# Hand-made captures: chunkings and malformed frames no real peer sends --------------------
DECODE_AS = ("-d", "btatt.handle==0x12,carhub", "-d", "btatt.handle==0x14,carhub")
HELLO = (
    bytes.fromhex("9801920201a570686f6e65b0")
    + b"2ea7de67c117d74f"
    + bytes.fromhex("a178a0a47061697200")
)  # [1, [2, 1], "phone", id, "x", "", "pair", 0]


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def test_any_split_of_the_stream_gives_the_same_frames(tmp_path: Path) -> None:
    stream = frame(HELLO) + frame(bytes.fromhex("9106")) + frame(bytes(8) + b"\x07" * 20)
    whole = write_btsnoop(tmp_path / "whole.btsnoop", [(WRITE_COMMAND, stream)])
    bytewise = write_btsnoop(
        tmp_path / "bytes.btsnoop", [(WRITE_COMMAND, bytes((b,))) for b in stream]
    )
    expected = [["Hello", "Unpair", "encrypted"]]
    assert [r[0] for r in tshark(whole, "carhub.msg", options=DECODE_AS)] == expected
    rows = tshark(bytewise, "carhub.msg", "carhub.len", "carhub.counter", options=DECODE_AS,
                  display="carhub.msg")  # fmt: skip
    assert [r[0][0] for r in rows] == expected[0]
    assert [r[1][0] for r in rows] == [str(len(HELLO)), "2", "28"]
    assert rows[2][2] == ["0"]
    hello = tshark(bytewise, "carhub.hello.device_id", "carhub.hello.intent", options=DECODE_AS,
                   display="carhub.msg == \"Hello\"")  # fmt: skip
    assert hello == [[["2ea7de67c117d74f"], ["pair"]]]


def test_malformed_frames_are_shown_as_such_without_a_lua_error(tmp_path: Path) -> None:
    cap = write_btsnoop(tmp_path / "bad.btsnoop", [
        (WRITE_COMMAND, frame(bytes.fromhex("9301ddffffffff"))),  # array count past the end
        (WRITE_COMMAND, frame(bytes.fromhex("9163"))),  # unknown tag 99
        (WRITE_COMMAND, frame(bytes.fromhex("9202c4056162"))),  # truncated bin
        (NOTIFICATION, frame(bytes(10))),  # a session frame shorter than 24 bytes
        (WRITE_COMMAND, frame(bytes.fromhex("9302a1780a"))),  # Error with an int detail
        (WRITE_COMMAND, frame(bytes.fromhex("9102")) + b"\x9f"),  # Error without its reason
        (WRITE_COMMAND, b"\x7f\xff\xff\xff" + bytes(8)),  # a length over 1 MiB
    ])  # fmt: skip
    rows = tshark(cap, "carhub.msg", "_ws.malformed", options=DECODE_AS, display="carhub")
    assert [r[0] for r in rows] == [
        ["malformed"], ["Unknown(99)"], ["malformed"], ["encrypted"], ["Error"], ["Error"], [],
    ]  # fmt: skip
    malformed = [bool(r[1]) for r in rows]
    assert malformed == [True, False, True, True, True, True, True], rows
