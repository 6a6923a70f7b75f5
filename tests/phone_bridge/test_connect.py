"""phone_bridge.connect.resolve: which car ``CAR`` (id prefix, name, HOST:PORT, none) picks.

Discovery's two radio sources are replaced by ``FakeAir``, a hand-written stand-in that
lists the cars "on the air" and records what it was asked; merging, matching and the
paired-car bookkeeping run for real, with a real ``PhoneState`` in ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import phone_bridge.discovery as discovery
from phone_bridge.connect import CarNotFound, ConnectOptions, resolve
from phone_bridge.discovery import CarSighting
from phone_bridge.state import PairedCar, PhoneState

GOLF = "0123456789abcdef"
POLO = "0123ffff00000000"  # shares the prefix "0123" with GOLF
TAXI = "fedcba9876543210"
KEY = "11" * 32


def _mdns(car_id: str, name: str, endpoint: str, *, pairing: bool = False) -> CarSighting:
    return CarSighting(
        id=car_id, name=name, version=1, pairing_open=pairing, endpoint=endpoint, via=["mdns"]
    )


class FakeAir:
    """The cars mDNS and BLE would report, and the calls discovery made to them."""

    def __init__(self, mdns: list[CarSighting], ble: list[CarSighting] | None = None) -> None:
        self.mdns, self.ble = mdns, ble or []
        self.calls: list[tuple[str, str | None]] = []  # (source, want)

    async def discover_mdns(
        self, timeout: float, interface: str | None = None, want: str | None = None
    ) -> list[CarSighting]:
        self.calls.append(("mdns", want))
        return [dataclasses.replace(s, via=list(s.via)) for s in self.mdns]  # merge mutates

    async def discover_ble(
        self, timeout: float, radio: str | None, want: str | None = None
    ) -> list[CarSighting]:
        self.calls.append(("ble", want))
        return [dataclasses.replace(s, via=list(s.via)) for s in self.ble]

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeAir:
        monkeypatch.setattr(discovery, "discover_mdns", self.discover_mdns)
        monkeypatch.setattr(discovery, "_discover_ble", self.discover_ble)
        return self


AIR = [
    _mdns(GOLF, "Golf", "10.0.0.1:7800"),
    _mdns(POLO, "Polo", "10.0.0.2:7800", pairing=True),
    _mdns(TAXI, "Taxi", "10.0.0.3:7800"),
]
LAN = ConnectOptions(transport="lan", discover_timeout=3.0)


@pytest.fixture
def state(tmp_path: Path) -> PhoneState:
    return PhoneState(tmp_path)


@pytest.fixture
def air(monkeypatch: pytest.MonkeyPatch) -> FakeAir:
    return FakeAir(AIR).install(monkeypatch)


@pytest.mark.parametrize(
    ("query", "chosen"),
    [
        (GOLF, GOLF),
        ("0123456", GOLF),
        ("0123f", POLO),
        ("FEDC", TAXI),  # ids are typed in any case
        ("golf", GOLF),  # names match case-insensitively...
        ("TAXI", TAXI),
    ],
)
async def test_id_prefix_or_name_picks_that_car(
    air: FakeAir, state: PhoneState, query: str, chosen: str
) -> None:
    target = await resolve(query, state, LAN)
    assert target.sighting is not None and target.sighting.id == chosen
    assert target.endpoint == next(s.endpoint for s in AIR if s.id == chosen)
    assert target.paired is None
    assert air.calls == [("mdns", query)]  # mDNS may stop as soon as this car answers


@pytest.mark.parametrize("query", ["Gol", "olf", "0124", "Golf Car", "123456789abcdef"])
async def test_no_partial_names_and_no_infix_ids(
    air: FakeAir, state: PhoneState, query: str
) -> None:
    with pytest.raises(CarNotFound, match=rf"car '{query}' not found over mDNS within 3 s"):
        await resolve(query, state, LAN)


async def test_hostport_skips_discovery_and_finds_the_paired_car(
    air: FakeAir, state: PhoneState
) -> None:
    state.save_car(PairedCar(id=GOLF, name="Golf", public_key=KEY, endpoint="10.0.0.9:7800"))
    target = await resolve("10.0.0.9:7800", state, LAN)
    assert (target.endpoint, target.paired and target.paired.id) == ("10.0.0.9:7800", GOLF)
    other = await resolve("127.0.0.1:7801", state, LAN)
    assert (other.endpoint, other.paired) == ("127.0.0.1:7801", None)
    assert air.calls == []


async def test_a_paired_car_is_found_by_its_name_and_dialled_where_it_is_now(
    air: FakeAir, state: PhoneState
) -> None:
    state.save_car(PairedCar(id=POLO, name="Polo", public_key=KEY, endpoint="10.0.0.99:1"))
    target = await resolve("polo", state, LAN)
    assert target.paired is not None and target.paired.id == POLO
    assert target.endpoint == "10.0.0.2:7800"  # the fresh mDNS answer beats the memory
    assert air.calls == [("mdns", POLO)]  # discovery waits for the full id, not the name


async def test_a_paired_car_out_of_sight_keeps_its_remembered_endpoint(
    monkeypatch: pytest.MonkeyPatch, state: PhoneState
) -> None:
    FakeAir([]).install(monkeypatch)
    state.save_car(PairedCar(id=GOLF, name="Golf", public_key=KEY, endpoint="10.0.0.9:7800"))
    target = await resolve("0123", state, LAN)
    assert (target.endpoint, target.sighting) == ("10.0.0.9:7800", None)
    assert target.paired is not None and target.label == f"Golf ({GOLF})"


async def test_no_query_prefers_a_paired_car_then_an_open_window(
    air: FakeAir, state: PhoneState
) -> None:
    first = await resolve(None, state, LAN)
    assert first.sighting is not None and first.sighting.id == POLO  # its window is open
    assert first.query == "Polo" and first.paired is None
    state.save_car(PairedCar(id=TAXI, name="Taxi", public_key=KEY))
    second = await resolve(None, state, LAN)
    assert second.sighting is not None and second.sighting.id == TAXI
    assert second.paired is not None and second.endpoint == "10.0.0.3:7800"


async def test_no_query_and_no_car_says_so(
    monkeypatch: pytest.MonkeyPatch, state: PhoneState
) -> None:
    FakeAir([]).install(monkeypatch)
    with pytest.raises(CarNotFound, match=r"^any car not found over mDNS within 3 s$"):
        await resolve(None, state, LAN)


async def test_ble_only_finds_a_paired_car_by_its_short_id(
    monkeypatch: pytest.MonkeyPatch, state: PhoneState
) -> None:
    seen = CarSighting(
        id=GOLF[:8], name="Golf", version=1, ble_address="C0:11:22:33:44:55", via=["ble"]
    )
    air = FakeAir(AIR, [seen]).install(monkeypatch)
    state.save_car(PairedCar(id=GOLF, name="Golf", public_key=KEY))
    target = await resolve(GOLF, state, ConnectOptions(transport="ble"))
    assert [source for source, _ in air.calls] == ["ble"]  # no mDNS on --transport ble
    assert target.paired is not None and target.paired.id == GOLF
    assert (target.ble_address, target.ble_id, target.endpoint) == (
        "C0:11:22:33:44:55", GOLF[:8], "",
    )  # fmt: skip
    with pytest.raises(CarNotFound, match=r"car 'Taxi' not found over mDNS or BLE"):
        await resolve("Taxi", state, ConnectOptions(transport="ble"))


async def test_auto_with_a_radio_merges_both_sources(
    monkeypatch: pytest.MonkeyPatch, state: PhoneState
) -> None:
    seen = CarSighting(id=GOLF[:8], name="Golf", ble_address="C0:11:22:33:44:55", via=["ble"])
    air = FakeAir(AIR, [seen]).install(monkeypatch)
    target = await resolve("golf", state, ConnectOptions(radio="tcp-client:127.0.0.1:7000"))
    assert sorted(source for source, _ in air.calls) == ["ble", "mdns"]
    assert target.sighting is not None and target.sighting.via == ["ble", "mdns"]
    assert (target.endpoint, target.ble_address) == ("10.0.0.1:7800", "C0:11:22:33:44:55")
    without_radio = FakeAir(AIR, [seen]).install(monkeypatch)
    await resolve("golf", state, ConnectOptions())
    assert [source for source, _ in without_radio.calls] == ["mdns"]  # never a real radio


async def test_an_ambiguous_prefix_is_refused(air: FakeAir, state: PhoneState) -> None:
    with pytest.raises(CarNotFound, match=r"ambiguous.*'Golf' \(0123456789abcdef\).*'Polo'"):
        await resolve("0123", state, LAN)


async def test_two_paired_cars_under_one_prefix_are_refused_before_discovery(
    air: FakeAir, state: PhoneState
) -> None:
    state.save_car(PairedCar(id=GOLF, name="Golf", public_key=KEY, endpoint="10.0.0.9:7800"))
    state.save_car(PairedCar(id=POLO, name="Polo", public_key=KEY, endpoint="10.0.0.8:7800"))
    with pytest.raises(CarNotFound, match="ambiguous"):
        await resolve("0123", state, LAN)
    assert air.calls == []


async def test_one_car_seen_by_full_and_short_id_is_not_ambiguous(
    monkeypatch: pytest.MonkeyPatch, state: PhoneState
) -> None:
    short = dataclasses.replace(_mdns(GOLF[:8], "Golf", ""), via=["ble"])
    FakeAir([_mdns(GOLF, "Golf", "10.0.0.1:7800"), short]).install(monkeypatch)
    target = await resolve("golf", state, LAN)
    assert target.sighting is not None and target.sighting.id == GOLF
