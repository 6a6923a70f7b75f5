"""End to end over the LAN: the two console scripts as subprocesses, checked like a user would
(exit codes, ``--json`` output, the car's REST API)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.helpers import CARHUB, MEDIA, Car, Phone, poll, sample_vcf, stop


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
def test_pair_confirming_the_code_on_both_sides(make_car: Callable[..., Car], phone: Phone) -> None:
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
    _, err = proc.communicate(timeout=20)
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


# 3. contact sync ---------------------------------------------------------------------
def _corpus_file(corpus: Path, dest: Path) -> Path:
    """Every quirk file in one export; UTF-16 is a whole-file encoding, so it is synced
    alone elsewhere, and a UTF-8 BOM is only meaningful at the start of a file."""
    parts = []
    for f in sorted(corpus.glob("*.vcf")):
        if "utf16" in f.name:
            continue
        data = f.read_bytes()
        parts.append(data.removeprefix(b"\xef\xbb\xbf"))
    dest.write_bytes(b"".join(parts))
    return dest


def _by_name(items: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(c["name"]): c for c in items}


def _numbers(contact: dict[str, object]) -> dict[str, str]:
    return {p["number"]: p["label"] for p in contact["phones"]}  # type: ignore[attr-defined,index]


def test_sync_quirk_corpus(
    paired: tuple[Car, Phone, str], vcard_corpus: Path, tmp_path: Path
) -> None:
    car, phone, pid = paired
    vcf = _corpus_file(vcard_corpus, tmp_path / "all.vcf")
    r = phone.sync(car, vcf)
    assert r.code == 0, r
    assert r.json["skipped"] == [] and r.json["added"] == 13
    items = car.all_contacts(pid)
    assert len(items) == 13 == car.contacts(pid)["total"]
    names = _by_name(items)
    for expected in (
        "Иван Иванов",
        "Екатерина Иванова",
        "Jürgen Müller",
        "John Appleseed",
        "Mary O'Neil",
        "Dr. Robert Smith, Jr. III",
        "Jane Doe",
        "Alice",
    ):
        assert expected in names, (expected, sorted(names))
    assert _numbers(names["Иван Иванов"]) == {"+7 900 000-00-00": "", "+7 495 000-00-00": ""}
    assert _numbers(names["John Appleseed"])["+1 555 010 0002"] == "Car phone"
    assert _numbers(names["John Appleseed"])["+1 (555) 010-0001"] == "Mobile"
    assert "+49301234567" in _numbers(names["Jürgen Müller"])
    assert any(n.startswith("Zoë Ærøskøbing") for n in names)
    assert len({c["uid"] for c in items}) == 13

    # Search works on the synced text.
    found = car.contacts(pid, q="Jürgen")
    assert [c["name"] for c in found["items"]] == ["Jürgen Müller"]
    assert [p["contacts"] for p in car.phones()] == [13]


def test_sync_single_files_in_odd_encodings(
    paired: tuple[Car, Phone, str], vcard_corpus: Path
) -> None:
    car, phone, pid = paired
    for name, person, number in [
        ("utf16le_bom.vcf", "Mary O'Neil", "+44 7700 900123"),
        ("cp1251_21.vcf", "Екатерина Иванова", "+79000000001"),
        ("latin1_21.vcf", "Jürgen Müller", "+49301234567"),
    ]:
        r = phone.sync(car, vcard_corpus / name)
        assert r.code == 0, (name, r)
        items = car.all_contacts(pid)  # each file replaces the mirror: one person each
        assert [c["name"] for c in items] == [person], name
        assert number in _numbers(items[0])


def _good(n: int) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Good {n}\r\nTEL:+1555000{n:04d}\r\nEND:VCARD\r\n"


def test_sync_with_a_malformed_card_exits_6_and_sends_the_rest(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, pid = paired
    # A bad line costs that line; a card with nothing identifying left is skipped.
    bad = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Broken\r\nTHIS LINE HAS NO COLON\r\nEND:VCARD\r\n"
    empty = "BEGIN:VCARD\r\nVERSION:3.0\r\nNOTE:who?\r\nEND:VCARD\r\n"
    vcf = tmp_path / "mixed.vcf"
    vcf.write_text(_good(1) + _good(2) + bad + empty + _good(3))
    r = phone.sync(car, vcf)
    assert r.code == 6, r
    assert r.json["skipped_lines"] == [{"line": 14, "reason": "line has no ':' separator"}]
    assert r.json["skipped"] == [{"line": 16, "reason": "card has no name, phone or email"}]
    names = sorted(c["name"] for c in car.all_contacts(pid))
    assert names == ["Broken", "Good 1", "Good 2", "Good 3"]

    # Plain output lists the bad line and the skipped card for a human too.
    r = phone.run("sync", car.endpoint, "--contacts", str(vcf))
    assert r.code == 6
    assert "line 14" in r.err and "line 16" in r.err


def test_sync_not_a_vcard_exits_2_and_changes_nothing(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, pid = paired
    vcf = tmp_path / "ok.vcf"
    vcf.write_text(_good(1) + _good(2))
    assert phone.sync(car, vcf).code == 0
    junk = tmp_path / "photo.vcf"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    r = phone.sync(car, junk)
    assert r.code == 2, r
    assert "not a vCard" in r.err and "Traceback" not in r.err
    assert car.contacts(pid)["total"] == 2


def test_resync_sends_almost_nothing_and_edits_are_deltas(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, pid = paired
    vcf = tmp_path / "book.vcf"
    vcf.write_text("".join(_good(n) for n in range(300)))
    first = phone.sync(car, vcf)
    assert first.code == 0 and first.json["added"] == 300
    again = phone.sync(car, vcf)
    assert again.code == 0, again
    assert again.json["unchanged"] == 300
    assert again.json["added"] == again.json["changed"] == again.json["deleted"] == 0
    assert again.json["bytes"] < first.json["bytes"] / 10, (first.json, again.json)

    vcf.write_bytes(vcf.read_bytes().replace(b"FN:Good 7\r\n", b"FN:Good Seven\r\n"))
    edit = phone.sync(car, vcf)
    assert edit.code == 0
    assert (edit.json["changed"], edit.json["unchanged"]) == (1, 299) or (
        edit.json["added"],
        edit.json["deleted"],
        edit.json["unchanged"],
    ) == (1, 1, 299)
    assert car.contacts(pid, q="Good Seven")["total"] == 1
    assert car.contacts(pid)["total"] == 300


# 4. run with media -------------------------------------------------------------------
def test_run_with_media_obeys_the_car_and_resyncs_on_change(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    from websockets.sync.client import connect

    car, phone, pid = paired
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1) + _good(2))
    proc = phone.popen(
        "run", car.endpoint, "--contacts", str(vcf), "--media", str(MEDIA), "--json",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    media = poll(
        lambda: (m := car.get("/api/media"))["title"] and m["state"] == "playing" and m,
        timeout=15, what="the first track playing",
    )  # fmt: skip
    assert media["title"] == "Morning Drive" and media["phone_id"] == pid
    art = httpx.get(car.url + media["artwork_url"], timeout=5)
    assert art.status_code == 200 and art.headers["content-type"].startswith("image/")
    assert len(art.content) > 100
    poll(lambda: car.contacts(pid)["total"] == 2, what="the first sync")

    with connect(car.url.replace("http", "ws", 1) + "/api/events", open_timeout=5) as ws:
        # Drain the snapshot (one event of each type), then act.
        # The snapshot: one event per kind of state (contacts only change, so they have none).
        snapshot = {json.loads(ws.recv(5))["type"] for _ in range(4)}
        assert snapshot == {"status", "pairing", "phones", "media"}
        start = time.monotonic()
        car.post("/api/media/command", json={"action": "next"})
        nxt = poll(
            lambda: (m := car.get("/api/media"))["track_id"] != media["track_id"] and m,
            timeout=5, what="the next track",
        )  # fmt: skip
        # Latency targets live in bench/bench_lan.py; here only "it happens, promptly".
        assert time.monotonic() - start < 5
        assert nxt["title"] == "Night Signal"
        deadline = time.monotonic() + 5
        while True:
            event = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
            if event["type"] == "media" and event["data"]["title"] == "Night Signal":
                break

    car.post("/api/media/command", json={"action": "pause"})
    paused = poll(lambda: (m := car.get("/api/media"))["state"] == "paused" and m, what="paused")
    time.sleep(0.6)  # a paused position must not move; this is the interval we measure
    assert car.get("/api/media")["position_ms"] == paused["position_ms"]

    vcf.write_text(_good(1) + _good(2) + _good(3))
    poll(lambda: car.contacts(pid)["total"] == 3, timeout=15, what="re-sync on change")

    assert proc.stdout is not None
    stop(proc)
    events = [json.loads(line)["event"] for line in proc.stdout.read().splitlines() if line]
    assert "connected" in events and events.count("synced") >= 2, events


# 5. interrupted syncs ----------------------------------------------------------------
def _kill_mid_sync(
    car: Car, pid: str, proc: subprocess.Popen[str], victim: Callable[[], None]
) -> int:
    """Kill something once the car holds some but not all contacts; return that count."""

    ended: dict[str, str] = {}

    def partial() -> int:
        rows = car.phones()
        n = rows[0]["contacts"] if rows else 0
        if proc.poll() is not None:  # say why, once: poll() retries until its timeout
            ended.setdefault("err", _stderr_of(proc))
            raise AssertionError(f"the sync ended (exit {proc.returncode}) first: {ended['err']}")
        return n if 0 < n < 50_000 else 0

    held = poll(partial, timeout=60, what="a partial sync")
    victim()
    return held


def _background_sync(phone: Phone, car: Car, vcf: Path) -> subprocess.Popen[str]:
    """Start ``phone-bridge sync`` to the car's endpoint without waiting for it."""
    err = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives with proc; a pipe could block it)
    proc = phone.popen(
        "sync", car.endpoint, "--contacts", str(vcf), "--json",
        stdout=subprocess.DEVNULL, stderr=err,
    )  # fmt: skip
    proc.stderr = err  # read back by _stderr_of if it ends too early
    return proc


