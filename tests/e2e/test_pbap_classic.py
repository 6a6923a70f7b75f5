# ruff: noqa: F811  (the page fixture is imported, then requested)
"""PBAP over Bluetooth Classic, every part a real process: a phone with no CarHub app.

``carhub-radio``, ``carhub run --hci ...`` and ``phone-bridge emulate android`` (a phone that
offers only PBAP). The checks are what a user sees: the car's REST API and live events, the
phone's ``--json`` lines (which GETs the car sent), the car's log, and the captures as
tshark decodes them.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from protocol.vcard import import_vcards
from tests.e2e.ble_helpers import Radio, ble_car
from tests.e2e.helpers import ROOT, Car, poll, sample_vcf
from tests.e2e.pbap_helpers import AndroidProc, classic_car, pulls, wait_pulled
from tests.e2e.test_dashboard_apple import page, shot  # noqa: F401

CORPUS = ROOT / "tests" / "data" / "vcard"


class Events:
    """Records the car's ``/api/events`` in a thread, from before the phone connects."""

    def __init__(self, car: Car) -> None:
        self.seen: list[dict[str, Any]] = []
        self._stack = ExitStack()
        url = car.url.replace("http", "ws", 1) + "/api/events"
        self._ws = self._stack.enter_context(connect(url, open_timeout=5))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                self.seen.append(json.loads(self._ws.recv()))
        except Exception:  # closed by close()
            return

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in list(self.seen) if e["type"] == kind]

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def events() -> Iterator[list[Events]]:
    made: list[Events] = []
    yield made
    for e in made:
        e.close()


def _android(tmp_path: Path, radio: Radio, contacts: Path, **kw: Any) -> AndroidProc:
    return AndroidProc(tmp_path / "android", radio, contacts, **kw)


# 1. a first pull, found over LE, paired by SSP -------------------------------------------
def test_the_car_pulls_2000_contacts_from_a_phone_with_no_app(
    tmp_path: Path, radio: Radio, events: list[Events]
) -> None:
    car = ble_car(tmp_path, radio, "PBAP Car", auto_confirm=False)
    assert car.ready["classic"] == classic_car(car)
    live = Events(car)
    events.append(live)
    phone = _android(tmp_path, radio, sample_vcf(tmp_path / "c.vcf", 2000)).start()
    pid = phone.phone_id
    # SSP numeric comparison: the same 6 digits on both screens, accepted on the dashboard.
    shown = phone.wait_event("pairing-code")["code"]
    request = poll(lambda: car.get("/api/pairing/requests"), what="a pairing request")[0]
    assert request["method"] == "ssp" and request["code"] == shown
    car.post(f"/api/pairing/requests/{request['id']}/accept")
    entry = wait_pulled(car, pid, 2000)
    bonds = car.state_dir / "bonds.json"
    assert stat.S_IMODE(bonds.stat().st_mode) == 0o600
    assert phone.address.upper() in bonds.read_text().upper()
    # Found over LE (its GATT info names the car's Classic address), then SSP both ways.
    assert phone.wait_event("connected")["car"] == classic_car(car)
    assert re.fullmatch(r"[0-9a-f]{12}", pid)
    assert entry["transport"] == "classic" and entry["connected"] is True
    assert entry["profiles"] == ["pbap"] and entry["owner"] == "Emulated Owner"
    assert "unencrypted" in car.log()  # the virtual controller cannot encrypt: said so
    # The owner card is the owner, not a contact; names are searchable as for any phone.
    assert car.contacts(pid, q="Emulated Owner")["total"] == 0
    first = car.contacts(pid, limit=1)["items"][0]
    assert car.contacts(pid, q=first["name"])["total"] >= 1
    # Pages without photos first; then the photo probe (vCard selecting: the cards with a
    # PHOTO), which finds none in this book, so no photo page; calls last.
    book = pulls(phone)
    assert book[0]["cards"] == 0  # the probe: PhonebookSize and the counters
    assert sum(p["cards"] for p in book) == 2001  # one text pass, owner included
    assert [p["cards"] for p in book].count(0) == 2  # the two probes
    assert [p["path"] for p in phone.events("pulled")][-1] == "telecom/cch.vcf"
    calls = car.get(f"/api/phones/{pid}/calls")
    assert len(calls) == 20
    assert {c["type"] for c in calls} == {"incoming", "outgoing", "missed"}
    assert all(set(c) == {"name", "number", "type", "date"} for c in calls)
    # The dashboard's progress: monotonic, out of the announced total, ending "done".
    sync = poll(lambda: [s for s in live.of("sync") if s["phone_id"] == pid and
                         s["stage"] == "done"] and live.of("sync"), what="sync done")  # fmt: skip
    mine = [s for s in sync if s["phone_id"] == pid and s["stage"] == "contacts"]
    assert mine and mine[-1]["done"] == mine[-1]["total"] == 2000
    assert [s["done"] for s in mine] == sorted(s["done"] for s in mine)


