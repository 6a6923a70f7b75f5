"""End to end: ``phone-bridge sync|run CAR --carddav URL`` against a real Radicale and a real car.

The user checks the car's ``GET /api/phones/{id}/contacts`` and the exit codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import Car, Phone, Result, poll, spawn, stop
from tests.phone_bridge.carddav_radicale import Radicale, card, self_signed_cert, serving

ENV = {**os.environ, "CARHUB_CARDDAV_PASSWORD": "secret"}


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[Radicale]:
    cards = {
        f"c{i:02d}.vcf": card(f"uid-{i}", f"Person {i:02d}", f"+49300{i:05d}") for i in range(30)
    }
    with serving(tmp_path / "radicale", cards) as server:
        yield server


def dav_sync(phone: Phone, car: Car, url: str, *extra: str, env: dict[str, str] = ENV) -> Result:
    """One ``phone-bridge sync`` with the password in the environment."""
    proc = spawn(
        phone.args("sync", car.endpoint, "--carddav", url, "--carddav-user", "alice",
                   "--json", *extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    return Result(proc.returncode, out, err)


def fns(car: Car, pid: str) -> list[str]:
    return sorted(c["name"] for c in car.all_contacts(pid))


def test_sync_from_carddav_first_then_changed_deleted_and_added(
    paired: tuple[Car, Phone, str], radicale: Radicale
) -> None:
    car, phone, pid = paired
    r = dav_sync(phone, car, radicale.base + "/")
    assert r.code == 0, r
    assert r.json["added"] == 30
    assert fns(car, pid) == [f"Person {i:02d}" for i in range(30)]
    radicale.write("c05.vcf", card("uid-5", "Person 05 renamed"))
    radicale.delete("c07.vcf")
    radicale.write("new.vcf", card("uid-new", "Newcomer"))
    r = dav_sync(phone, car, radicale.base + "/")
    assert r.code == 0, r
    assert (r.json["added"], r.json["changed"], r.json["deleted"]) == (1, 1, 1)
    names = fns(car, pid)
    assert "Person 05 renamed" in names and "Newcomer" in names
    assert "Person 07" not in names and "Person 05" not in names and len(names) == 30


def test_wrong_credentials_are_one_line_and_exit_8(
    paired: tuple[Car, Phone, str], radicale: Radicale
) -> None:
    car, phone, pid = paired
    r = dav_sync(phone, car, radicale.book_url(), env={**ENV, "CARHUB_CARDDAV_PASSWORD": "no"})
    assert r.code == 8, r
    assert "refused the credentials of alice" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert json.loads(r.out)["exit_code"] == 8
    assert car.contacts(pid)["total"] == 0


def test_a_password_only_on_the_command_line_or_a_loose_file_is_refused(
    paired: tuple[Car, Phone, str], radicale: Radicale, tmp_path: Path
) -> None:
    car, phone, _ = paired
    env = {k: v for k, v in ENV.items() if k != "CARHUB_CARDDAV_PASSWORD"}
    r = dav_sync(phone, car, radicale.book_url(), env=env)
    assert r.code == 2 and "CARHUB_CARDDAV_PASSWORD" in r.err, r
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    pw.chmod(0o644)
    r = dav_sync(phone, car, radicale.book_url(), "--carddav-password-file", str(pw), env=env)
    assert r.code == 2 and "must be 0600" in r.err, r
    pw.chmod(0o600)
    r = dav_sync(phone, car, radicale.book_url(), "--carddav-password-file", str(pw), env=env)
    assert r.code == 0, r
    url = radicale.book_url().replace("http://", "http://alice:secret@")
    r = dav_sync(phone, car, url)
    assert r.code == 2 and "never put a password in the URL" in r.err, r
    r = phone.run("sync", car.endpoint, "--json")
    assert r.code == 2 and "--contacts FILE or --carddav URL" in r.err, r


def test_a_server_that_goes_away_is_exit_1_and_the_car_keeps_its_contacts(
    paired: tuple[Car, Phone, str], radicale: Radicale
) -> None:
    car, phone, pid = paired
    assert dav_sync(phone, car, radicale.book_url()).code == 0
    radicale.kill()
    r = dav_sync(phone, car, radicale.book_url())
    assert r.code == 1, r
    assert "cannot reach the CardDAV server" in r.err and len(r.err.strip().splitlines()) == 1
    assert car.contacts(pid)["total"] == 30


def test_an_emptied_book_is_refused_and_the_car_keeps_its_contacts(
    paired: tuple[Car, Phone, str], radicale: Radicale
) -> None:
    car, phone, pid = paired
    assert dav_sync(phone, car, radicale.book_url()).code == 0
    for i in range(25):
        radicale.delete(f"c{i:02d}.vcf")
    r = dav_sync(phone, car, radicale.book_url())
    assert r.code == 7, r  # 25 of 30 deleted: the mass-delete guard
    assert car.contacts(pid)["total"] == 30
    for i in range(25, 30):
        radicale.delete(f"c{i:02d}.vcf")
    r = dav_sync(phone, car, radicale.book_url())
    assert r.code == 2 and "is empty" in r.err, r
    assert car.contacts(pid)["total"] == 30


def test_tls_with_a_self_signed_certificate_via_carddav_ca(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, pid = paired
    cert, key = self_signed_cert(tmp_path)
    with serving(tmp_path / "tls", {"a.vcf": card("a", "Over TLS")}, tls=(cert, key)) as server:
        r = dav_sync(phone, car, server.book_url())
        assert r.code == 1 and "TLS certificate not trusted" in r.err, r
        r = dav_sync(phone, car, server.book_url(), "--carddav-ca", str(cert))
        assert r.code == 0, r
        assert fns(car, pid) == ["Over TLS"]


def test_run_picks_up_a_change_within_the_interval(
    paired: tuple[Car, Phone, str], radicale: Radicale
) -> None:
    car, phone, pid = paired
    log = (phone.state_dir.parent / "run.log").open("w")
    proc = phone.popen(
        "run", car.endpoint, "--carddav", radicale.book_url(), "--carddav-user", "alice",
        "--carddav-interval", "0.5", "--json",
        stdout=subprocess.DEVNULL, stderr=log, env=ENV,
    )  # fmt: skip
    log.close()
    try:
        poll(lambda: car.contacts(pid)["total"] == 30, timeout=30, what="the first sync")
        radicale.write("c03.vcf", card("uid-3", "Person 03 live"))
        start = time.monotonic()
        poll(lambda: "Person 03 live" in fns(car, pid), timeout=10, what="the change")
        assert time.monotonic() - start < 5
        radicale.delete("c04.vcf")
        poll(lambda: car.contacts(pid)["total"] == 29, timeout=10, what="the deletion")
        assert proc.poll() is None
    finally:
        stop(proc)
