"""The car's Classic side (carhub.pbap) against a fake PBAP phone, in one process on a
LocalRadio: SSP pairing, SDP, RFCOMM, OBEX, paged pulls, change detection, calls, faults."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from bumble.keys import MemoryKeyStore

from carhub.ble import BleCarServer
from carhub.classic import CallEntry, ClassicConnector, ClassicHandle, PulledPage
from carhub.pbap import ClassicCar
from protocol.pbap import BookState
from protocol.vcard import import_vcards
from radio import LocalRadio
from tests.carhub.pbap_car_phone import FakePbapPhone, Faults, card

DEVICE_ID = "c0ffee0123456789"
INFO: dict[str, object] = {"id": DEVICE_ID, "name": "Golf", "model": "VW", "version": 1, "lan": []}
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(range(64))).decode()
CALLS = (
    b"BEGIN:VCARD\r\nVERSION:2.1\r\nN:\r\nTEL:+15550100009\r\n"
    b"X-IRMC-CALL-DATETIME;MISSED:20261201T081500\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nTEL:+15550100001\r\n"
    b"X-IRMC-CALL-DATETIME;TYPE=DIALED:20261130T190000Z\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:no type\r\nEND:VCARD\r\n"
)


class Events:
    """A recording ClassicEvents double (the engine's side)."""

    def __init__(self) -> None:
        self.may_bond = True
        self.accept = True
        self.calls: list[tuple[str, Any]] = []
        self.bonded: dict[str, str] = {}
        self.states: dict[str, BookState] = {}
        self.pages: list[PulledPage] = []
        self.recent: list[CallEntry] = []
        self.address = ""
        self.connector: ClassicConnector | None = None
        self.ended = asyncio.Event()

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def _note(self, name: str, value: Any, *, end: bool = False) -> None:
        self.calls.append((name, value))
        if end:
            self.ended.set()

    async def wait_end(self, timeout: float = 20.0) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)
        self.ended.clear()

    def classic_attach(self, address: str, connect: ClassicConnector) -> None:
        self.address, self.connector = address, connect

    def classic_detach(self) -> None:
        self._note("detach", None)

    def classic_may_bond(self) -> bool:
        return self.may_bond

    def classic_pairing_requested(
        self,
        phone_id: str,
        phone_name: str,
        code: str,
        expires_at: float,
        decide: Callable[[bool], None],
    ) -> Callable[[], None]:
        self._note("requested", (phone_id, code))
        asyncio.get_running_loop().call_soon(decide, self.accept)
        return lambda: None

    def classic_pairing_failed(self, phone_id: str, reason: str) -> None:
        self._note("pairing_failed", reason, end=True)

    def classic_bonded(self, phone_id: str, phone_name: str) -> None:
        self._note("bonded", phone_id)
        self.bonded[phone_id] = phone_name

    def classic_is_bonded(self, phone_id: str) -> bool:
        return phone_id in self.bonded

    def classic_connected(self, phone_id: str, handle: ClassicHandle) -> None:
        self._note("connected", handle)

    def classic_disconnected(self, phone_id: str, handle: ClassicHandle) -> None:
        self._note("disconnected", phone_id)

    def classic_book_state(self, phone_id: str) -> BookState | None:
        return self.states.get(phone_id)

    def classic_page(self, phone_id: str, page: PulledPage) -> None:
        self._note("page", (page.stage, page.done, page.total))
        self.pages.append(page)

    def classic_pull_skipped(self, phone_id: str, state: BookState) -> None:
        self._note("skipped", state)

    def classic_calls(self, phone_id: str, calls: list[CallEntry]) -> None:
        self._note("calls", calls, end=self.names()[-1:] == ["skipped"])
        self.recent = calls

    def classic_pull_done(
        self, phone_id: str, state: BookState | None, seen_uids: frozenset[str]
    ) -> None:
        self._note("done", (state, seen_uids), end=True)
        if state is not None:
            self.states[phone_id] = state

    def classic_pull_failed(self, phone_id: str, reason: str) -> None:
        self._note("failed", reason, end=True)

    def on_unpair(self, listener: Callable[[str], None]) -> None:
        pass


def book(n: int) -> list[bytes]:
    cards = [card("Emulated Owner", "+15550000000")]
    for i in range(n):
        name = "John Smith" if i in (3, 499, 500, 1999) else f"Contact {i:04d}"
        cards.append(card(name, f"+1555{i:07d}", photo=JPEG if i % 10 == 0 else ""))
    return cards


