"""The plugin's fixtures against real processes: what a user of carhub.testing checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from carhub.testing import Car, CommandFailed, Phone, Radio, wait_for

CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nTEL:+1555{n:07d}\r\nEND:VCARD\r\n"


def cards(n: int, prefix: str = "c") -> list[str]:
    return [CARD.format(uid=f"{prefix}-{i}", name=f"{prefix.title()} {i}", n=i) for i in range(n)]


def test_a_car_is_ready_with_its_id_dashboard_and_endpoint(carhub_car: Callable[..., Car]) -> None:
    car = carhub_car("Test Car")
    status = car.status()
    assert status["id"] == car.id and status["name"] == "Test Car"
    assert car.dashboard.startswith("http://127.0.0.1:") and car.dashboard.endswith("/")
    assert car.endpoint.startswith("127.0.0.1:") and status["lan"] == {"endpoint": car.endpoint}
    assert status["pairing_open"] is True
    assert car.phones() == [] and car.pairing_requests() == []


def test_pair_and_sync_show_the_contacts_on_the_car(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car = carhub_car()
    phone = carhub_phone("Pixel", contacts=cards(3))
    paired = phone.pair(car)
    assert paired["ok"] is True and paired["car"]["id"] == car.id
    assert [(p["id"], p["name"]) for p in car.phones()] == [(phone.id, "Pixel")]
    result = phone.sync(car)
    assert result["ok"] is True and result["added"] == 3 and result["car"] == car.id
    assert sorted(c["name"] for c in car.contacts(phone.id)) == ["C 0", "C 1", "C 2"]
    # Another book this time: one changed name, one card gone.
    book = cards(2)
    book[1] = book[1].replace("FN:C 1", "FN:Renamed")
    again = phone.sync(car, book)
    assert (again["changed"], again["deleted"], again["unchanged"]) == (1, 1, 1)
    assert sorted(c["name"] for c in car.contacts(phone.id)) == ["C 0", "Renamed"]


def test_contacts_from_a_file_path(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone], tmp_path: Path
) -> None:
    vcf = tmp_path / "book.vcf"
    vcf.write_text("".join(cards(1200)))
    car = carhub_car()
    phone = carhub_phone(contacts=vcf)
    phone.pair(car)
    assert phone.sync(car)["added"] == 1200
    assert len(car.contacts(phone.id)) == 1200  # every page, not the first 1000


def test_a_car_that_does_not_auto_confirm_is_accepted_over_rest(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car = carhub_car(auto_confirm=False)
    phone = carhub_phone()
    # The phone compares its code with the car's request; the plugin accepts on the car.
    assert phone.pair(car, auto_confirm=False)["ok"] is True
    assert car.phone(phone.id) is not None


def test_accept_and_reject_by_code(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car = carhub_car(auto_confirm=False)
    phone = carhub_phone()
    pairing = phone.begin_pair(car, auto_confirm=True)
    request = pairing.car_request()
    assert car.reject(request["code"]) == request
    r = pairing.wait()
    assert r.code == 4, r
    assert car.phones() == []
    pairing = phone.begin_pair(car)
    assert pairing.code == pairing.car_request()["code"]  # both screens show the same code
    car.accept(pairing.code)
    pairing.answer(True)
    assert pairing.wait().code == 0
    assert car.phone(phone.id) is not None


def test_a_failed_pairing_raises_with_the_exit_code(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car = carhub_car(pairing_open=False)
    with pytest.raises(CommandFailed) as failed:
        carhub_phone().pair(car)
    assert failed.value.result.code == 4


def test_options_become_carhub_run_options(carhub_car: Callable[..., Car]) -> None:
    car = carhub_car(model="Bench Unit 9", pairing_window=30)
    assert car.status()["model"] == "Bench Unit 9"
    with pytest.raises(httpx.HTTPStatusError) as refused:
        car.command("play")  # no phone connected: 409, raised as the HTTP error
    assert refused.value.response.status_code == 409


def test_restart_keeps_the_ports_and_the_phones(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car = carhub_car()
    phone = carhub_phone(contacts=cards(2))
    phone.pair(car)
    phone.sync(car)
    before = (car.id, car.endpoint, car.dashboard, car.proc.pid if car.proc else 0)
    car.restart()
    assert (car.id, car.endpoint, car.dashboard) == before[:3]
    assert car.proc is not None and car.proc.pid != before[3]
    assert len(car.contacts(phone.id)) == 2
    assert phone.sync(car)["unchanged"] == 2


def test_run_plays_media_and_obeys_the_car(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    media = Path(__file__).resolve().parents[2] / "samples" / "media"
    car = carhub_car()
    phone = carhub_phone(contacts=cards(2), media=media)
    phone.pair(car)
    with phone.run(car) as session:
        session.wait_event("synced")
        playing = wait_for(lambda: car.media()["title"] and car.media(), what="now playing")
        assert playing["phone_id"] == phone.id and playing["connected"] is True
        assert car.command("next")["phone_id"] == phone.id
        wait_for(lambda: car.media()["title"] != playing["title"], what="the next track")
    assert session.proc is not None and session.proc.poll() is not None  # stopped
    wait_for(lambda: not car.phones()[0]["connected"], what="the phone to disconnect")


async def test_events_stream_the_snapshot_then_changes(
    carhub_car: Callable[..., Car], carhub_phone: Callable[..., Phone]
) -> None:
    car = carhub_car()
    async with car.events() as events:
        first = [(await events.__anext__())["type"] for _ in range(5)]
        assert first == ["status", "pairing", "phones", "media", "notifications"]
        car.post("/api/pairing/close")
        status = await events.wait_for("status", lambda s: s["pairing_open"] is False)
        assert status["id"] == car.id


def test_a_ble_phone_pairs_and_syncs_over_the_radio(
    carhub_radio: Callable[..., Radio],
    carhub_car: Callable[..., Car],
    carhub_phone: Callable[..., Phone],
) -> None:
    radio = carhub_radio()
    assert radio.transport == f"tcp-client:127.0.0.1:{radio.port}"
    car = carhub_car("BLE Car", radio=radio, lan=False)
    assert car.ready["ble"]
    phone = carhub_phone(contacts=cards(5), transport="ble", radio=radio)
    assert phone.pair(car)["transport"] == "ble"
    result = phone.sync(car)
    assert result["transport"] == "ble" and result["added"] == 5
    radio.restart()  # the air comes back on the same port; the car reattaches
    assert radio.proc is not None and radio.proc.poll() is None
    assert wait_for(lambda: phone.sync(car, cards(6))["added"] == 1, timeout=60, what="a resync")
