"""The car's photo pass over a real Bumble Classic link (LocalRadio) to the fake phone:
with vCard selecting only the cards with a photo are re-read; without it, every card."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bumble.keys import MemoryKeyStore

from carhub.ble import BleCarServer
from carhub.classic import PulledPage
from carhub.pbap import ClassicCar
from protocol.contacts import Contact, contact_digest
from protocol.pbap import PHOTO_ONLY, AppParams
from protocol.pbap.mirror import plan_page
from radio import LocalRadio
from tests.carhub.pbap_car_phone import FakePbapPhone, card
from tests.carhub.test_pbap_car_link import DEVICE_ID, INFO, JPEG, Events

SELECTING = 0x21F  # the fake phone's record with vCard selecting (bit 4)
PHOTO_PROBE = AppParams(max_list_count=0, vcard_selector=8, vcard_selector_operator=0)


class MirrorEvents(Events):
    """The recording double, plus the engine's mirror: what a user would see stored."""

    def __init__(self) -> None:
        super().__init__()
        self.mirror: dict[str, tuple[bytes, Contact]] = {}

    def classic_page(self, phone_id: str, page: PulledPage) -> None:
        super().classic_page(phone_id, page)
        plan = plan_page(self.mirror, page.stage, page.contacts)
        self.mirror.update((c.uid, (d, c)) for c, d in plan.upserts)

    def photo_of(self, fn: str) -> list[bytes]:
        return [c.photo for _, c in sorted(self.mirror.values(), key=lambda v: v[1].uid)
                if c.fn == fn]  # fmt: skip


@pytest.fixture
async def car() -> AsyncIterator[tuple[LocalRadio, MirrorEvents]]:
    air = LocalRadio()
    events = MirrorEvents()
    classic = ClassicCar(events, MemoryKeyStore(), page_size=500, response_timeout=1.0)

    async def on_link(_link: Any) -> None:
        return None

    server = BleCarServer(
        air, name="Golf", device_id=DEVICE_ID, info=INFO, on_link=on_link, classic=classic
    )
    await server.start()
    yield air, events
    await server.stop()


async def pulled(air: LocalRadio, events: Events, cards: list[bytes], **kw: Any) -> FakePbapPhone:
    phone = FakePbapPhone(air, book=[card("Emulated Owner", "+15550000000"), *cards], **kw)
    await phone.power_on()
    await phone.connect_to(events.address)
    await events.wait_end(60)
    assert events.names()[-1] == "done", events.calls[-2:]
    return phone


def book(n: int, photos: set[int] = frozenset()) -> list[bytes]:  # type: ignore[assignment]
    return [card(f"Contact {i:04d}", f"+1555{i:07d}", photo=JPEG if i in photos else "")
            for i in range(n)]  # fmt: skip


def photo_gets(phone: FakePbapPhone) -> list[AppParams]:
    return [p for name, p in phone.gets if name == "telecom/pb.vcf" and p.max_list_count
            and p.property_selector == int(PHOTO_ONLY)]  # fmt: skip


async def test_a_book_without_photos_gets_no_photo_pages(car: Any) -> None:
    air, events = car
    phone = await pulled(air, events, book(1200), features=SELECTING)
    assert phone.connects == [bytes.fromhex("10040000009f")]  # vCard selecting claimed
    asked = [(name, p) for name, p in phone.gets]
    assert [n for n, _ in asked] == ["telecom/pb.vcf"] * 5 + ["telecom/cch.vcf"]
    assert asked[4][1] == PHOTO_PROBE  # probe, 3 text pages, the selector probe
    assert photo_gets(phone) == []
    assert len(events.mirror) == 1200 and not any(c.photo for _, c in events.mirror.values())
    await phone.close()


