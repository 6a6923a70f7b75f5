"""``PbapPhone`` with ``wait`` (the car connects first) and ``pbap_version="1.1"``, on one
LocalRadio, against the minimal PCE of test_pbap_phone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bumble import sdp
from bumble.core import BT_PHONEBOOK_ACCESS_PSE_SERVICE, PhysicalTransport

from phone_bridge.pbap import BookFile, PbapPhone, PbapPhoneOptions
from protocol.pbap import probe as probe_get
from protocol.pbap import pull_phone_book, split_cards, split_owner
from radio import LocalRadio
from tests.phone_bridge.test_pbap_phone import T, contacts, make_car, open_pce


def make_phone(air: LocalRadio, tmp_path: Path, events: list[Any], **kw: Any) -> PbapPhone:
    book = tmp_path / "contacts.vcf"
    book.write_bytes(contacts(12))
    state = tmp_path / "state"
    return PbapPhone(air, PbapPhoneOptions(state, BookFile(book, state), auto_confirm=True,
                                           emit=events.append, **kw))


async def test_a_waiting_phone_does_not_connect_and_the_car_connects_and_pulls(
    tmp_path: Path,
) -> None:
    air = LocalRadio()
    car, codes, transport = await make_car(air)
    events: list[Any] = []
    car_address = str(car.public_address).split("/")[0]
    phone = make_phone(air, tmp_path, events, car=car_address, wait=True)
    try:
        await phone.start()  # with the car's address known: only --wait keeps it from dialling
        await asyncio.sleep(1.5)
        assert phone.device is not None and not phone.device.connections
        assert not car.connections
        assert [e["event"] for e in events] == ["up"]
        conn = await car.connect(phone.address, transport=PhysicalTransport.BR_EDR, timeout=T)
        await asyncio.wait_for(conn.authenticate(), T)
        assert codes.codes and [e["code"] for e in events
                                if e["event"] == "pairing-code"] == codes.codes
        connected = [e for e in events if e["event"] == "connected"]
        assert connected == [{"event": "connected", "car": car_address,
                              "transport": "classic", "initiator": "car"}]
        pce = await open_pce(conn)
        _, params = await pce.get(probe_get())
        assert params.phonebook_size == 13
        body, _ = await pce.get(pull_phone_book(max_count=20))
        owner, cards = split_owner(split_cards(body), first_index=0)
        assert owner is not None and len(cards) == 12
    finally:
        await transport.close()
        await phone.stop()


async def test_a_11_phone_says_11_in_sdp_and_never_sends_counters(tmp_path: Path) -> None:
    air = LocalRadio()
    events: list[Any] = []
    phone = make_phone(air, tmp_path, events, pbap_version="1.1")
    await phone.start(connect=False)
    car, _codes, transport = await make_car(air)
    try:
        conn = await car.connect(phone.address, transport=PhysicalTransport.BR_EDR, timeout=T)
        async with sdp.Client(conn) as client:
            records = await asyncio.wait_for(client.search_attributes(
                [BT_PHONEBOOK_ACCESS_PSE_SERVICE], [(0x0000, 0xFFFF)]), T)
        attrs = {a.id: a.value for a in records[0]}
        profile = attrs[sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID].value[0].value
        assert profile[1].value == 0x0101
        assert 0x0317 not in attrs  # no PbapSupportedFeatures in a 1.1 record
        await asyncio.wait_for(conn.authenticate(), T)
        pce = await open_pce(conn)  # the car's CONNECT claims counters and the identifier
        assert next(e["features"] for e in events if e["event"] == "pbap-connected") & 0x0C
        _, params = await pce.get(probe_get())
        assert params.phonebook_size == 13
        assert params.database_identifier is None
        assert params.primary_version_counter is None
        assert params.secondary_version_counter is None
    finally:
        await transport.close()
        await phone.stop()