def _stderr_of(proc: subprocess.Popen[str]) -> str:
    """What an exited background sync wrote on stderr."""
    assert proc.stderr is not None
    proc.stderr.seek(0)
    return proc.stderr.read()[-2000:]


def _assert_exactly(car: Car, pid: str, n: int) -> None:
    """The car holds exactly ``n`` contacts for the phone: none lost, none duplicated."""
    items = car.all_contacts(pid)
    assert car.contacts(pid)["total"] == n == len(items)
    assert len({c["uid"] for c in items}) == n


def test_kill_the_phone_mid_sync_then_resume(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, pid = paired
    vcf = sample_vcf(tmp_path / "big.vcf", 50_000)
    proc = _background_sync(phone, car, vcf)
    _kill_mid_sync(car, pid, proc, proc.kill)
    proc.wait(5)
    r = phone.sync(car, vcf)
    assert r.code == 0, r
    _assert_exactly(car, pid, 50_000)


def test_restart_the_car_mid_sync_then_resume(
    make_car: Callable[..., Car], phone: Phone, tmp_path: Path
) -> None:
    car = make_car()
    phone.pair(car)
    pid = phone.status()["phone_id"]
    vcf = sample_vcf(tmp_path / "big.vcf", 50_000)
    proc = _background_sync(phone, car, vcf)
    _kill_mid_sync(car, pid, proc, car.kill)
    assert proc.wait(30) != 0  # the phone notices the car is gone
    # Same state dir, new ports: the phone finds the restarted car by its id over mDNS.
    car.start()
    r = phone.run("sync", car.id, "--mdns-interface", "127.0.0.1", "--contacts", str(vcf), "--json")
    assert r.code == 0, r
    _assert_exactly(car, pid, 50_000)


# 6. unpairing ------------------------------------------------------------------------
def test_unpair_from_the_car(paired: tuple[Car, Phone, str], tmp_path: Path) -> None:
    car, phone, pid = paired
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    assert phone.sync(car, vcf, "--media", str(MEDIA)).code == 0
    assert car.get("/api/media")["phone_id"] == pid
    assert httpx.delete(f"{car.url}/api/phones/{pid}", timeout=5).status_code == 200
    assert httpx.get(f"{car.url}/api/phones/{pid}/contacts", timeout=5).status_code == 404
    media = car.get("/api/media")
    assert media["phone_id"] is None and media["title"] is None
    r = phone.sync(car, vcf)
    assert r.code == 5, r
    # Refused as a wrong key would be (PROTOCOL.md 6.1), and the user is told what to do.
    assert "refused the session: it does not know this phone or its key" in r.err
    assert "run 'pair' again" in r.err


def _rows_for(db: Path, phone_id: str) -> dict[str, int]:
    """Rows mentioning ``phone_id`` in any column of any table of the car's SQLite store."""
    found: dict[str, int] = {}
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info('{table}')")]
            for col in cols:
                n = conn.execute(
                    f'SELECT COUNT(*) FROM "{table}" WHERE CAST("{col}" AS TEXT) = ?', (phone_id,)
                ).fetchone()[0]
                if n:
                    found[f"{table}.{col}"] = n
    return found


def test_unpair_from_the_phone_erases_the_car_copy(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, pid = paired
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1) + _good(2))
    assert phone.sync(car, vcf, "--media", str(MEDIA)).code == 0
    db = car.state_dir / "carhub.sqlite3"
    assert _rows_for(db, pid), "the test cannot see the phone's rows at all"
    r = phone.run("unpair", car.endpoint, "--json")
    assert r.code == 0, r
    assert r.json["car_erased"] is True
    assert car.phones() == []
    assert phone.status()["cars"] == []
    assert _rows_for(db, pid) == {}
    assert car.get("/api/media")["phone_id"] is None


