"""End to end: real captures of a real car and phone, decoded by ``carhub-capture decode``.

The car and the phone run as subprocesses with ``--btsnoop`` (over the emulated radio) or
under ``dumpcap`` (over the LAN), and with ``--keylog``; the decoder runs as a user runs it
(``python -m capture``, which is what the ``carhub-capture`` console script calls), and the
checks are what its ``--json`` lines say.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.capture.make_captures import BleCaptures, LanCapture, ble_captures, lan_capture

ROOT = Path(__file__).resolve().parents[2]
PAIRING = ["Hello", "Hello", "PairRequest", "PairCommit", "PairNonce", "PairReveal",
           "PairConfirm", "PairConfirm", "PairResult", "NoiseHandshake",
           "NoiseHandshake"]  # fmt: skip


def decode(capture: Path, *extra: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "capture", "decode", str(capture), *extra]
    args += ["--json"] if json_out else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)


def lines(capture: Path, *extra: str) -> list[dict[str, Any]]:
    r = decode(capture, *extra)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(set(o) == {"time", "direction", "message", "fields"} for o in out), out[:3]
    return out


def names(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["message"] for m in msgs]


def batch_contacts(msgs: list[dict[str, Any]]) -> int:
    return sum(len(m["fields"]["upserts"]) for m in msgs if m["message"] == "ContactsBatch")


@pytest.fixture(scope="module")
def ble(tmp_path_factory: pytest.TempPathFactory) -> BleCaptures:
    work = tmp_path_factory.mktemp("ble")
    return ble_captures(work, contacts=30, keylog=work / "keys.log")


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> LanCapture:
    work = tmp_path_factory.mktemp("lan")
    # 1,200 contacts: three batches, so the zstd stream (codec 02) runs across frames.
    return lan_capture(work, contacts=1200, keylog=work / "keys.log")


@pytest.mark.parametrize("which", ["car", "phone_pair", "radio"])
def test_btsnoop_pairing_is_plaintext_and_the_session_decrypted(ble: BleCaptures, which: str
                                                                ) -> None:  # fmt: skip
    assert ble.keylog is not None
    msgs = lines(getattr(ble, which), "--keylog", str(ble.keylog))
    assert names(msgs)[: len(PAIRING)] == PAIRING  # each once: the radio's twice is folded
    hello, request = msgs[0], msgs[2]
    assert hello["direction"] == "phone->car" and hello["fields"]["intent"] == "pair"
    assert request["direction"] == "phone->car" and len(request["fields"]["public_key"]) == 64
    assert "encrypted" not in names(msgs)
    # The pairing connection's session is the first session a key log line is for.
    assert msgs[len(PAIRING)]["message"] == "ContactsState"


@pytest.mark.parametrize("which", ["car", "phone_sync", "radio"])
def test_btsnoop_sync_shows_every_contact_decrypted(ble: BleCaptures, which: str) -> None:
    assert ble.keylog is not None
    msgs = lines(getattr(ble, which), "--keylog", str(ble.keylog))
    assert batch_contacts(msgs) == ble.contacts
    done = [m for m in msgs if m["message"] == "ContactsDone"]
    assert done[-1]["fields"]["total"] == ble.contacts and done[-1]["direction"] == "phone->car"
    acks = [m for m in msgs if m["message"] == "ContactsAck"]
    assert acks and all(m["direction"] == "car->phone" for m in acks)


def test_btsnoop_without_the_key_log_shows_counters(ble: BleCaptures) -> None:
    msgs = lines(ble.car)
    assert names(msgs).count("Hello") == 4  # pairing, then the sync's connection
    assert "PairRequest" in names(msgs) and "ContactsBatch" not in names(msgs)
    sealed = [m for m in msgs if m["message"] == "encrypted"]
    assert sealed and set(sealed[0]["fields"]) == {"counter", "length"}
    # Per connection and direction the counters run 0, 1, 2, ... (the sync's connection
    # starts again at 0 after the pairing's).
    for direction in ("phone->car", "car->phone"):
        counters = [m["fields"]["counter"] for m in sealed if m["direction"] == direction]
        restart = counters.index(0, 1)
        assert counters[:restart] == list(range(restart))
        assert counters[restart:] == list(range(len(counters) - restart))


def test_the_text_output_says_how_to_decrypt(ble: BleCaptures) -> None:
    r = decode(ble.car, json_out=False)
    assert r.returncode == 0, r.stderr
    assert "PairRequest" in r.stdout and "encrypted" in r.stdout and "--keylog" in r.stdout


def test_the_key_log_holds_one_line_per_session_and_is_private(ble: BleCaptures) -> None:
    assert ble.keylog is not None
    assert stat.S_IMODE(ble.keylog.stat().st_mode) == 0o600
    rows = ble.keylog.read_text().splitlines()
    # Two sessions (the one ending the pairing, the sync's), logged by the car and the phone.
    assert len(rows) == 4 and len(set(rows)) == 2
    assert all(r.startswith("CARHUB_SESSION ") for r in rows)
    car_logs = [p.read_text() for p in ble.car.parent.glob("car-*.log")]
    assert sum(text.count("KEY LOG IS ON") for text in car_logs) == 1


def test_pcap_of_the_lan_decrypted_with_the_stream_across_batches(lan: LanCapture) -> None:
    assert lan.keylog is not None
    msgs = lines(lan.pcap, "--keylog", str(lan.keylog))
    assert names(msgs)[: len(PAIRING)] == PAIRING
    batches = [m for m in msgs if m["message"] == "ContactsBatch"]
    assert len(batches) >= 3 and batch_contacts(msgs) == lan.contacts
    assert [b["fields"]["seq"] for b in batches] == list(range(1, len(batches) + 1))
    assert [m for m in msgs if m["message"] == "ContactsDone"][-1]["fields"]["total"] == 1200
    assert "encrypted" not in names(msgs) and "undecodable" not in names(msgs)
    assert all(m["direction"] in ("phone->car", "car->phone") for m in msgs)
    assert [m["time"] for m in msgs] == sorted(m["time"] for m in msgs)


def test_pcap_without_the_key_log(lan: LanCapture) -> None:
    msgs = lines(lan.pcap)
    assert "PairResult" in names(msgs) and "ContactsBatch" not in names(msgs)
    big = [m for m in msgs if m["message"] == "encrypted" and m["direction"] == "phone->car"]
    assert max(m["fields"]["length"] for m in big) > 10_000  # the batches, sealed


@pytest.mark.parametrize("content", [b"", b"not a capture at all\n", b"btsnoop\x00\x00"])
def test_garbage_is_one_line_and_exit_1(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.cap"
    bad.write_bytes(content)
    r = decode(bad)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "carhub-capture: error:" in r.stderr


def test_a_truncated_capture_prints_what_it_has_then_fails(ble: BleCaptures, lan: LanCapture,
                                                           tmp_path: Path) -> None:  # fmt: skip
    for source in (ble.car, lan.pcap):
        cut = tmp_path / f"cut-{source.name}"
        data = source.read_bytes()
        cut.write_bytes(data[: len(data) * 2 // 3 + 3])
        r = decode(cut)
        assert r.returncode == 1, r
        assert json.loads(r.stdout.splitlines()[0])["message"] == "Hello"
        assert r.stderr.count("\n") == 1 and "truncated" in r.stderr, r.stderr


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    r = decode(tmp_path / "nope.btsnoop")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot read" in r.stderr
