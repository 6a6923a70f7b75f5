"""The emulated PBAP phone (phone_bridge.pbap) against a minimal PCE written here, on one
LocalRadio: Bumble SDP + RFCOMM clients, protocol.obex.ObexClient, protocol.pbap builders."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bumble import rfcomm, sdp
from bumble.core import BT_PHONEBOOK_ACCESS_PSE_SERVICE, PhysicalTransport
from bumble.device import Connection, Device
from bumble.hci import Address
from bumble.pairing import PairingConfig, PairingDelegate

from phone_bridge.pbap import BookFile, PbapPhone, PbapPhoneOptions
from protocol.obex import BodyChunk, Connected, GetDone, ObexClient
from protocol.pbap import (
    PBAP_TARGET,
    AppParams,
    BookState,
    connect_app_params,
    decide,
    decode_app_params,
    pages,
    probe,
    pull_phone_book,
    split_cards,
    split_owner,
)
from protocol.pbap.requests import PbapGet
from protocol.vcard import import_vcards
from radio import LocalRadio
from radio.hci import open_hci

T = 10.0


def contacts(n: int, tag: str = "") -> bytes:
    return b"".join(
        (f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i:04d}{tag}\r\nN:{i:04d}{tag};Person;;;\r\n"
         f"TEL;TYPE=CELL:+1 555 {i:04d}\r\nEND:VCARD\r\n").encode() for i in range(n))


class Codes(PairingDelegate):
    """The car's side of SSP numeric comparison: accept, and remember the code."""

    def __init__(self) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self.codes: list[str] = []

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self.codes.append(f"{number:0{digits}d}")
        return True


class MiniPce:
    """The smallest PBAP client: one OBEX session over one RFCOMM DLC."""

    def __init__(self, dlc: rfcomm.DLC) -> None:
        self.dlc = dlc
        self.obex = ObexClient(max_packet=1000)
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        dlc.sink = self.inbox.put_nowait

    async def exchange(self, request: bytes) -> list[Any]:
        """Send a request and run it to its final response (a GET's Continues included)."""
        events: list[Any] = []
        self.dlc.write(request)
        while not events or isinstance(events[-1], BodyChunk):
            events += self.obex.receive_data(await asyncio.wait_for(self.inbox.get(), T))
            if nxt := self.obex.data_to_send():  # the next GET of a transfer
                self.dlc.write(nxt)
        return events

    async def get(self, g: PbapGet) -> tuple[bytes, AppParams]:
        events = await self.exchange(self.obex.get(g.name, g.type, g.app_params))
        done = events[-1]
        assert isinstance(done, GetDone), events
        return b"".join(e.data for e in events if isinstance(e, BodyChunk)), decode_app_params(
            done.app_params)


@pytest.fixture
async def air() -> LocalRadio:
    return LocalRadio()


async def make_car(air: LocalRadio) -> tuple[Device, Codes, Any]:
    transport = await open_hci(air)
    car = Device.with_hci("Car", Address("F0:F1:F2:F3:F4:F5"), transport.source, transport.sink)
    car.classic_enabled = True
    car.connectable = True
    codes = Codes()
    car.pairing_config_factory = lambda _c: PairingConfig(
        sc=True, mitm=True, bonding=True, delegate=codes)
    await car.power_on()
    return car, codes, transport


@pytest.fixture
async def phone(
    air: LocalRadio, tmp_path: Path
) -> AsyncIterator[tuple[PbapPhone, list[Any], Path]]:
    book = tmp_path / "contacts.vcf"
    book.write_bytes(contacts(25))
    events: list[Any] = []
    state = tmp_path / "state"
    p = PbapPhone(air, PbapPhoneOptions(state, BookFile(book, state, owner="Ann Owner"),
                                        auto_confirm=True, emit=events.append))
    await p.start(connect=False)
    yield p, events, book
    await p.stop()


async def open_pce(connection: Connection) -> MiniPce:
    channel = await asyncio.wait_for(rfcomm.find_rfcomm_channel_with_uuid(
        connection, BT_PHONEBOOK_ACCESS_PSE_SERVICE), T)
    assert channel
    mux = await asyncio.wait_for(rfcomm.Client(connection).start(), T)
    dlc = await asyncio.wait_for(mux.open_dlc(channel), T)
    pce = MiniPce(dlc)
    events = await pce.exchange(pce.obex.connect(PBAP_TARGET, connect_app_params()))
    assert isinstance(events[0], Connected)
    return pce


async def wait_for(events: list[Any], kind: str, count: int = 1) -> None:
    async def poll() -> None:
        while len([e for e in events if e["event"] == kind]) < count:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), T)