def test_a_rejected_code_or_a_closed_window_stores_no_bond(tmp_path: Path, radio: Radio) -> None:
    car = ble_car(tmp_path, radio, "PBAP Car", auto_confirm=False)
    phone = _android(tmp_path, radio, sample_vcf(tmp_path / "c.vcf", 10)).start()
    request = poll(lambda: car.get("/api/pairing/requests"), what="a pairing request")[0]
    car.post(f"/api/pairing/requests/{request['id']}/reject")
    poll(lambda: "rejected" in car.log(), what="the refusal logged")
    assert car.phones() == []
    phone.stop()
    car.post("/api/pairing/close")
    phone.start()
    poll(lambda: "pairing window is closed" in car.log(), timeout=20, what="a window refusal")
    assert car.phones() == [] and car.get("/api/pairing/requests") == []
    assert not pulls(phone)


# 2. reconnects: nothing changed, then one contact changed ---------------------------------
def test_reconnects_download_nothing_unchanged_and_only_what_changed(
    tmp_path: Path, radio: Radio
) -> None:
    car = ble_car(tmp_path, radio, "PBAP Car")
    vcf = sample_vcf(tmp_path / "c.vcf", 300)
    phone = _android(tmp_path, radio, vcf).start()
    pid = phone.phone_id
    wait_pulled(car, pid, 300)
    first_sync = car.phones()[0]["last_sync"]
    phone.stop()
    poll(lambda: not car.phones()[0]["connected"], what="the car to see the phone leave")

    before = len(phone.events("pulled"))
    phone.start()
    poll(lambda: car.phones()[0]["last_sync"] != first_sync, timeout=30, what="a re-check")
    again = phone.events("pulled")[before:]
    book = [e for e in again if e["path"] == "telecom/pb.vcf"]
    assert [e["cards"] for e in book] == [0], again  # the probe alone: no card downloaded
    assert phone.events("pairing-code") and len(phone.events("pairing-code")) == 1  # bonded
    assert "nothing downloaded" in car.log()

    # One contact changed on the phone: the car shows it after the next connection.
    cards = import_vcards(vcf.read_bytes()).contacts
    target = cards[17]
    old = target.phones[0].number
    vcf.write_bytes(vcf.read_bytes().replace(old.encode(), b"+1 555 0100 999", 1))
    phone.stop()
    poll(lambda: not car.phones()[0]["connected"], what="the car to see the phone leave")
    phone.start()

    def updated() -> bool:
        items = car.contacts(pid, q=target.fn)["items"]
        return any(p["number"] == "+1 555 0100 999" for i in items for p in i["phones"])

    poll(updated, timeout=30, what="the changed number on the car")
    assert car.contacts(pid)["total"] == 300


