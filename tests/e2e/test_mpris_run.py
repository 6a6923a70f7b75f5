"""``phone-bridge run --media mpris:`` with the real car: the player's changes on the car's
``/api/media`` within 2 s, and the car's commands (REST) calling the player's methods.

The phone is the ``phone-bridge`` console script with a private session bus as its
``DBUS_SESSION_BUS_ADDRESS``; the player is the fake MPRIS player, on a thread of this
process, so the test changes it and reads the calls it got.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.helpers import Car, Phone, poll, stop
from tests.phone_bridge.fake_mpris import FakeTrack, PlayerThread, PrivateBus, png, sample_tracks

LIMIT = 2.0  # seconds from a change in the player to the car (issue 14)
CARD = "\r\n".join(
    [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "FN:Ada Mpris",
        "N:Mpris;Ada;;;",
        "TEL:+15550100",
        "END:VCARD",
        "",
    ]
)


def media(car: Car) -> dict[str, Any]:
    return dict(car.get("/api/media"))


def within(car: Car, check: Any, what: str, limit: float = LIMIT) -> tuple[dict[str, Any], float]:
    """Poll ``/api/media`` until ``check`` passes; return it and the seconds it took."""
    start = time.monotonic()
    m = poll(lambda: check(x := media(car)) and x, timeout=limit, what=what)
    return m, time.monotonic() - start


def start_run(phone: Phone, car: Car, tmp_path: Path, spec: str, env: dict[str, str],
              ) -> tuple[subprocess.Popen[str], Path]:  # fmt: skip
    vcf = tmp_path / "book.vcf"
    vcf.write_text(CARD)
    log = tmp_path / "phone-run.log"
    with log.open("w") as err:
        proc = phone.popen(
            "run", car.endpoint, "--contacts", str(vcf), "--media", spec, "--json",
            env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    return proc, log


def test_run_follows_the_player_and_the_car_drives_it(
    paired: tuple[Car, Phone, str], bus: PrivateBus, tmp_path: Path
) -> None:
    car, phone, pid = paired
    cover = tmp_path / "cover.png"
    cover.write_bytes(png(32, 32))
    player = PlayerThread(bus.address, "e2e", tracks=sample_tracks(cover.as_uri()))
    proc, log = start_run(phone, car, tmp_path, "mpris:", bus.env())
    try:
        first, _ = within(car, lambda m: m["title"] == "Morning Drive", "the player's track", 20)
        assert first["phone_id"] == pid and first["state"] == "playing"
        assert first["artists"] == ["Carhub Ensemble"] and first["duration_ms"] == 200_000
        with_art, _ = within(car, lambda m: m["artwork_url"], "the cover stored on the car")
        art = httpx.get(car.url + with_art["artwork_url"], timeout=5)
        assert art.status_code == 200 and art.content == cover.read_bytes()
        assert with_art["artwork_url"].endswith(hashlib.sha256(art.content).hexdigest())

        # The player changes by itself: on the car within 2 s.
        player.do(lambda p: p.go_to(1))
        nxt, took = within(car, lambda m: m["title"] == "Night Signal", "the player's next track")
        assert nxt["artists"] == ["Ana", "Bo"] and took < LIMIT
        player.do(lambda p: p.seek_to(100_000_000))
        within(car, lambda m: 100_000 <= m["position_ms"] < 102_000, "the player's seek")

        # The car's commands, over its REST API, become the player's MPRIS calls.
        def command(body: dict[str, Any], call: str, check: Any, what: str) -> dict[str, Any]:
            assert car.post("/api/media/command", json=body)["phone_id"] == pid
            poll(lambda: call in player.calls, timeout=LIMIT, what=f"the player's {call}")
            return within(car, check, what)[0]

        command({"action": "pause"}, "Pause", lambda m: m["state"] == "paused", "paused")
        command({"action": "next"}, "Next", lambda m: m["title"] == "Cafe Lumiere", "next")
        seek = command({"action": "seek", "position_ms": 30_000},
                       "SetPosition /org/carhub/track/3 30000000",
                       lambda m: 30_000 <= m["position_ms"] < 30_500, "the car's seek")  # fmt: skip
        assert seek["state"] == "paused"
        command({"action": "toggle"}, "PlayPause", lambda m: m["state"] == "playing", "playing")
        command({"action": "previous"}, "Previous", lambda m: m["title"] == "Night Signal", "prev")

        # The player quits: the car shows nothing playing; the phone keeps running.
        player.stop()
        gone, _ = within(car, lambda m: m["state"] == "stopped", "nothing playing")
        assert gone["title"] == "" and proc.poll() is None
        player = PlayerThread(bus.address, "later", tracks=[FakeTrack("/l/1", "Second Player")])
        within(car, lambda m: m["title"] == "Second Player", "a player that appeared")
        assert car.contacts(pid, q="Ada")["total"] == 1
    finally:
        player.stop()
        stop(proc)
    text = log.read_text()
    assert "following org.mpris.MediaPlayer2.e2e" in text and "Traceback" not in text


def test_run_without_a_bus_syncs_contacts_says_so_once_and_keeps_running(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, pid = paired
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    proc, log = start_run(phone, car, tmp_path, "mpris:vlc", env)
    try:
        poll(lambda: car.contacts(pid)["total"] == 1, timeout=20, what="the contacts sync")
        time.sleep(1.0)
        assert proc.poll() is None
    finally:
        stop(proc)
    lines = [line for line in log.read_text().splitlines() if "no D-Bus session bus" in line]
    assert len(lines) == 1, log.read_text()
    assert "DBUS_SESSION_BUS_ADDRESS is not set" in lines[0]


def test_sync_sends_the_player_s_now_playing_once_and_a_bad_name_is_refused(
    paired: tuple[Car, Phone, str], bus: PrivateBus, tmp_path: Path
) -> None:
    car, phone, pid = paired
    vcf = tmp_path / "book.vcf"
    vcf.write_text(CARD)
    track = FakeTrack("/o/1", "Snapshot", length_us=9_000_000)
    player = PlayerThread(bus.address, "once", "Paused", [track])
    try:
        proc = phone.popen(
            "sync", car.endpoint, "--contacts", str(vcf), "--media", "mpris:once", "--json",
            env=bus.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = proc.communicate(timeout=60)
    finally:
        player.stop()
    assert proc.returncode == 0, (out, err)
    m = media(car)
    assert (m["title"], m["state"], m["duration_ms"]) == ("Snapshot", "paused", 9000)
    assert m["phone_id"] == pid
    bad = phone.run("sync", car.endpoint, "--contacts", str(vcf), "--media", "mpris:no good")
    assert bad.code == 2 and "not an MPRIS player name" in bad.err
    assert bad.err.count("\n") == 1 and "Traceback" not in bad.err