@pytest.fixture
async def car() -> AsyncIterator[tuple[LocalRadio, Events, BleCarServer]]:
    air = LocalRadio()
    events = Events()
    classic = ClassicCar(events, MemoryKeyStore(), page_size=500, response_timeout=1.0)

    async def on_link(_link: Any) -> None:
        return None

    server = BleCarServer(
        air, name="Golf", device_id=DEVICE_ID, info=INFO, on_link=on_link, classic=classic
    )
    await server.start()
    yield air, events, server
    await server.stop()


async def phone_on(air: LocalRadio, **kw: Any) -> FakePbapPhone:
    phone = FakePbapPhone(air, **kw)
    await phone.power_on()
    return phone


def stage_pages(events: Events, stage: str) -> list[PulledPage]:
    return [p for p in events.pages if p.stage == stage]


async def test_pulls_2000_contacts_in_pages_with_progress_owner_and_photos(car: Any) -> None:
    air, events, _server = car
    cards = book(2000)
    phone = await phone_on(air, book=cards, calls=CALLS)
    started = time.monotonic()
    await phone.connect_to(events.address)
    await events.wait_end(60)
    elapsed = time.monotonic() - started
    print(f"2,000 contacts pulled in {elapsed:.2f} s")
    assert events.names()[:3] == ["requested", "bonded", "connected"]
    assert events.names()[-2:] == ["calls", "done"], events.calls[-3:]
    text, photos = stage_pages(events, "contacts"), stage_pages(events, "photos")
    assert [(p.done, p.total) for p in text] == [
        (499, 2000),
        (999, 2000),
        (1499, 2000),
        (1999, 2000),
        (2000, 2000),
    ]
    assert [(p.done, p.total) for p in photos] == [(p.done, p.total) for p in text]
    assert text[0].owner == "Emulated Owner" and all(p.owner is None for p in text[1:])
    contacts = [c for p in text for c in p.contacts]
    assert len(contacts) == 2000 and "Emulated Owner" not in {c.fn for c in contacts}
    # The UIDs of one import of the whole book (owner card left out), duplicates included.
    whole = import_vcards(b"".join(cards[1:]))
    assert [c.uid for c in contacts] == [c.uid for c in whole.contacts]
    assert len({c.uid for c in contacts}) == 2000
    photo_contacts = [c for p in photos for c in p.contacts]
    assert [c.uid for c in photo_contacts] == [c.uid for c in contacts]
    with_photo = {c.uid for c in photo_contacts if c.photo}
    assert len(with_photo) == 200 and all(not c.photo for c in contacts)
    assert all(p.photos for p in photos[:-1]) and not any(p.photos for p in text)
    state, seen = events.calls[-1][1]
    assert state == BookState(b"\x42" * 16, phone.counter(), phone.counter(), 2001)
    assert seen == frozenset(c.uid for c in contacts)
    assert events.recent == [
        CallEntry("", "+15550100009", "missed", "2026-12-01T08:15:00"),
        CallEntry("Ann Lee", "+15550100001", "outgoing", "2026-11-30T19:00:00Z"),
    ]
    names = [name for name, _ in phone.gets]
    assert names == ["telecom/pb.vcf"] * 11 + ["telecom/cch.vcf"]
    assert phone.gets[-1][1].max_list_count == 100
    assert phone.connects == [bytes.fromhex("10040000008f")]
    await phone.close()


async def _pull_twice(
    car: Any, phone_kw: dict[str, Any], between: Callable[[FakePbapPhone], None]
) -> tuple[Events, FakePbapPhone, int]:
    air, events, _server = car
    phone = await phone_on(air, book=book(30), calls=CALLS, **phone_kw)
    await phone.connect_to(events.address)
    await events.wait_end()
    assert events.names()[-1] == "done"
    await phone.disconnect()
    await asyncio.sleep(0.1)
    between(phone)
    first = len(phone.gets)
    events.pages.clear()
    await phone.connect_to(events.address)
    await events.wait_end()
    return events, phone, first


async def test_reconnect_with_unchanged_counters_downloads_no_card(car: Any) -> None:
    events, phone, first = await _pull_twice(car, {}, lambda _p: None)
    again = phone.gets[first:]
    assert [(n, p.max_list_count) for n, p in again] == [
        ("telecom/pb.vcf", 0),
        ("telecom/cch.vcf", 100),
    ]
    assert events.pages == [] and events.names()[-2:] == ["skipped", "calls"]
    await phone.close()