# 7. errors ---------------------------------------------------------------------------
def test_unreachable_car_exits_3_with_one_line(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, phone, _ = paired
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    car.stop()
    r = phone.run("sync", car.endpoint, "--contacts", str(vcf))
    assert r.code == 3, r
    errors = [line for line in r.err.splitlines() if line.startswith("phone-bridge: error:")]
    assert len(errors) == 1 and "cannot reach the car" in errors[0], r.err
    assert "Traceback" not in r.err


def test_sync_to_an_unknown_endpoint_exits_without_traceback(phone: Phone, tmp_path: Path) -> None:
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    r = phone.run("sync", "127.0.0.1:1", "--contacts", str(vcf))
    # A phone not paired with 127.0.0.1:1 says so before dialling (5); dialling fails with 3.
    assert r.code in (3, 5), r
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r.err


# 8. security -------------------------------------------------------------------------
def test_key_files_are_private_and_the_dashboard_is_loopback(
    paired: tuple[Car, Phone, str], make_car: Callable[..., Car]
) -> None:
    car, phone, _ = paired
    for key in [*car.state_dir.glob("*.key"), *phone.state_dir.glob("*.key")]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert list(car.state_dir.glob("*.key")) and list(phone.state_dir.glob("*.key"))
    # Without --ui, the dashboard binds loopback; ask the CLI for its default.
    r = subprocess.run([CARHUB, "run", "--help"], capture_output=True, text=True, timeout=30)
    assert "127.0.0.1:8080" in r.stdout
    assert car.url.startswith("http://127.0.0.1:")


def test_a_never_paired_phone_gets_exit_5_and_stores_nothing(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    car, _, pid = paired
    stranger = Phone(tmp_path / "stranger")
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    r = stranger.sync(car, vcf)
    assert r.code == 5, r
    assert [p["id"] for p in car.phones()] == [pid]
    assert car.phones()[0]["contacts"] == 0


# 9. garbage on the session endpoint --------------------------------------------------
def test_garbage_on_the_session_endpoint_is_dropped(
    paired: tuple[Car, Phone, str], tmp_path: Path
) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    car, phone, pid = paired
    for payload in (os.urandom(512), b"\xff\xff\xff\xff" + os.urandom(16)):
        with connect(f"ws://{car.endpoint}", open_timeout=5) as ws:
            ws.send(payload)
            closed = False
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    ws.recv(0.5)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    closed = True
                    break
            assert closed, "the car kept a connection that sent garbage"
    poll(
        lambda: car.log().count("connection closed:") >= 2,
        what="a logged reason for each dropped connection",
    )
    assert "Traceback" not in car.log()
    vcf = tmp_path / "book.vcf"
    vcf.write_text(_good(1))
    assert phone.sync(car, vcf).code == 0
    assert car.contacts(pid)["total"] == 1