# 3. the quirk corpus through PBAP ---------------------------------------------------------
def test_the_quirk_corpus_arrives_through_pbap_as_through_phone_bridge_sync(
    tmp_path: Path, radio: Radio
) -> None:
    # The files a single book can hold (the BOM and UTF-16 ones are files, not cards).
    skip = {"bom_utf8.vcf", "utf16le_bom.vcf"}
    data = b"".join(p.read_bytes().rstrip(b"\r\n") + b"\r\n"
                    for p in sorted(CORPUS.glob("*.vcf")) if p.name not in skip)  # fmt: skip
    book = tmp_path / "corpus.vcf"
    book.write_bytes(data)
    expected = import_vcards(data).contacts
    car = ble_car(tmp_path, radio, "PBAP Car")
    phone = _android(tmp_path, radio, book).start()
    wait_pulled(car, phone.phone_id, len(expected))
    got = car.contacts(phone.phone_id, limit=1000)["items"]
    assert sorted(c["name"] for c in got) == sorted(c.fn for c in expected)
    numbers = {(c["name"], p["number"]) for c in got for p in c["phones"]}
    assert numbers == {(c.fn, p.number) for c in expected for p in c.phones}
    # Quoted-printable umlauts and cp1251 arrive decoded, not raw.
    assert not any("=C3" in c["name"] for c in got)


# 4. a phone that dies mid-pull ------------------------------------------------------------
def test_a_phone_killed_mid_pull_leaves_what_the_car_had_and_the_next_connection_pulls(
    tmp_path: Path, radio: Radio
) -> None:
    car = ble_car(tmp_path, radio, "PBAP Car")
    small = sample_vcf(tmp_path / "small.vcf", 50)
    phone = _android(tmp_path, radio, small).start()
    pid = phone.phone_id
    wait_pulled(car, pid, 50)
    phone.stop()
    poll(lambda: not car.phones()[0]["connected"], what="the car to see the phone leave")

    big = sample_vcf(tmp_path / "big.vcf", 6000)
    phone.contacts = big
    before = len(phone.events("pulled"))
    phone.start()
    poll(lambda: any(e["cards"] == 500 for e in phone.events("pulled")[before:]),
         timeout=30, what="the first page of the new book")  # fmt: skip
    phone.kill()
    poll(lambda: not car.phones()[0]["connected"], what="the car to see the phone die")
    entry = car.phones()[0]
    # Pages already stored stay (each whole); nothing was deleted; one clear line says so.
    assert 50 <= entry["contacts"] < 6000 + 50
    assert re.search(r"PBAP pull .*(stopped|failed)", car.log()), car.log()[-2000:]
    assert "Traceback" not in car.log()
    phone.start()
    wait_pulled(car, pid, 6000, timeout=90)  # the next connection pulls again, whole


# 5. car-initiated, and the captures --------------------------------------------------------
def test_the_car_connects_to_a_phone_pairs_and_pulls(tmp_path: Path, radio: Radio) -> None:
    car = ble_car(tmp_path, radio, "PBAP Car")
    phone = _android(tmp_path, radio, sample_vcf(tmp_path / "c.vcf", 40),
                     extra=["--wait"]).start()  # fmt: skip
    address = phone.address
    import httpx

    bad = httpx.post(car.url + "/api/classic/connect", json={"address": "nope"}, timeout=5)
    assert bad.status_code in (400, 422)
    r = httpx.post(car.url + "/api/classic/connect", json={"address": address}, timeout=5)
    assert r.status_code == 202, r.text
    wait_pulled(car, phone.phone_id, 40)
    assert phone.events("pairing-code")


