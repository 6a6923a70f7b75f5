"""End to end over the LAN: the two console scripts as subprocesses, checked like a user would
(exit codes, ``--json`` output, the car's REST API)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.helpers import Car, Phone, poll


def discover(phone: Phone, car: Car) -> dict[str, object] | None:
    r = phone.run("discover", "--mdns-interface", "127.0.0.1", "--timeout", "2", "--json")
    assert r.code == 0, r
    # Other cars may be on the loopback too: find ours by id.
    return next((c for c in json.loads(r.out) if c["id"] == car.id), None)


# 1. discovery ------------------------------------------------------------------------
def test_discover_lists_the_car_and_follows_the_pairing_flag(car: Car, phone: Phone) -> None:
    start = time.monotonic()
    seen = discover(phone, car)
    assert time.monotonic() - start < 6  # 2 s of browsing plus interpreter start-up
    assert seen is not None, "car not discovered"
    assert seen["name"] == "E2E Car"
    assert seen["pairing_open"] is True
    assert seen["address"] == car.endpoint

    assert car.post("/api/pairing/close")["pairing_open"] is False
    again = poll(
        lambda: (s := discover(phone, car)) and s["pairing_open"] is False and s,
        timeout=15, what="TXT pair flag to flip",
    )  # fmt: skip
    assert again["name"] == "E2E Car"


# 2. pairing --------------------------------------------------------------------------
def test_pair_confirming_the_code_on_both_sides(
    make_car: Callable[..., Car], phone: Phone
) -> None:
    car = make_car(auto_confirm=False)
    proc = phone.popen(
        "pair", car.endpoint, "--json",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    requests = poll(lambda: car.get("/api/pairing/requests"), what="a pairing request")
    assert len(requests) == 1
    req = requests[0]
    # The phone prints "Pairing code: 123 456" on stderr and waits for y/N.
    assert proc.stderr is not None and proc.stdin is not None
    shown = ""
    while "[y/N]" not in shown:
        ch = proc.stderr.read(1)
        assert ch, f"phone exited before asking: {shown!r}"
        shown += ch
    code = re.search(r"Pairing code: (\d{3}) (\d{3})", shown)
    assert code is not None, shown
    assert code.group(1) + code.group(2) == req["code"]
    assert car.post(f"/api/pairing/requests/{req['id']}/accept")["ok"] is True
    proc.stdin.write("y\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, (out, err)
    result = json.loads(out)
    assert result["ok"] is True and result["car"]["id"] == car.id

    status = phone.status()
    phones = car.phones()
    assert [p["id"] for p in phones] == [status["phone_id"]]
    assert phones[0]["fingerprint"] == status["fingerprint"]
    assert status["cars"][0]["id"] == car.id
    assert status["cars"][0]["fingerprint"] == car.ready["fingerprint"]


def _pair_and_decide(car: Car, phone: Phone, accept: bool) -> tuple[int, str]:
    proc = phone.popen(
        "pair", car.endpoint, "--auto-confirm",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    req = poll(lambda: car.get("/api/pairing/requests"), what="a pairing request")[0]
    verb = "accept" if accept else "reject"
    car.post(f"/api/pairing/requests/{req['id']}/{verb}")
    out, err = proc.communicate(timeout=20)
    return proc.returncode, err


def test_pair_rejected_on_the_car_exits_4(make_car: Callable[..., Car], phone: Phone) -> None:
    car = make_car(auto_confirm=False)
    code, err = _pair_and_decide(car, phone, accept=False)
    assert code == 4, err
    assert "Traceback" not in err
    assert car.phones() == []
    assert phone.status()["cars"] == []


def test_pair_wrong_confirm_code_exits_4(make_car: Callable[..., Car], phone: Phone) -> None:
    car = make_car(auto_confirm=False)
    proc = phone.popen(
        "pair", car.endpoint, "--confirm-code", "000 000",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    # The phone rejects by itself (its check fails), so the car's request ends without
    # anyone touching the dashboard; "000 000" matching is a one-in-a-million flake.
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 4, (out, err)
    assert "mismatch" in err
    assert car.phones() == []
    assert phone.status()["cars"] == []


def test_pair_with_window_closed_exits_4(make_car: Callable[..., Car], phone: Phone) -> None:
    car = make_car(pairing="closed")
    r = phone.run("pair", car.endpoint, "--auto-confirm")
    assert r.code == 4, r
    assert "pairing window is closed" in r.err
    assert len(r.err.strip().splitlines()) <= 3 and "Traceback" not in r.err
    assert car.phones() == []