async def test_sdp_record_says_pbap_12_pse(air: LocalRadio, phone: Any) -> None:
    p, _, _ = phone
    car, _codes, transport = await make_car(air)
    try:
        conn = await car.connect(p.address, transport=PhysicalTransport.BR_EDR, timeout=T)
        async with sdp.Client(conn) as client:
            records = await asyncio.wait_for(client.search_attributes(
                [BT_PHONEBOOK_ACCESS_PSE_SERVICE], [(0x0000, 0xFFFF)]), T)
        attrs = {a.id: a.value for a in records[0]}
        profile = attrs[sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID].value[0].value
        assert profile[0].value.to_hex_str() == "1130" and profile[1].value == 0x0102
        assert attrs[0x0314].value == 0x01 and attrs[0x0317].value == 0x1F
        assert 0x0200 not in attrs  # no GoepL2capPsm: OBEX over RFCOMM only
    finally:
        await transport.close()


async def test_car_pulls_paged_probes_and_sees_a_changed_file(air: LocalRadio, phone: Any) -> None:
    p, events, book = phone
    car, codes, transport = await make_car(air)
    try:
        conn = await car.connect(p.address, transport=PhysicalTransport.BR_EDR, timeout=T)
        await asyncio.wait_for(conn.authenticate(), T)
        assert [e["code"] for e in events if e["event"] == "pairing-code"] == codes.codes
        pce = await open_pce(conn)
        _, first = await pce.get(probe())
        assert first.phonebook_size == 26  # the owner card and 25 contacts
        got: list[bytes] = []
        owner = None
        for offset, count in pages(first.phonebook_size, 10):
            body, _ = await pce.get(pull_phone_book(max_count=count, offset=offset))
            o, cards = split_owner(split_cards(body), first_index=offset)
            owner, got = owner or o, got + cards
        assert owner is not None and b"FN:Ann Owner" in owner
        assert [c.fn for c in import_vcards(b"".join(got)).contacts] == [
            f"Person {i:04d}" for i in range(25)]
        pulled = [e for e in events if e["event"] == "pulled"]
        assert [(e["offset"], e["cards"]) for e in pulled[1:]] == [(0, 10), (10, 10), (20, 6)]
        stored = BookState.from_probe(first)
        assert decide(stored, (await pce.get(probe()))[1]) == "skip"
        book.write_bytes(contacts(25, tag="x"))  # same size, other names
        await wait_for(events, "book-changed")
        _, again = await pce.get(probe())
        assert again.database_identifier == first.database_identifier
        assert again.primary_version_counter != first.primary_version_counter
        assert again.secondary_version_counter != first.secondary_version_counter
        assert decide(stored, again) == "pull"
    finally:
        await transport.close()


async def test_the_phone_connects_and_authenticates_first(
    air: LocalRadio, phone: Any, tmp_path: Path
) -> None:
    p, events, _ = phone
    car, codes, transport = await make_car(air)
    try:
        p.options.car = str(car.public_address).split("/")[0]
        links: asyncio.Queue[Connection] = asyncio.Queue()
        car.on(car.EVENT_CONNECTION, links.put_nowait)
        await asyncio.wait_for(p.connect_car(), T)
        assert [e["event"] for e in events if e["event"] in ("connected", "connect-failed")] == [
            "connected"]
        assert codes.codes  # the car was asked to compare a code: the phone authenticated
        conn = await asyncio.wait_for(links.get(), T)
        pce = await open_pce(conn)
        _, params = await pce.get(probe())
        assert params.phonebook_size == 26
    finally:
        await transport.close()


def test_state_files_are_private(tmp_path: Path) -> None:
    book = tmp_path / "c.vcf"
    book.write_bytes(contacts(2))
    BookFile(book, tmp_path / "s")
    for name in ("pbap-database-id", "pbap-counters.json"):
        assert stat.S_IMODE((tmp_path / "s" / name).stat().st_mode) == 0o600


async def test_ios_with_contacts_is_one_dual_mode_phone(air: LocalRadio, tmp_path: Path) -> None:
    from phone_bridge.ios import IPhone, IPhoneOptions

    book = tmp_path / "c.vcf"
    book.write_bytes(contacts(3))
    state = tmp_path / "ios"
    iphone = IPhone(air, IPhoneOptions(state_dir=state, auto_confirm=True,
                                       books=BookFile(book, state)))
    await iphone.start()
    car, _codes, transport = await make_car(air)
    try:
        assert iphone.device is not None
        public = str(iphone.device.public_address).split("/")[0]
        assert iphone.identity_address == public  # the LE identity is the BR/EDR address
        conn = await car.connect(public, transport=PhysicalTransport.BR_EDR, timeout=T)
        await asyncio.wait_for(conn.authenticate(), T)
        pce = await open_pce(conn)
        assert (await pce.get(probe()))[1].phonebook_size == 4
    finally:
        await transport.close()
        await iphone.stop()