def test_the_captures_decode_as_sdp_rfcomm_and_obex_in_tshark(
    tmp_path: Path, radio: Radio
) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed: apt-get install tshark (CI installs it)"
    cap = tmp_path / "phone.btsnoop"
    car_cap = tmp_path / "car.btsnoop"
    car = ble_car(tmp_path, radio, "PBAP Car", btsnoop=car_cap)
    phone = _android(tmp_path, radio, sample_vcf(tmp_path / "c.vcf", 30), btsnoop=cap).start()
    wait_pulled(car, phone.phone_id, 30)
    phone.stop()
    car.stop()
    for capture in (cap, car_cap):
        out = subprocess.run(
            [tshark, "-r", str(capture), "-Y", "obex", "-T", "fields", "-e", "obex.opcode",
             "-e", "obex.name", "-e", "obex.type"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert "x-bt/phonebook" in out, (capture, out[:2000])
        assert "telecom/pb.vcf" in out and "telecom/cch.vcf" in out
        sdp = subprocess.run(
            [tshark, "-r", str(capture), "-Y", "btsdp", "-T", "fields", "-e", "btsdp.pdu"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert sdp.strip(), capture


def test_no_classic_keeps_the_car_le_only(tmp_path: Path, radio: Radio) -> None:
    car = Car(tmp_path / "car-nc", name="LE Car",
              extra=["--hci", radio.spec, "--no-mdns", "--no-classic"]).start()  # fmt: skip
    assert car.get("/api/status")["classic"] is None
    assert car.ready["classic"] is None


# 6. one iPhone over LE (AMS/ANCS) and Classic (PBAP) is one phone -------------------------
def test_an_iphone_over_le_and_classic_is_one_phone_with_its_contacts(
    tmp_path: Path, radio: Radio
) -> None:
    from tests.e2e.ios_helpers import IPhoneProc

    car = ble_car(tmp_path, radio, "PBAP Car")
    iphone = IPhoneProc(tmp_path / "iphone", radio,
                        extra=["--contacts", str(sample_vcf(tmp_path / "c.vcf", 120)),
                               "--calls", str(ROOT / "samples" / "calls.vcf")]).start()  # fmt: skip

    def merged() -> dict[str, Any] | None:
        phones = car.phones()
        return phones[0] if len(phones) == 1 and phones[0]["contacts"] == 120 else None

    entry = poll(merged, timeout=40, what="one phone with AMS, ANCS and PBAP")
    assert entry["profiles"] == ["ams", "ancs", "pbap"], entry
    # Its LE identity is its BD_ADDR, which the emulated phone keeps in its state dir.
    bd_addr = (iphone.state_dir / "bd_addr").read_text().strip()
    assert entry["id"] == bd_addr.replace(":", "").lower()
    assert len(car.get(f"/api/phones/{entry['id']}/calls")) == 20
    poll(lambda: car.get("/api/notifications"), timeout=20, what="its notifications too")


# 7. the dashboard in Chromium, fed by the real radio path ---------------------------------
def test_the_dashboard_shows_the_pull_and_the_recent_calls(
    tmp_path: Path, radio: Radio, page: Any
) -> None:
    from playwright.sync_api import expect

    car = ble_car(tmp_path, radio, "PBAP Car")
    page.goto(car.url + "/")
    tid = page.get_by_test_id
    expect(tid("car-name")).to_have_text("PBAP Car")
    # Every text the bar's label takes, as the page shows it (a pull is quick here).
    page.evaluate("""() => {
        window.labels = [];
        const label = document.querySelector('[data-testid="sync-label"]');
        new MutationObserver(() => window.labels.push(label.textContent))
            .observe(label, {subtree: true, childList: true, characterData: true});
    }""")
    phone = _android(tmp_path, radio, sample_vcf(tmp_path / "c.vcf", 2000)).start()
    # The bar ends "Up to date", with every contact and the calls listed...
    expect(tid("sync-label")).to_have_text("Up to date", timeout=30_000)
    # ...and showed the pull's progress page by page before that.
    labels = page.evaluate("() => window.labels")
    assert any(t.startswith("Downloading contacts") for t in labels), labels
    expect(tid("phone-contacts")).to_have_attribute("data-count", "2000")
    expect(tid("phone-state")).to_have_text("CLASSIC")
    expect(tid("call")).to_have_count(20)
    expect(tid("call").first).to_contain_text("Dr. Yuki Tanaka")
    shot(page, "pbap-radio.png")
    assert phone.phone_id in car.log()
