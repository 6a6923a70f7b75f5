"""End to end over BLE only: ``carhub-radio``, cars and phones as subprocesses.

The phones run with ``--transport ble --radio ...`` so they never touch the LAN; the checks
are what a user sees: ``--json`` output, exit codes, the car's REST API, captures in tshark.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from phone_bridge.ble import BleTransport
from tests.e2e.ble_helpers import (
    BlePhone,
    Radio,
    ble_car,
    ble_connected,
    corpus_file,
    phone_row,
)
from tests.e2e.helpers import MEDIA, Car, Phone, poll, sample_vcf, stop


@pytest.fixture
def phone(tmp_path: Path, radio: Radio) -> BlePhone:
    return BlePhone(Phone(tmp_path / "phone"), radio)


@pytest.fixture
def car(tmp_path: Path, radio: Radio) -> Car:
    return ble_car(tmp_path, radio, "BLE Car")


def _good(n: int) -> str:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:u{n}", f"FN:Good {n}", f"TEL:+1555000{n:04d}"]
    return "\r\n".join([*lines, "END:VCARD", ""])


# 1. discovery ------------------------------------------------------------------------
def test_discover_over_ble_then_merged_with_mdns(
    tmp_path: Path, radio: Radio, phone: BlePhone
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car")
    cars = phone.discover(*phone.ble)
    assert len(cars) == 1, cars
    assert cars[0]["name"] == "BLE Car" and cars[0]["pairing_open"] is True
    assert cars[0]["via"] == ["ble"] and cars[0]["ble_address"] == car.ready["ble"]
    assert car.id.startswith(cars[0]["id"])
    car.stop()

    both = ble_car(tmp_path, radio, "Dual Car", mdns=True)
    found = phone.discover(
        "--transport", "auto", "--radio", radio.spec, "--mdns-interface", "127.0.0.1"
    )
    ours = [c for c in found if both.id.startswith(c["id"][:8])]
    assert len(ours) == 1, found
    assert sorted(ours[0]["via"]) == ["ble", "mdns"], ours
    assert ours[0]["name"] == "Dual Car" and ours[0]["ble_address"] == both.ready["ble"]


# 2. pairing by code, then run --------------------------------------------------------
def test_pair_over_ble_confirming_on_both_sides_then_run(
    tmp_path: Path, radio: Radio, phone: BlePhone
) -> None:
    car = ble_car(tmp_path, radio, "BLE Car", auto_confirm=False)
    proc = phone.popen(
        "pair", "BLE Car", "--json",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    req = poll(lambda: car.get("/api/pairing/requests"), timeout=15, what="a request")[0]
    assert proc.stderr is not None and proc.stdin is not None
    shown = ""
    while "[y/N]" not in shown:
        ch = proc.stderr.read(1)
        assert ch, f"phone exited before asking: {shown!r}"
        shown += ch
    code = re.search(r"Pairing code: (\d{3}) (\d{3})", shown)
    assert code is not None and code.group(1) + code.group(2) == req["code"], (shown, req)
    assert car.post(f"/api/pairing/requests/{req['id']}/accept")["ok"] is True
    proc.stdin.write("y\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, (out, err)
    status = phone.phone.status()
    pid = status["phone_id"]
    assert [p["id"] for p in car.phones()] == [pid]
    assert status["cars"][0]["fingerprint"] == car.ready["fingerprint"]

    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    run = phone.popen("run", "BLE Car", "--contacts", str(vcf), "--json",
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    poll(lambda: ble_connected(car, pid), timeout=15, what="connected over BLE")
    poll(lambda: car.contacts(pid)["total"] == 1, timeout=10, what="the first sync")
    stop(run)
    poll(lambda: not phone_row(car, pid)["connected"], what="disconnected after stop")  # type: ignore[index]


# 3. sync the quirk corpus ------------------------------------------------------------
def test_sync_quirk_corpus_over_ble(
    car: Car, phone: BlePhone, vcard_corpus: Path, tmp_path: Path
) -> None:
    pid = phone.pair(car)
    r = phone.sync(car, corpus_file(vcard_corpus, tmp_path / "all.vcf"))
    assert r.code == 0, r
    assert r.json["transport"] == "ble" and r.json["added"] == 13, r.json
    items = car.all_contacts(pid)
    names = {c["name"] for c in items}
    for expected in ("Иван Иванов", "Jürgen Müller", "John Appleseed", "Mary O'Neil"):
        assert expected in names, (expected, sorted(names))
    assert len({c["uid"] for c in items}) == 13 == car.contacts(pid)["total"]
    again = phone.sync(car, tmp_path / "all.vcf")
    assert again.code == 0 and again.json["unchanged"] == 13 and again.json["added"] == 0


# 4. media command round trip ---------------------------------------------------------
def test_media_next_round_trip_over_ble(car: Car, phone: BlePhone, tmp_path: Path) -> None:
    pid = phone.pair(car)
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    phone.popen("run", "BLE Car", "--contacts", str(vcf), "--media", str(MEDIA), "--json",
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    media = poll(
        lambda: (m := car.get("/api/media"))["title"] and m["state"] == "playing" and m,
        timeout=20, what="the first track playing",
    )  # fmt: skip
    assert media["phone_id"] == pid and ble_connected(car, pid)
    start = time.monotonic()
    car.post("/api/media/command", json={"action": "next"})
    nxt = poll(
        lambda: (m := car.get("/api/media"))["track_id"] != media["track_id"] and m,
        timeout=2, what="the next track within 2 s",
    )  # fmt: skip
    assert time.monotonic() - start < 2
    assert nxt["title"] and nxt["title"] != media["title"]


# 5. faults ---------------------------------------------------------------------------
def _interrupt(car: Car, pid: str, proc: subprocess.Popen[str], total: int) -> int:
    """Wait until the car holds some but not all contacts; return that count."""

    def partial() -> int:
        row = phone_row(car, pid)
        n = int(row["contacts"]) if row else 0
        assert proc.poll() is None, "the sync finished before it could be interrupted"
        return n if 0 < n < total else 0

    return int(poll(partial, timeout=60, what="a partial sync"))


def _assert_exactly(car: Car, pid: str, total: int) -> None:
    items = car.all_contacts(pid)
    assert car.contacts(pid)["total"] == total == len(items)
    assert len({c["uid"] for c in items}) == total


def test_kill_the_phone_mid_sync_then_resume(car: Car, phone: BlePhone, tmp_path: Path) -> None:
    pid = phone.pair(car)
    vcf = sample_vcf(tmp_path / "big.vcf", 20_000)
    proc = phone.popen("sync", "BLE Car", "--contacts", str(vcf), "--json",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _interrupt(car, pid, proc, 20_000)
    proc.kill()
    proc.wait(5)
    r = phone.sync(car, vcf)
    assert r.code == 0, r
    assert r.json["added"] < 20_000, r.json  # it resumed: the held part was not resent
    _assert_exactly(car, pid, 20_000)


def test_restart_the_car_mid_sync_then_resume(car: Car, phone: BlePhone, tmp_path: Path) -> None:
    pid = phone.pair(car)
    vcf = sample_vcf(tmp_path / "big.vcf", 20_000)
    proc = phone.popen("sync", "BLE Car", "--contacts", str(vcf), "--json",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _interrupt(car, pid, proc, 20_000)
    car.kill()
    assert proc.wait(30) != 0  # the phone notices the car is gone
    car.start()  # same state dir, so the same keys and store
    r = phone.sync(car, vcf)
    assert r.code == 0, r
    _assert_exactly(car, pid, 20_000)


def test_radio_drop_then_run_reconnects_by_itself(
    car: Car, phone: BlePhone, radio: Radio, tmp_path: Path
) -> None:
    pid = phone.pair(car)
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    run = phone.popen("run", "BLE Car", "--contacts", str(vcf), "--json",
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    poll(lambda: ble_connected(car, pid), timeout=15, what="connected over BLE")
    radio.kill()
    poll(lambda: not phone_row(car, pid)["connected"], timeout=15, what="the car to notice")  # type: ignore[index]
    radio.start()
    poll(lambda: ble_connected(car, pid), timeout=40, what="reconnected after the radio restart")
    assert run.poll() is None, "the phone's run gave up"
    assert car.proc is not None and car.proc.poll() is None, car.log()
    vcf.write_text(_good(1) + _good(2))
    poll(lambda: car.contacts(pid)["total"] == 2, timeout=20, what="a sync after reconnecting")


# 6. two cars, two phones, one air ----------------------------------------------------
def test_two_cars_two_phones_each_sync_their_own(tmp_path: Path, radio: Radio) -> None:
    cars = [ble_car(tmp_path, radio, f"Car {n}") for n in "AB"]
    phones = [BlePhone(Phone(tmp_path / f"phone{n}"), radio) for n in "AB"]
    pids = [p.pair(c, "--name", f"Phone {c.name[-1]}") for p, c in zip(phones, cars, strict=True)]
    assert pids[0] != pids[1]
    for n, (car, phone) in enumerate(zip(cars, phones, strict=True)):
        vcf = tmp_path / f"book{n}.vcf"
        vcf.write_text("".join(_good(100 * (n + 1) + i) for i in range(n + 2)))
        r = phone.sync(car, vcf)
        assert r.code == 0 and r.json["car"] == car.id, r
    for n, (car, pid) in enumerate(zip(cars, pids, strict=True)):
        assert [p["id"] for p in car.phones()] == [pid]
        names = sorted(c["name"] for c in car.all_contacts(pid))
        assert names == sorted(f"Good {100 * (n + 1) + i}" for i in range(n + 2))


# 7. garbage on the channel -----------------------------------------------------------
async def _send_garbage(address: str, spec: str, payload: bytes) -> bool:
    """Send ``payload`` on a raw link; True if the car closes it within 10 s."""
    transport = await BleTransport.connect(address, radio=spec)
    try:
        await transport.send(payload)
        async with asyncio.timeout(10):
            while True:
                await transport.recv()  # the car may answer before it hangs up
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    finally:
        await transport.close()


def test_garbage_on_the_channel_is_dropped(
    car: Car, phone: BlePhone, radio: Radio, tmp_path: Path
) -> None:
    pid = phone.pair(car)
    for payload in (os.urandom(512), b"\xff\xff\xff\xff" + os.urandom(16)):
        closed = asyncio.run(_send_garbage(str(car.ready["ble"]), radio.spec, payload))
        assert closed, f"the car kept a BLE link that sent garbage: {car.log()[-2000:]}"
    poll(lambda: car.log().count("connection closed:") >= 2, what="a logged reason per link")
    assert "Traceback" not in car.log()
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    r = phone.sync(car, vcf)
    assert r.code == 0, r
    assert car.contacts(pid)["total"] == 1


# 8. captures -------------------------------------------------------------------------
def _att(capture: Path, opcode: int) -> list[str]:
    """Values of ATT PDUs with ``opcode`` in a btsnoop file, read by tshark."""
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: apt-get install tshark (CI installs it)"
    out = subprocess.run(
        [tshark, "-r", str(capture), "-Y", f"btatt.opcode == {opcode:#04x}",
         "-T", "fields", "-e", "btatt.value"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return [line for line in out.splitlines() if line]


WRITE_COMMAND, NOTIFICATION = 0x52, 0x1B


def test_captures_show_the_sync_in_tshark(tmp_path: Path, radio: Radio, phone: BlePhone) -> None:
    car_cap, phone_cap = tmp_path / "car.btsnoop", tmp_path / "phone.btsnoop"
    car = ble_car(tmp_path, radio, "BLE Car", btsnoop=car_cap)
    phone.pair(car)
    r = phone.sync(car, sample_vcf(tmp_path / "c.vcf", 500), "--btsnoop", str(phone_cap))
    assert r.code == 0, r
    car.stop()  # flush the car's capture
    sent = r.json["bytes"]
    for cap in (car_cap, phone_cap):
        writes, notes = _att(cap, WRITE_COMMAND), _att(cap, NOTIFICATION)
        assert writes and notes, (cap, len(writes), len(notes))
        payload = sum(len(v) // 2 for v in writes + notes)
        # The sync's bytes crossed the air as ATT values (pairing is in the car's file too).
        assert payload >= sent * 0.9, (cap, payload, sent)
