"""A minimal PBAP phone for the car's Classic tests: a Bumble BR/EDR device with an SDP
record of a PSE, an RFCOMM server and ``protocol.obex.ObexServer`` answering from a list
of cards, with hooks to cut, corrupt, refuse or change the book mid-pull.

Not the project's emulated phone (``phone_bridge/pbap``): just enough of one to drive the
car, and a log of every GET it answered (``gets``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bumble import hci, rfcomm, sdp
from bumble.core import UUID, PhysicalTransport
from bumble.device import Connection, Device
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate

from protocol.obex import ClientConnected, GetRequest, ObexServer, ResponseCode
from protocol.pbap import PBAP_TARGET, AppParams, decode_app_params, encode_app_params
from radio import LocalRadio, open_hci

PSE = UUID.from_16_bits(0x112F)
PROFILE = UUID.from_16_bits(0x1130)
IDENTITY = ("VERSION", "FN", "N", "NICKNAME", "ORG", "UID", "X-BT-UID", "PHOTO")


def card(name: str, number: str, *, photo: str = "", version: str = "3.0") -> bytes:
    lines = [
        "BEGIN:VCARD",
        f"VERSION:{version}",
        f"FN:{name}",
        f"N:{name};;;;",
        f"TEL;TYPE=CELL:{number}",
    ]
    if photo:
        lines.append(f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}")
    lines.append("END:VCARD")
    return ("\r\n".join(lines) + "\r\n").encode()


def select(block: bytes, selector: int | None) -> bytes:
    """Apply a PropertySelector the simple way: PHOTO_ONLY keeps identity and PHOTO lines,
    NO_PHOTO drops PHOTO lines."""
    if selector is None:
        return block
    photo_only = not selector & (1 << 7)  # no TEL asked for: the photo pass
    out = []
    for line in block.split(b"\r\n"):
        name = line.split(b":", 1)[0].split(b";", 1)[0].decode()
        if (
            name in ("BEGIN", "END", "")
            or (photo_only and name in IDENTITY)
            or (not photo_only and name != "PHOTO")
        ):
            out.append(line)
    return b"\r\n".join(out)


class Delegate(PairingDelegate):
    def __init__(self, phone: FakePbapPhone) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self.phone = phone

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self.phone.codes.append(f"{number:06d}")
        return True


@dataclass
class Faults:
    """What the phone does wrong, at the n-th GET it answers (1-based; 0: never)."""

    cut_at: int = 0  # half of the first response, then the ACL drops
    garbage_at: int = 0  # a response with a bad length
    refuse_at: int = 0  # Forbidden
    change_after: int = 0  # the book's counters change after this GET
    silent_at: int = 0  # never answers


@dataclass
class FakePbapPhone:
    air: LocalRadio
    book: list[bytes]  # the owner card first
    calls: bytes = b""
    counters: bool = True  # PBAP 1.2 counters and PbapSupportedFeatures in the record
    # The record's PbapSupportedFeatures: by default no vCard selecting (bit 4), so the car
    # runs the full photo pass; 0x21F adds it (the PSE then honours vCardSelector PHOTO).
    features: int = 0x20F
    refuse_selector: bool = False  # answer a GET with a vCardSelector with Bad Request
    name: str = "Test Android"
    faults: Faults = field(default_factory=Faults)
    codes: list[str] = field(default_factory=list)
    gets: list[tuple[str, AppParams]] = field(default_factory=list)
    connects: list[bytes] = field(default_factory=list)
    primary: int = 1
    device: Device | None = None
    connection: Connection | None = None
    transport: Any = None
    _dlc: Any = None

    async def power_on(self) -> None:
        self.transport = await open_hci(self.air)
        device = Device.with_hci(
            self.name, hci.Address.ANY_RANDOM, self.transport.source, self.transport.sink
        )
        device.classic_enabled = True
        device.le_enabled = False
        device.connectable = True
        device.keystore = MemoryKeyStore()
        device.pairing_config_factory = lambda _c: PairingConfig(
            sc=True, mitm=True, bonding=True, delegate=Delegate(self)
        )
        server = rfcomm.Server(device)
        channel = server.listen(self._accept)
        records = rfcomm.make_service_sdp_records(0x10001, channel, PSE)
        records.append(
            sdp.ServiceAttribute(
                sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID,
                sdp.DataElement.sequence(
                    [
                        sdp.DataElement.sequence(
                            [
                                sdp.DataElement.uuid(PROFILE),
                                sdp.DataElement.unsigned_integer_16(
                                    0x0102 if self.counters else 0x0101
                                ),
                            ]
                        )
                    ]
                ),
            )
        )
        if self.counters:
            records.append(
                sdp.ServiceAttribute(0x0317, sdp.DataElement.unsigned_integer_32(self.features))
            )
        device.sdp_service_records = {0x10001: records}
        await device.power_on()
        self.device = device

    @property
    def address(self) -> str:
        assert self.device is not None
        return self.device.public_address.to_string(False)

    async def connect_to(self, car_address: str, *, authenticate: bool = True) -> Connection:
        assert self.device is not None
        peer = hci.Address(car_address, hci.Address.PUBLIC_DEVICE_ADDRESS)
        self.connection = await self.device.connect(peer, transport=PhysicalTransport.BR_EDR)
        if authenticate:
            try:
                await self.connection.authenticate()
            except Exception as exc:  # the car refused: the test looks at the car's side
                self.codes.append(f"refused {type(exc).__name__}")
        return self.connection

    async def disconnect(self) -> None:
        for connection in list(self.device.connections.values()) if self.device else []:
            try:
                await connection.disconnect()
            except Exception:
                pass

    async def close(self) -> None:
        await self.disconnect()
        if self.transport is not None:
            await self.transport.close()

    # -- PSE -------------------------------------------------------------------
    def counter(self) -> bytes:
        return self.primary.to_bytes(16, "big")

    def _accept(self, dlc: rfcomm.DLC) -> None:
        server = ObexServer(PBAP_TARGET)
        self._dlc = dlc

        def on_data(data: bytes) -> None:
            for event in server.receive_data(data):
                if isinstance(event, ClientConnected):
                    self.connects.append(event.app_params)
                elif isinstance(event, GetRequest) and self._answer(server, event):
                    return
            out = server.data_to_send()
            if out:
                dlc.write(out)

        dlc.sink = on_data

    def _answer(self, server: ObexServer, get: GetRequest) -> bool:
        """Answer one GET; True when the fault hook took over the channel."""
        params = decode_app_params(get.app_params)
        self.gets.append((get.name or "", params))
        n, f = len(self.gets), self.faults
        if n == f.silent_at:
            return True
        if n == f.garbage_at:
            self._dlc.write(b"\xa0\x00\x02")  # a length shorter than the header
            return True
        if n == f.refuse_at or (self.refuse_selector and params.vcard_selector):
            server.respond(ResponseCode.FORBIDDEN if n == f.refuse_at else ResponseCode.BAD_REQUEST)
            return False
        body, answer = self._book(get.name or "", params)
        if n == f.change_after:
            self.primary += 1
        server.respond_get(body, encode_app_params(answer))
        if n == f.cut_at:
            out = server.data_to_send()
            self._dlc.write(out[: len(out) // 2])
            asyncio.get_running_loop().call_later(
                0.05, lambda: asyncio.ensure_future(self.disconnect())
            )
            return True
        return False

    def _book(self, name: str, params: AppParams) -> tuple[bytes, AppParams]:
        if name == "telecom/cch.vcf":
            return self.calls, AppParams()
        counted = (
            AppParams(
                primary_version_counter=self.counter(),
                secondary_version_counter=self.counter(),
                database_identifier=b"\x42" * 16,
            )
            if self.counters and self.connects and self.connects[-1]
            else AppParams()
        )
        book = self.book
        if params.vcard_selector:  # only PHOTO is ever asked for: cards with a PHOTO line
            book = [c for c in book if b"\r\nPHOTO" in c]
        if params.max_list_count == 0:
            return b"", AppParams(
                phonebook_size=len(book),
                primary_version_counter=counted.primary_version_counter,
                secondary_version_counter=counted.secondary_version_counter,
                database_identifier=counted.database_identifier,
            )
        start = params.list_start_offset or 0
        count = params.max_list_count if params.max_list_count is not None else 0xFFFF
        cards = [select(c, params.property_selector) for c in book[start : start + count]]
        return b"".join(cards), counted