async def test_three_photos_among_500_are_exactly_what_is_read(car: Any) -> None:
    air, events = car
    phone = await pulled(air, events, book(500, {3, 250, 499}), features=SELECTING)
    assert photo_gets(phone) == [
        AppParams(max_list_count=3, format=1, property_selector=int(PHOTO_ONLY),
                  vcard_selector=8, vcard_selector_operator=0)
    ]  # fmt: skip
    with_photo = sorted(c.fn for _, c in events.mirror.values() if c.photo)
    assert with_photo == ["Contact 0003", "Contact 0250", "Contact 0499"]
    photo_pages = [p for p in events.pages if p.stage == "photos" and p.photos]
    assert [(p.done, p.total) for p in photo_pages] == [(3, 3)]
    assert len(events.mirror) == 500
    await phone.close()


async def test_a_photo_removed_on_the_phone_is_removed_on_the_car(car: Any) -> None:
    air, events = car
    cards = book(40, {1, 2})
    phone = await pulled(air, events, cards, features=SELECTING)
    assert events.photo_of("Contact 0002")[0]
    phone.book[3] = card("Contact 0002", "+15550000002")  # its photo deleted
    phone.primary += 1
    await phone.disconnect()
    await phone.connect_to(events.address)
    await events.wait_end(60)
    assert events.names()[-1] == "done"
    assert events.photo_of("Contact 0002") == [b""] and events.photo_of("Contact 0001")[0]
    await phone.close()


async def test_a_phone_without_vcard_selecting_gets_the_full_photo_pass(car: Any) -> None:
    air, events = car
    phone = await pulled(air, events, book(700, {5}))  # the fake's default record: 0x20F
    assert phone.connects == [bytes.fromhex("10040000008f")]
    assert all(p.vcard_selector is None for _, p in phone.gets)
    assert [(p.list_start_offset or 0, p.max_list_count) for p in photo_gets(phone)] == [
        (0, 500), (500, 201)
    ]  # fmt: skip
    assert [c.fn for _, c in events.mirror.values() if c.photo] == ["Contact 0005"]
    await phone.close()


async def test_a_phone_that_refuses_the_selector_gets_the_full_photo_pass(car: Any) -> None:
    air, events = car
    phone = await pulled(air, events, book(600, {5}), features=SELECTING, refuse_selector=True)
    assert [p for _, p in phone.gets if p.vcard_selector] == [PHOTO_PROBE]
    assert len(photo_gets(phone)) == 2
    assert [c.fn for _, c in events.mirror.values() if c.photo] == ["Contact 0005"]
    await phone.close()


async def test_repeated_names_without_uid_get_no_photo_logged_once(
    car: Any, caplog: pytest.LogCaptureFixture
) -> None:
    air, events = car
    twin = card("John Smith", "+15550000001")
    twin_photo = card("John Smith", "+15550000002", photo=JPEG)
    with_uid = card("Jane Roe", "+15550000003", photo=JPEG).replace(
        b"END:VCARD", b"UID:jane-roe-1\r\nEND:VCARD"
    )
    cards = [twin, *book(30, {4}), twin_photo, twin_photo, with_uid, card("Jane Roe", "+1")]
    with caplog.at_level(logging.INFO, logger="carhub.pbap"):
        phone = await pulled(air, events, cards, features=SELECTING)
    assert len(photo_gets(phone)) == 1 and photo_gets(phone)[0].max_list_count == 4
    # The filtered pass cannot tell the three John Smiths apart: none gets a photo.
    assert events.photo_of("John Smith") == [b"", b"", b""]
    assert events.photo_of("Contact 0004")[0]
    roes = {c.uid: c.photo for _, c in events.mirror.values() if c.fn == "Jane Roe"}
    assert roes["jane-roe-1"] and len(roes) == 2  # its own UID: matched exactly
    lines = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(lines) == 1 and ": 2 photos left out" in lines[0], lines
    assert contact_digest(events.mirror["jane-roe-1"][1]) == events.mirror["jane-roe-1"][0]
    await phone.close()
