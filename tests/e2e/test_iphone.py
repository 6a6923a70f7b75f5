"""End to end with an iPhone that runs no CarHub app: AMS and ANCS over the emulated radio.

Every part is a real process: ``carhub-radio``, ``carhub run --hci ...`` and
``phone-bridge emulate ios``, plus a CarHub phone where a test needs one. The checks are
what a user sees: the two screens' codes, the car's REST API, the iPhone's ``--json``
lines, the bond files, and the captures as tshark decodes them.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.ble_helpers import BlePhone, Radio, ble_car, phone_row
from tests.e2e.helpers import Car, Phone, poll, sample_vcf
from tests.e2e.ios_helpers import IPhoneProc


@pytest.fixture
def iphone(tmp_path: Path, radio: Radio) -> IPhoneProc:
    return IPhoneProc(tmp_path / "iphone", radio)


def _iphone_row(car: Car, iphone: IPhoneProc) -> dict[str, Any] | None:
    if not (iphone.state_dir / "ios-bonds.json").exists():
        return None  # not started yet: no identity to look for
    row = phone_row(car, iphone.phone_id())
    return row if row and row["connected"] and set(row["profiles"]) == {"ams", "ancs"} else None


def _bonded(car: Car, iphone: IPhoneProc, timeout: float = 30) -> dict[str, Any]:
    """Wait until the car lists the iPhone connected with both profiles; return its row."""
    return poll(lambda: _iphone_row(car, iphone), timeout=timeout, what="the iPhone on the car")


def _notifications(car: Car, n: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
    return poll(lambda: (lambda ns: ns if len(ns) >= n else [])(car.get("/api/notifications")),
                timeout=timeout, what=f"{n} notification(s) on the car")  # fmt: skip


def _up(tmp_path: Path, radio: Radio, iphone: IPhoneProc) -> tuple[Car, dict[str, Any]]:
    """A car that auto-confirms, and the iPhone bonded to it with a notification shown."""
    car = ble_car(tmp_path, radio, "BLE Car")
    iphone.start()
    row = _bonded(car, iphone)
    _notifications(car, 1)
    return car, row


# 1. bonding with the code on both screens ---------------------------------------------
def test_the_iphone_bonds_when_the_dashboard_accepts_the_same_code(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car", auto_confirm=False)
    assert car.get("/api/status")["apple"] is True
    iphone.start()
    shown = iphone.wait_event("pairing-code", timeout=30)["code"]
    request = poll(lambda: car.get("/api/pairing/requests"), what="a pairing request")[0]
    assert request["method"] == "le-sc"
    assert request["code"] == shown  # numeric comparison: the same 6 digits on both screens
    car.post(f"/api/pairing/requests/{request['id']}/accept")
    row = _bonded(car, iphone)
    assert row["id"] == iphone.phone_id()  # the identity address, not the private one
    assert row["transport"] == "ble" and row["contacts"] == 0
    bonds = car.state_dir / "bonds.json"
    assert stat.S_IMODE(bonds.stat().st_mode) == 0o600
    assert iphone.identity().upper() in bonds.read_text().upper()


def test_a_rejected_code_stores_no_bond(tmp_path: Path, radio: Radio, iphone: IPhoneProc) -> None:
    car = ble_car(tmp_path, radio, "BLE Car", auto_confirm=False)
    iphone.start()
    request = poll(lambda: car.get("/api/pairing/requests"), timeout=30, what="a request")[0]
    car.post(f"/api/pairing/requests/{request['id']}/reject")
    iphone.wait_event("pairing-failed", timeout=30)
    assert not [p for p in car.phones() if "ams" in p["profiles"]]
    assert car.get("/api/notifications") == []
    bonds = car.state_dir / "bonds.json"
    assert not bonds.exists() or iphone.identity().upper() not in bonds.read_text().upper()


def test_a_closed_pairing_window_refuses_new_bonds(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car")
    car.post("/api/pairing/close")
    iphone.start()
    iphone.wait_event("connected", timeout=30)
    # The car reads the services, is refused, and may not bond: nothing pairs, nothing shows.
    with pytest.raises(AssertionError):
        poll(lambda: iphone.events("bonded"), timeout=6, what="no bond")
    assert car.get("/api/pairing/requests") == []
    assert not [p for p in car.phones() if "ams" in p["profiles"]]


# 2. now playing, media commands, notifications ---------------------------------------
def test_now_playing_and_every_media_command(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car")
    iphone.start()
    row = _bonded(car, iphone)
    media = poll(lambda: (lambda m: m if m["source"] == "ams" and m["title"] else None)(
        car.get("/api/media")), timeout=20, what="AMS now playing")  # fmt: skip
    assert media["phone_id"] == row["id"]
    first = media["title"]
    car.post("/api/media/command", json={"action": "next"})
    poll(lambda: car.get("/api/media")["title"] not in (None, first), what="the next track")
    for action, command in [("pause", "pause"), ("play", "play"), ("toggle", "toggle_play_pause"),
                            ("previous", "previous_track"), ("next", "next_track")]:  # fmt: skip
        n = len(iphone.events("remote-command"))
        car.post("/api/media/command", json={"action": action})
        got = iphone.wait_event("remote-command", count=n + 1)
        assert got["command"] == command, got
    r = httpx.post(car.url + "/api/media/command", json={"action": "seek", "position_ms": 5000})
    assert r.status_code == 409 and "seek" in r.json()["detail"].lower()


def test_notifications_arrive_are_acted_on_and_disappear(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car")
    iphone.start()
    _bonded(car, iphone)
    notes = _notifications(car, 2)
    sms = next(n for n in notes if n["app_id"] == "com.apple.MobileSMS")
    assert sms["app_name"] == "Messages" and sms["title"] == "Alex Morgan"
    assert sms["category"] == "social" and sms["positive_action"] == "Reply"
    assert len(sms["date"]) == 19 and sms["date"][10] == "T"
    r = httpx.post(f"{car.url}/api/notifications/{sms['phone_id']}/{sms['uid']}/action",
                   json={"action": "positive"}, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    acted = iphone.wait_event("action")
    assert acted["uid"] == sms["uid"] and acted["action"] == "positive"
    # The iPhone removes it after the action; the car follows within a second or so.
    poll(lambda: all(n["uid"] != sms["uid"] for n in car.get("/api/notifications")),
         timeout=3, what="the acted-on notification to go")  # fmt: skip
    missing = httpx.post(f"{car.url}/api/notifications/{sms['phone_id']}/999999/action",
                         json={"action": "positive"})  # fmt: skip
    assert missing.status_code == 404


# 3. the bond survives a car restart; unpair erases it ---------------------------------
def test_after_a_car_restart_the_iphone_reconnects_with_no_new_code(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car, first = _up(tmp_path, radio, iphone)
    car.stop()
    # No window and no auto-confirm this time: only the bond can let the iPhone back in.
    extra = [a for a in car.extra if a != "--auto-confirm"]
    restarted = Car(car.state_dir, name=car.name, pairing="closed", extra=extra).start()
    again = _bonded(restarted, iphone, timeout=40)
    assert again["id"] == first["id"]
    assert restarted.get("/api/pairing/requests") == []
    assert len(iphone.events("pairing-code")) == 1  # one code, at the first bond only
    addresses = {e["address"] for e in iphone.events("connected")}
    assert len(addresses) >= 2  # it came back from a new private address
    _notifications(restarted, 1)  # re-read after the reconnect


def test_unpair_erases_the_bond_the_notifications_and_the_media(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car, row = _up(tmp_path, radio, iphone)
    car.post("/api/pairing/close")
    r = httpx.delete(f"{car.url}/api/phones/{row['id']}")
    assert r.status_code == 200
    assert car.get("/api/notifications") == []
    assert car.get("/api/media")["source"] != "ams"
    assert iphone.identity().upper() not in (car.state_dir / "bonds.json").read_text().upper()
    assert phone_row(car, row["id"]) is None


# 4. an iPhone and a CarHub phone at once ----------------------------------------------
def test_a_carhub_phone_syncs_while_the_iphone_is_connected(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car")
    iphone.start()
    _bonded(car, iphone)
    phone = BlePhone(Phone(tmp_path / "phone"), radio)
    phone_id = phone.pair(car)
    r = phone.sync(car, sample_vcf(tmp_path / "c.vcf", 300))
    assert r.code == 0, r
    assert car.contacts(phone_id)["total"] == 300
    rows = {p["id"]: p for p in car.phones()}
    assert rows[phone_id]["profiles"] == ["carhub"] and rows[phone_id]["contacts"] == 300
    assert set(rows[iphone.phone_id()]["profiles"]) == {"ams", "ancs"}
    assert rows[iphone.phone_id()]["connected"]


# 5. captures --------------------------------------------------------------------------
def _tshark(capture: Path, display_filter: str, field_name: str) -> list[str]:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: apt-get install tshark (CI installs it)"
    out = subprocess.run(
        [tshark, "-r", str(capture), "-Y", display_filter, "-T", "fields", "-e", field_name],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return [line for line in out.splitlines() if line]


def test_captures_show_le_sc_pairing_and_the_att_traffic(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car_cap, phone_cap = tmp_path / "car.btsnoop", tmp_path / "iphone.btsnoop"
    car = ble_car(tmp_path, radio, "BLE Car", btsnoop=car_cap)
    iphone.btsnoop = phone_cap
    iphone.start()
    _bonded(car, iphone)
    _notifications(car, 1)
    car.stop()
    iphone.stop()
    for cap in (car_cap, phone_cap):
        smp = _tshark(cap, "btsmp", "btsmp.opcode")
        # Security Request (0x0b), Pairing Request/Response (1, 2), Public Keys (0x0c),
        # Confirm/Random (3, 4) and DHKey Checks (0x0d): LE Secure Connections.
        codes = {int(c, 0) for c in smp}
        assert {0x0B, 0x01, 0x02, 0x0C, 0x0D} <= codes, (cap, sorted(codes))
        auth = _tshark(cap, "btsmp.opcode == 0x01", "btsmp.sc_flag")
        assert auth and auth[0] in ("1", "True"), (cap, auth)
        # Insufficient Authentication refusals before the bond, then notifications after.
        errors = _tshark(cap, "btatt.opcode == 0x01", "btatt.error_code")
        assert any(int(e, 0) == 0x05 for e in errors), (cap, errors)
        assert _tshark(cap, "btatt.opcode == 0x1b", "btatt.value"), cap


# 6. services that come and go; the air going away ------------------------------------
def _profiles(car: Car, iphone: IPhoneProc) -> list[str] | None:
    row = phone_row(car, iphone.phone_id())
    return list(row["profiles"]) if row and row["connected"] else None


def test_ancs_withdrawn_then_offered_again_follows_service_changed(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car")
    # "Share System Notifications" off after 6 s, on again after 12 s, as a user would.
    iphone.extra = ["--ancs-off-after", "6", "--ancs-on-after", "12"]
    iphone.start()
    _bonded(car, iphone)
    _notifications(car, 1)
    poll(lambda: _profiles(car, iphone) == ["ams"], timeout=15, what="ANCS gone")
    assert car.get("/api/notifications") == []  # its notifications went with it
    poll(lambda: _profiles(car, iphone) == ["ams", "ancs"], timeout=15, what="ANCS back")
    _notifications(car, 1)  # re-read once ANCS is back
    assert len(iphone.events("pairing-code")) == 1  # no new bond for any of it


def test_a_radio_restart_ends_the_link_and_the_bond_brings_it_back(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car, first = _up(tmp_path, radio, iphone)
    radio.kill()
    poll(lambda: not (phone_row(car, first["id"]) or {}).get("connected"), timeout=10,
         what="the car to see the link gone")  # fmt: skip
    assert phone_row(car, first["id"]) is not None  # the bond stays
    radio.start()
    again = _bonded(car, iphone, timeout=60)
    assert again["id"] == first["id"]
    assert len(iphone.events("pairing-code")) == 1
    _notifications(car, 1)
    assert car.get("/api/media")["source"] == "ams"


def test_an_iphone_killed_mid_transfer_comes_back_bonded(
    tmp_path: Path, radio: Radio, iphone: IPhoneProc
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car")
    iphone.start()
    first = _bonded(car, iphone)
    iphone.wait_event("notification-posted")
    assert iphone.proc is not None
    iphone.proc.kill()  # walks away with no goodbye, whatever the car was reading
    iphone.proc.wait(5)
    poll(lambda: not (phone_row(car, first["id"]) or {}).get("connected"), timeout=15,
         what="the car to end the link")  # fmt: skip
    assert car.get("/api/notifications") == []  # nothing left that could not be acted on
    iphone.start()
    assert _bonded(car, iphone, timeout=40)["id"] == first["id"]
    assert len(iphone.events("pairing-code")) == 1
    _notifications(car, 1)
    assert car.proc is not None and car.proc.poll() is None
    assert "Traceback" not in car.log()