async def test_reconnect_with_changed_counters_pulls(car: Any) -> None:
    def edit(phone: FakePbapPhone) -> None:
        phone.book[5] = card("Changed Name", "+15559999999")
        phone.primary += 1

    events, phone, first = await _pull_twice(car, {}, edit)
    assert len(phone.gets[first:]) == 4  # probe, one text page, one photo page, calls
    assert "Changed Name" in {c.fn for p in events.pages for c in p.contacts}
    assert events.names()[-1] == "done"
    await phone.close()


async def test_pbap_11_phone_without_counters_is_pulled_every_time(car: Any) -> None:
    events, phone, first = await _pull_twice(car, {"counters": False}, lambda _p: None)
    assert phone.connects == [b"", b""]  # no PbapSupportedFeatures to a 1.1 PSE
    assert len(phone.gets[first:]) == 4
    state, seen = events.calls[-1][1]
    assert state is None and len(seen) == 30
    await phone.close()


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        (Faults(cut_at=3), "disconnected"),
        (Faults(garbage_at=2), "malformed OBEX"),
        (Faults(refuse_at=2), "refused"),
        (Faults(change_after=2), "changed during the pull"),
        (Faults(silent_at=2), "no answer"),
    ],
)
async def test_a_fault_mid_pull_fails_it_and_never_completes(
    car: Any, faults: Faults, reason: str
) -> None:
    air, events, _server = car
    phone = await phone_on(air, book=book(1200), calls=CALLS, faults=faults)
    await phone.connect_to(events.address)
    await events.wait_end()
    assert events.names()[-1] == "failed", events.calls
    assert reason in events.calls[-1][1]
    assert "done" not in events.names() and "calls" not in events.names()
    # Pages before the fault were applied whole; the faulty one was not applied at all.
    text = stage_pages(events, "contacts")
    assert len(text) == (1 if faults.cut_at or faults.change_after else 0)
    assert all(len(p.contacts) == 499 for p in text)
    await phone.close()


async def test_closed_window_refuses_a_new_bond(car: Any) -> None:
    air, events, _server = car
    events.may_bond = False
    phone = await phone_on(air, book=book(3))
    await phone.connect_to(events.address)
    await events.wait_end()
    assert events.names() == ["pairing_failed"]
    assert "window is closed" in events.calls[0][1]
    assert events.bonded == {} and phone.gets == []
    await phone.close()


async def test_bonded_phone_reconnects_with_the_window_closed_and_no_pairing(car: Any) -> None:
    def close_window(_phone: FakePbapPhone) -> None:
        events.may_bond = False

    _air, events, _server = car
    phone_events, phone, _first = await _pull_twice(car, {}, close_window)
    names = phone_events.names()
    # The second connection authenticated with the stored link key: no SSP, no code.
    second = names[names.index("disconnected") + 1 :]
    assert second == ["connected", "skipped", "calls"], names
    assert names.count("requested") == 1 and names.count("bonded") == 1
    assert len(phone.codes) == 1
    await phone.close()


async def test_car_initiated_connect_pairs_and_pulls(car: Any) -> None:
    air, events, _server = car
    phone = await phone_on(air, book=book(10), calls=CALLS)
    assert events.connector is not None
    events.connector(phone.address)
    await events.wait_end()
    assert events.names()[:3] == ["requested", "bonded", "connected"]
    assert events.names()[-1] == "done"
    assert len(phone.codes) == 1
    await phone.close()


async def test_car_initiated_connect_to_nobody_is_reported(car: Any) -> None:
    _air, events, _server = car
    assert events.connector is not None
    events.connector("00:CA:48:00:0F:FF")
    await events.wait_end(30)
    assert events.names() == ["pairing_failed"]


async def test_a_phone_that_refuses_its_call_history_still_completes_the_pull(car: Any) -> None:
    air, events, _server = car
    # GETs: the probe, one text page, one photo page, then the call history: refused.
    phone = await phone_on(air, book=book(10), calls=CALLS, faults=Faults(refuse_at=4))
    await phone.connect_to(events.address)
    await events.wait_end()
    assert [name for name, _ in phone.gets][-1] == "telecom/cch.vcf"
    assert events.names()[-1] == "done" and "calls" not in events.names(), events.calls
    assert events.recent == []  # no call list was reported: the car keeps its last one
    await phone.close()
