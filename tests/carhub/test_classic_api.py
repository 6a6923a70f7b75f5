# ruff: noqa: F811  (the engine and client fixtures of test_api are imported, then requested)
"""The REST API for Bluetooth Classic (PBAP) phones, through ``httpx.ASGITransport``.

The engine is real; the Classic side is ``FakeClassicSide``, fed through ``ClassicEvents``
as ``carhub.pbap`` feeds it.
"""

from __future__ import annotations

import httpx
import pytest

from carhub.api import create_app
from carhub.classic import CallEntry
from carhub.engine import Engine
from tests.carhub.apple_api_double import FakeAppleHandle
from tests.carhub.classic_api_double import FakeClassicHandle, FakeClassicSide, book_of, state_of
from tests.carhub.test_api import client, engine  # noqa: F401

PID = "a1b2c3d4e5f6"
ADDR = "A1:B2:C3:D4:E5:F6"
CALLS = [
    CallEntry("Bob", "+4411", "missed", "2026-03-01T09:15:00"),
    CallEntry("", "+4422", "outgoing", ""),
]


@pytest.fixture
def side(engine: Engine) -> FakeClassicSide:
    side = FakeClassicSide(engine, page_size=10)
    engine.classic_attach("00:1a:7d:da:71:13", side.connect)
    return side


@pytest.fixture
def pixel(engine: Engine, side: FakeClassicSide) -> FakeClassicHandle:
    engine.classic_bonded(PID, "Pixel 9")
    handle = FakeClassicHandle(ADDR)
    engine.classic_connected(PID, handle)
    side.pull(PID, book_of(25), state_of(1), owner="Ann Owner", calls=CALLS)
    return handle


async def test_status_says_the_classic_address_or_null(
    client: httpx.AsyncClient, engine: Engine, side: FakeClassicSide
) -> None:
    assert (await client.get("/api/status")).json()["classic"] == "00:1A:7D:DA:71:13"
    engine.classic_detach()
    assert (await client.get("/api/status")).json()["classic"] is None


async def test_a_classic_phone_is_listed_with_its_contacts_and_owner(
    client: httpx.AsyncClient, pixel: FakeClassicHandle
) -> None:
    [phone] = (await client.get("/api/phones")).json()
    last_sync = phone.pop("last_sync")
    assert phone == {
        "id": PID, "name": "Pixel 9", "fingerprint": ADDR, "connected": True,
        "transport": "classic", "contacts": 25, "profiles": ["pbap"], "owner": "Ann Owner",
    }  # fmt: skip
    assert isinstance(last_sync, float)
    page = (await client.get(f"/api/phones/{PID}/contacts", params={"limit": 3})).json()
    assert page["total"] == 25
    assert [c["name"] for c in page["items"]] == ["Contact 0000", "Contact 0001", "Contact 0002"]
    found = (await client.get(f"/api/phones/{PID}/contacts", params={"q": "owner"})).json()
    assert found == {"total": 0, "items": []}  # the owner card is not a contact


async def test_the_calls_endpoint_lists_the_recent_calls_newest_first(
    client: httpx.AsyncClient, pixel: FakeClassicHandle
) -> None:
    r = await client.get(f"/api/phones/{PID}/calls")
    assert r.status_code == 200
    assert r.json() == [
        {"name": "Bob", "number": "+4411", "type": "missed", "date": "2026-03-01T09:15:00"},
        {"name": "", "number": "+4422", "type": "outgoing", "date": ""},
    ]


async def test_calls_of_other_phones_are_empty_and_of_unknown_ids_404(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    engine.apple_bonded("0a0b0c0d0e0f", "iPhone")
    assert (await client.get("/api/phones/0a0b0c0d0e0f/calls")).json() == []
    for path in ("/api/phones/ffffffffffff/calls", "/api/phones/ffffffffffff/contacts"):
        r = await client.get(path)
        assert r.status_code == 404 and "no paired phone" in r.json()["detail"]


async def test_one_entry_for_an_address_bonded_over_le_and_classic(
    client: httpx.AsyncClient, engine: Engine, pixel: FakeClassicHandle
) -> None:
    engine.apple_bonded(PID, "Ann's iPhone")
    engine.apple_connected(PID, FakeAppleHandle())
    [phone] = (await client.get("/api/phones")).json()
    assert phone["profiles"] == ["ams", "ancs", "pbap"]
    assert (phone["contacts"], phone["owner"], phone["connected"]) == (25, "Ann Owner", True)


async def test_connect_answers_202_and_hands_the_address_to_the_classic_side(
    client: httpx.AsyncClient, side: FakeClassicSide
) -> None:
    r = await client.post("/api/classic/connect", json={"address": "a1:b2:c3:d4:e5:f6"})
    assert r.status_code == 202 and r.json() == {"address": ADDR}
    assert side.connects == [ADDR]


@pytest.mark.parametrize("address", ["A1:B2:C3:D4:E5", "A1-B2-C3-D4-E5-F6", "a1b2c3d4e5f6", "",
                                     "G1:B2:C3:D4:E5:F6", "A1:B2:C3:D4:E5:F6\n"])  # fmt: skip
async def test_connect_refuses_a_bad_address_with_400(
    client: httpx.AsyncClient, side: FakeClassicSide, address: str
) -> None:
    r = await client.post("/api/classic/connect", json={"address": address})
    assert r.status_code == 400 and side.connects == []


async def test_connect_answers_409_while_classic_is_off(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    r = await client.post("/api/classic/connect", json={"address": ADDR})
    assert r.status_code == 409 and "Classic is off" in r.json()["detail"]


async def test_delete_unpairs_a_classic_phone(
    client: httpx.AsyncClient, engine: Engine, pixel: FakeClassicHandle
) -> None:
    erased: list[str] = []
    engine.on_unpair(erased.append)
    assert (await client.delete(f"/api/phones/{PID}")).json() == {"ok": True}
    assert erased == [PID] and pixel.closed == "unpaired"
    assert (await client.get("/api/phones")).json() == []
    assert (await client.get(f"/api/phones/{PID}/calls")).status_code == 404
    assert (await client.delete(f"/api/phones/{PID}")).status_code == 404


async def test_the_new_fields_and_route_are_in_the_openapi_document(engine: Engine) -> None:
    doc = create_app(engine).openapi()
    schemas = doc["components"]["schemas"]
    assert "owner" in schemas["Phone"]["properties"]
    assert "classic" in schemas["Status"]["properties"]
    assert schemas["CallItem"]["properties"]["type"]["enum"] == ["incoming", "outgoing", "missed"]
    connect = doc["paths"]["/api/classic/connect"]["post"]
    assert {"202", "400", "409"} <= set(connect["responses"])
    assert "calls" in doc["paths"]["/api/phones/{phone_id}/calls"]["get"]["description"]
