"""A PBAP 1.1 PSE (``PhoneBookServer(pse_features=V11_FEATURES)``): it never sends the
DatabaseIdentifier or version counters, whatever the PCE's CONNECT claims."""

from __future__ import annotations

import pytest

from protocol.obex import BodyChunk, Connected, GetDone, ObexClient
from protocol.pbap import (
    CAR_FEATURES,
    PBAP_TARGET,
    AppParams,
    Feature,
    connect_app_params,
    decode_app_params,
    probe,
    pull_phone_book,
    pull_vcard_entry,
    pull_vcard_listing,
    set_phone_book,
)
from protocol.pbap.requests import PbapGet
from protocol.pbap.server import PSE_FEATURES, V11_FEATURES, Book, PhoneBookServer

DB = bytes.fromhex("00112233445566778899aabbccddeeff")
ALL = 0xFFFFFFFF  # a PCE that claims every feature bit


def book() -> Book:
    cards = tuple(
        (f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:P{i}\r\nN:P{i};;;;\r\nTEL:+1 555 {i:04d}\r\n"
         "END:VCARD\r\n").encode() for i in range(4))
    return Book(cards, (), DB, (7).to_bytes(16, "big"), (9).to_bytes(16, "big"))


class Session:
    def __init__(self, pse_features: int, pce_features: int) -> None:
        self.server = PhoneBookServer(book(), pse_features=pse_features)
        self.client = ObexClient()
        events = self.run(self.client.connect(PBAP_TARGET, connect_app_params(pce_features)))
        assert isinstance(events[0], Connected)

    def run(self, request: bytes) -> list[object]:
        out: list[object] = []
        while request:
            self.server.receive_data(request)
            out += self.client.receive_data(self.server.data_to_send())
            request = self.client.data_to_send()
        return out

    def get(self, g: PbapGet) -> tuple[bytes, AppParams]:
        events = self.run(self.client.get(g.name, g.type, g.app_params))
        assert isinstance(events[-1], GetDone), events
        body = b"".join(e.data for e in events if isinstance(e, BodyChunk))
        return body, decode_app_params(events[-1].app_params)


def no_counters(p: AppParams) -> bool:
    return (p.database_identifier, p.primary_version_counter,
            p.secondary_version_counter) == (None, None, None)


@pytest.mark.parametrize("pce", [int(CAR_FEATURES), ALL])
def test_a_11_pse_sends_no_counters_even_to_a_pce_claiming_them(pce: int) -> None:
    assert pce & Feature.FOLDER_VERSION_COUNTERS and pce & Feature.DATABASE_IDENTIFIER
    s = Session(V11_FEATURES, pce)
    _, p = s.get(probe())
    assert p.phonebook_size == 4 and no_counters(p)
    body, p = s.get(pull_phone_book(max_count=10))
    assert body.count(b"BEGIN:VCARD") == 4 and no_counters(p)
    for step in set_phone_book("telecom/pb"):
        s.run(s.client.setpath(None if step.kind == "parent" else step.name,
                               parent=step.kind == "parent"))
    body, p = s.get(pull_vcard_listing(""))
    assert body.count(b"<card ") == 4 and no_counters(p)
    body, p = s.get(pull_vcard_entry("2.vcf"))
    assert b"FN:P2" in body and no_counters(p)


def test_the_same_book_on_a_12_pse_does_send_them() -> None:
    _, p = Session(PSE_FEATURES, int(CAR_FEATURES)).get(probe())
    assert p.database_identifier == DB
    assert p.primary_version_counter == (7).to_bytes(16, "big")
    assert p.secondary_version_counter == (9).to_bytes(16, "big")
