"""End to end: a bad vCard file never empties the car (the real car and phone processes)."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import PHONE, Car, Phone, poll, stop


def card(n: int) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {n}\r\nTEL:+1555{n:07d}\r\nEND:VCARD\r\n"


def book(n: int) -> str:
    return "".join(card(i) for i in range(n))


@pytest.fixture
def hundred(paired: tuple[Car, Phone, str], tmp_path: Path) -> tuple[Car, Phone, str, Path]:
    """A paired car holding the phone's 100 contacts; the fourth item is a file to edit."""
    car, phone, pid = paired
    vcf = tmp_path / "book.vcf"
    vcf.write_text(book(100))
    r = phone.sync(car, vcf)
    assert r.code == 0, r
    assert car.contacts(pid)["total"] == 100
    return car, phone, pid, vcf


def test_a_file_with_no_readable_card_is_exit_2_and_the_car_keeps_100(
    hundred: tuple[Car, Phone, str, Path],
) -> None:
    car, phone, pid, vcf = hundred
    for text in (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nTHIS LINE HAS NO COLON\r\nEND:VCARD\r\n" * 100,
        "BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n",
    ):
        vcf.write_text(text)
        for extra in ((), ("--allow-deletes",)):
            r = phone.sync(car, vcf, *extra)
            assert r.code == 2, r
            assert "no card in" in r.err and "nothing was synced" in r.err
            assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
            assert car.contacts(pid)["total"] == 100


def test_a_file_cut_short_is_exit_2_and_the_car_keeps_100(
    hundred: tuple[Car, Phone, str, Path],
) -> None:
    car, phone, pid, vcf = hundred
    for text in (book(100)[: len(book(100)) // 3], "BEGIN:VCARD\r\nVERSION:3.0\r\n"):
        vcf.write_text(text)
        r = phone.sync(car, vcf)
        assert r.code == 2, r
        assert "ends inside a card" in r.err and "Traceback" not in r.err
        assert car.contacts(pid)["total"] == 100


def test_losing_70_of_100_is_exit_7_unless_deletes_are_allowed(
    hundred: tuple[Car, Phone, str, Path],
) -> None:
    car, phone, pid, vcf = hundred
    vcf.write_text(book(30))
    r = phone.sync(car, vcf)
    assert r.code == 7, r
    assert "would delete 70 of the 100 contacts" in r.err and "--allow-deletes" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert r.json == {"ok": False, "error": r.json["error"], "exit_code": 7}
    assert car.contacts(pid)["total"] == 100

    r = phone.sync(car, vcf, "--allow-deletes")
    assert r.code == 0, r
    assert r.json["deleted"] == 70
    assert car.contacts(pid)["total"] == 30
    # A small loss passes without the flag: 30 -> 10 deletes 20.
    vcf.write_text(book(10))
    assert phone.sync(car, vcf).code == 0
    assert car.contacts(pid)["total"] == 10


def test_an_empty_file_empties_the_car_only_with_allow_deletes(
    hundred: tuple[Car, Phone, str, Path],
) -> None:
    car, phone, pid, vcf = hundred
    vcf.write_text("")
    r = phone.sync(car, vcf)
    assert r.code == 2, r
    assert "is empty" in r.err
    assert car.contacts(pid)["total"] == 100
    r = phone.sync(car, vcf, "--allow-deletes")
    assert r.code == 0, r
    assert car.contacts(pid)["total"] == 0


def _events(proc: subprocess.Popen[str]) -> queue.Queue[dict[str, Any]]:
    """Read ``run --json``'s events on a thread, so a test can wait for one with a timeout."""
    q: queue.Queue[dict[str, Any]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    return q


def _wait(q: queue.Queue[dict[str, Any]], event: str, timeout: float = 20) -> dict[str, Any]:
    while True:
        got = q.get(timeout=timeout)
        if got["event"] == event:
            return got


def test_run_refuses_a_bad_version_then_syncs_the_next_good_one(
    hundred: tuple[Car, Phone, str, Path], tmp_path: Path
) -> None:
    car, phone, pid, vcf = hundred
    log = tmp_path / "run.log"
    with log.open("w") as err:
        proc = phone.popen(
            "run", car.endpoint, "--contacts", str(vcf), "--json",
            stdout=subprocess.PIPE, stderr=err,
        )  # fmt: skip
    try:
        events = _events(proc)
        _wait(events, "synced")
        vcf.write_text(book(30))  # would delete 70 of 100
        refused = _wait(events, "refused")
        assert refused["exit_code"] == 7 and "would delete 70 of the 100" in refused["error"]
        assert car.contacts(pid)["total"] == 100
        vcf.write_text(book(100)[:2000])  # cut short: refused as input, nothing sent
        poll(lambda: "ends inside a card" in log.read_text(), what="the cut file refused")
        assert car.contacts(pid)["total"] == 100
        vcf.write_text(book(90))  # the next good version
        synced = _wait(events, "synced")
        assert synced["deleted"] == 10
        assert car.contacts(pid)["total"] == 90
        assert proc.poll() is None  # still running
    finally:
        stop(proc)
    text = log.read_text()
    assert "Traceback" not in text
    assert "the car keeps its current contacts" in text


def test_help_documents_exit_7_and_allow_deletes() -> None:
    def help_of(*cmd: str) -> str:
        return subprocess.run(
            [PHONE, *cmd, "--help"], capture_output=True, text=True, timeout=30, check=True
        ).stdout

    assert "7  refused: the sync would delete" in help_of()
    for cmd in ("sync", "run"):
        assert "--allow-deletes" in help_of(cmd), cmd
