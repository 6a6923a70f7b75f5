"""phone_bridge.engine: the phone's flows, through its public functions.

``load_contacts`` reads files in ``tmp_path``. The session flows (``open_session``,
``do_pair``, ``do_pair_oob``, ``sync_once``) talk to a real car in this event loop, as in
``test_bridge.py``: ``CarRunner`` with mDNS off, WebSocket and dashboard on 127.0.0.1,
SQLite in ``tmp_path``; what the car stored is checked on the car. The flows raise foreign
errors too; the CLI maps every failure with ``explain``, so the exit code a user would see
is ``explain(exc).code``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from carhub.engine import CarConfig
from carhub.runner import CarRunner, RunOptions
from phone_bridge.client import CarLink
from phone_bridge.connect import ConnectOptions, Target
from phone_bridge.engine import (
    EXIT_BAD_INPUT,
    EXIT_NOT_FOUND,
    EXIT_NOT_PAIRED,
    EXIT_PAIRING,
    BridgeError,
    backoff_delays,
    do_pair,
    do_pair_oob,
    explain,
    load_contacts,
    open_session,
    sync_once,
)
from phone_bridge.state import PairedCar, PhoneState
from protocol.identity import PairingUri

LAN = ConnectOptions(transport="lan")
PHOTO = base64.b64encode(bytes(range(256))).decode("ascii")  # any bytes will do


def _card(uid: str, fn: str, extra: str = "") -> str:
    head = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nTEL:+15550100\r\n"
    return f"{head}{extra}END:VCARD\r\n"


def _vcf(path: Path, cards: dict[str, str]) -> Path:
    path.write_text("".join(_card(uid, fn) for uid, fn in cards.items()))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running_car(state_dir: Path) -> AsyncIterator[CarRunner]:
    """A real car on 127.0.0.1 whose pairing window is open and which accepts every code."""
    runner = CarRunner(
        CarConfig(name="Engine Car", state_dir=state_dir, pairing_open=True, auto_confirm=True),
        RunOptions(listen="127.0.0.1:0", ui="127.0.0.1:0", mdns=False),
    )
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


class CodeShown:
    """The phone user's answer to the pairing code: records each code, then says ``answer``."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.codes: list[str] = []

    async def __call__(self, code: str) -> bool:
        self.codes.append(code)
        return self.answer


def _endpoint(car: CarRunner) -> str:
    return f"127.0.0.1:{car.ws_port}"


async def _paired(phone: PhoneState, car: CarRunner) -> PairedCar:
    """Pair ``phone`` with ``car`` by code and close the link."""
    target = Target(_endpoint(car), endpoint=_endpoint(car))
    paired, link = await do_pair(phone, target, LAN, "P", CodeShown())
    await link.aclose()
    return paired


async def _session(phone: PhoneState, car: CarRunner, paired: PairedCar) -> CarLink:
    target = Target(_endpoint(car), endpoint=_endpoint(car), paired=paired)
    return await open_session(phone, target, LAN, "P")


def _car_contacts(car: CarRunner, phone: PhoneState) -> dict[str, str]:
    total, contacts = car.store.contacts(phone.identity.device_id, limit=1000)
    assert total == len(contacts)
    return {c.uid: c.fn for c in contacts}


# -- load_contacts ------------------------------------------------------------------------
def test_an_unreadable_file_is_bad_input_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "contacts.vcf"
    with pytest.raises(BridgeError) as e:
        load_contacts(missing)
    assert e.value.code == EXIT_BAD_INPUT
    assert str(e.value) == f"cannot read {missing}: No such file or directory"  # one line


def test_a_directory_is_unreadable_too(tmp_path: Path) -> None:
    with pytest.raises(BridgeError) as e:
        load_contacts(tmp_path)
    assert str(e.value) == f"cannot read {tmp_path}: Is a directory"
    assert e.value.code == EXIT_BAD_INPUT


@pytest.mark.parametrize("text", ["not a vcard\n", "FN:Ann\r\nTEL:1\r\n"])
def test_a_file_that_is_not_a_vcard_syncs_nothing(tmp_path: Path, text: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(text)
    with pytest.raises(BridgeError) as e:
        load_contacts(path)
    assert str(e.value) == f"{path} is not a vCard file; nothing was synced"
    assert e.value.code == EXIT_BAD_INPUT


@pytest.mark.parametrize("text", ["", "\r\n  \n"])
def test_an_empty_file_is_refused_unless_deletes_are_allowed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.vcf"
    path.write_text(text)
    with pytest.raises(BridgeError) as e:
        load_contacts(path)
    assert e.value.code == EXIT_BAD_INPUT
    assert "empty" in str(e.value) and "--allow-deletes" in str(e.value)
    assert load_contacts(path, allow_empty=True).contacts == []  # empties the car's copy


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("BEGIN:VCARD\r\nVERSION:3.0\r\n", "ends inside a card"),
        ("BEGIN:VCARD\r\nFN:Ann\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:Bo", "ends inside a card"),
        ("BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n", "no card in"),
        ("BEGIN:VCARD\r\nno colon\r\nEND:VCARD\r\n" * 3, "no card in"),
    ],
)
def test_a_cut_or_unreadable_file_syncs_nothing(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.vcf"
    path.write_text(text)
    for allow_empty in (False, True):  # --allow-deletes does not make a bad file good
        with pytest.raises(BridgeError) as e:
            load_contacts(path, allow_empty=allow_empty)
        assert e.value.code == EXIT_BAD_INPUT
        assert says in str(e.value) and "nothing was synced" in str(e.value)
        assert "\n" not in str(e.value)


def test_malformed_cards_are_errors_with_line_numbers_and_the_rest_import(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.vcf"
    path.write_text(
        _card("u1", "Ann")  # lines 1-6
        + "BEGIN:VCARD\r\nVERSION:3.0\r\nthis line has no separator\r\nEND:VCARD\r\n"  # 7-10
        + _card("u2", "Bob")  # 11-16
        + "BEGIN:VCARD\r\nVERSION:3.0\r\nNOTE:nothing to call\r\nEND:VCARD\r\n"  # 17-20
        + _card("u3", "Cy")  # 21-26
    )
    loaded = load_contacts(path)
    assert [(c.uid, c.fn) for c in loaded.contacts] == [("u1", "Ann"), ("u2", "Bob"), ("u3", "Cy")]
    # The bad line costs its property; the card is skipped as nothing identifying is left.
    assert [(e.line, e.reason) for e in loaded.errors] == [
        (7, "card has no name, phone or email"),
        (17, "card has no name, phone or email"),
    ]
    assert [(e.line, e.reason) for e in loaded.warnings] == [(9, "line has no ':' separator")]


def test_a_photo_shared_by_two_cards_is_kept_once(tmp_path: Path) -> None:
    photo = f"PHOTO;ENCODING=b;TYPE=JPEG:{PHOTO}\r\n"
    path = tmp_path / "c.vcf"
    path.write_text(_card("u1", "Ann", photo) + _card("u2", "Bob", photo) + _card("u3", "Cy"))
    loaded = load_contacts(path)
    assert loaded.errors == []
    ann, bob, cy = loaded.contacts
    assert ann.photo and ann.photo == bob.photo
    assert cy.photo == b""
    assert list(loaded.photos) == [ann.photo]
    assert loaded.photos[ann.photo].data == bytes(range(256))


# -- pairing by code ------------------------------------------------------------------------
async def test_pairing_pins_the_car_here_and_lists_the_phone_there(tmp_path: Path) -> None:
    phone = PhoneState(tmp_path / "phone")
    decide = CodeShown()
    async with running_car(tmp_path / "car") as car:
        target = Target(_endpoint(car), endpoint=_endpoint(car))
        paired, link = await do_pair(phone, target, LAN, "Ann's phone", decide)
        try:  # the link it returns is already a session: the car shows the phone connected
            assert [p.connected for p in car.engine.phones()] == [True]
        finally:
            await link.aclose()
        car_id = car.engine.identity.device_id
        assert [re.fullmatch(r"\d{6}", code) is not None for code in decide.codes] == [True]
        assert paired.id == car_id
        assert paired.name == "Engine Car"
        assert paired.public_key == car.engine.identity.public_key.hex()
        assert paired.endpoint == _endpoint(car)
        assert phone.cars() == {car_id: paired}  # pinned in the state directory
        assert PhoneState(tmp_path / "phone").cars()[car_id].public_key == paired.public_key
        phones = car.engine.phones()
        assert [(p.id, p.name) for p in phones] == [(phone.identity.device_id, "Ann's phone")]


async def test_a_no_to_the_code_pins_nothing_and_is_a_pairing_failure(tmp_path: Path) -> None:
    phone = PhoneState(tmp_path / "phone")
    async with running_car(tmp_path / "car") as car:
        target = Target(_endpoint(car), endpoint=_endpoint(car))
        with pytest.raises(Exception) as e:
            await do_pair(phone, target, LAN, "P", CodeShown(answer=False))
        assert explain(e.value).code == EXIT_PAIRING
        assert phone.cars() == {}
        assert car.engine.phones() == []


async def test_pairing_with_nothing_listening_is_car_unreachable(tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{_free_port()}"
    target = Target(endpoint, endpoint=endpoint)
    with pytest.raises(Exception) as e:
        await do_pair(PhoneState(tmp_path / "phone"), target, LAN, "P", CodeShown())
    assert explain(e.value).code == EXIT_NOT_FOUND


# -- sessions -----------------------------------------------------------------------------
async def test_a_session_needs_a_paired_car(tmp_path: Path) -> None:
    target = Target("127.0.0.1:9", endpoint="127.0.0.1:9")
    with pytest.raises(BridgeError) as e:
        await open_session(PhoneState(tmp_path / "phone"), target, LAN, "P")
    assert str(e.value) == "not paired with 127.0.0.1:9; run 'pair' first"
    assert e.value.code == EXIT_NOT_PAIRED


async def test_a_session_with_nothing_listening_is_car_unreachable(tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{_free_port()}"
    gone = PairedCar(id="ab" * 8, name="Gone", public_key="11" * 32, endpoint=endpoint)
    target = Target(endpoint, endpoint=endpoint, paired=gone)
    with pytest.raises(Exception) as e:
        await open_session(PhoneState(tmp_path / "phone"), target, LAN, "P")
    assert explain(e.value).code == EXIT_NOT_FOUND


async def test_a_car_that_unpaired_the_phone_refuses_the_session(tmp_path: Path) -> None:
    phone = PhoneState(tmp_path / "phone")
    async with running_car(tmp_path / "car") as car:
        paired = await _paired(phone, car)
        link = await _session(phone, car, paired)  # known to the car: the session opens
        await link.aclose()
        assert car.engine.unpair(phone.identity.device_id)
        with pytest.raises(Exception) as e:
            await _session(phone, car, paired)
        err = explain(e.value)
        assert err.code == EXIT_NOT_PAIRED
        assert "refused the session: it does not know this phone or its key" in str(err)
        assert car.engine.phones() == []


# -- sync ---------------------------------------------------------------------------------
async def test_sync_once_adds_every_contact_then_sends_only_the_change(tmp_path: Path) -> None:
    cards = {f"u{i}": f"Person {i}" for i in range(5)}
    vcf = _vcf(tmp_path / "c.vcf", cards)
    phone = PhoneState(tmp_path / "phone")
    async with running_car(tmp_path / "car") as car:
        paired = await _paired(phone, car)
        link = await _session(phone, car, paired)
        try:
            progress: list[tuple[int, int]] = []
            first = await sync_once(
                phone, link, paired, load_contacts(vcf), lambda d, t: progress.append((d, t))
            )
        finally:
            await link.aclose()
        assert (first.added, first.changed, first.deleted, first.unchanged) == (5, 0, 0, 0)
        assert progress and progress[-1][0] == progress[-1][1]
        assert _car_contacts(car, phone) == cards
        assert phone.cars()[paired.id].last_sync is not None
        remembered = phone.snapshot(paired.id)  # what the phone now knows the car holds
        assert remembered is not None and sorted(remembered.digests) == sorted(cards)

        _vcf(vcf, {**cards, "u2": "Person Two"})
        link = await _session(phone, car, paired)
        try:
            again = await sync_once(phone, link, paired, load_contacts(vcf))
        finally:
            await link.aclose()
        assert (again.added, again.changed, again.deleted, again.unchanged) == (0, 1, 0, 4)
        assert _car_contacts(car, phone) == {**cards, "u2": "Person Two"}


async def test_a_later_sync_in_the_same_session_starts_from_the_last_ack(tmp_path: Path) -> None:
    cards = {"u1": "Ann", "u2": "Bob", "u3": "Cy"}
    vcf = _vcf(tmp_path / "c.vcf", cards)
    phone = PhoneState(tmp_path / "phone")
    async with running_car(tmp_path / "car") as car:
        paired = await _paired(phone, car)
        link = await _session(phone, car, paired)
        try:
            await sync_once(phone, link, paired, load_contacts(vcf))
            _vcf(vcf, {"u1": "Ann", "u2": "Bobby", "u4": "Di"})
            async with asyncio.timeout(5):  # no second ContactsState comes: do not wait for one
                later = await sync_once(phone, link, paired, load_contacts(vcf), first=False)
        finally:
            await link.aclose()
        assert (later.added, later.changed, later.deleted, later.unchanged) == (1, 1, 1, 1)
        assert _car_contacts(car, phone) == {"u1": "Ann", "u2": "Bobby", "u4": "Di"}


async def test_pairing_again_after_the_car_forgot_the_phone_sends_everything(
    tmp_path: Path,
) -> None:
    cards = {"u1": "Ann", "u2": "Bob"}
    vcf = _vcf(tmp_path / "c.vcf", cards)
    phone = PhoneState(tmp_path / "phone")
    async with running_car(tmp_path / "car") as car:
        paired = await _paired(phone, car)
        link = await _session(phone, car, paired)
        try:
            await sync_once(phone, link, paired, load_contacts(vcf))
        finally:
            await link.aclose()
        car.engine.unpair(phone.identity.device_id)  # erases the car's copy
        assert _car_contacts(car, phone) == {}
        paired = await _paired(phone, car)  # "run 'pair' again"
        assert phone.snapshot(paired.id) is None  # the old mirror is not trusted
        link = await _session(phone, car, paired)
        try:
            again = await sync_once(phone, link, paired, load_contacts(vcf))
        finally:
            await link.aclose()
        assert (again.added, again.unchanged) == (2, 0)
        assert _car_contacts(car, phone) == cards


# -- pairing by QR code ---------------------------------------------------------------------
async def test_a_scanned_code_pairs_without_a_code_and_only_once(tmp_path: Path) -> None:
    async with running_car(tmp_path / "car") as car:
        uri, _expires = car.engine.new_pairing_uri()
        target = Target(_endpoint(car), endpoint=_endpoint(car))
        first = PhoneState(tmp_path / "first")
        paired, link = await do_pair_oob(first, target, LAN, "First", uri, timeout=5.0)
        await link.aclose()
        assert paired.id == car.engine.identity.device_id == uri.device_id
        assert first.cars() == {paired.id: paired}
        assert [p.id for p in car.engine.phones()] == [first.identity.device_id]

        second = PhoneState(tmp_path / "second")
        with pytest.raises(Exception) as e:
            await do_pair_oob(second, target, LAN, "Second", uri, timeout=5.0)
        err = explain(e.value)
        assert err.code == EXIT_PAIRING
        assert "refused the scanned code" in str(err)
        assert second.cars() == {}
        assert [p.id for p in car.engine.phones()] == [first.identity.device_id]


async def test_a_code_for_another_car_is_refused_before_the_car_is_told_anything(
    tmp_path: Path,
) -> None:
    async with running_car(tmp_path / "car") as car:
        genuine, _ = car.engine.new_pairing_uri()
        other = PairingUri.create(PhoneState(tmp_path / "other").identity)  # not this car's key
        target = Target(_endpoint(car), endpoint=_endpoint(car))
        phone = PhoneState(tmp_path / "phone")
        with pytest.raises(Exception) as e:
            await do_pair_oob(phone, target, LAN, "P", other, timeout=5.0)
        err = explain(e.value)
        assert err.code == EXIT_PAIRING
        assert "does not match the scanned code" in str(err)
        assert phone.cars() == {}
        assert car.engine.phones() == []
        # Nothing of the secret reached the car: its own code still pairs.
        paired, link = await do_pair_oob(phone, target, LAN, "P", genuine, timeout=5.0)
        await link.aclose()
        assert paired.id == genuine.device_id


# -- backoff_delays -------------------------------------------------------------------------
def test_backoff_doubles_from_half_a_second_with_jitter_and_stays_under_the_cap() -> None:
    nominal = [0.5, 1.0, 2.0, 4.0, 8.0]
    for _ in range(200):
        delays = backoff_delays()
        assert len(delays) == len(nominal)
        for delay, n in zip(delays, nominal, strict=True):
            assert n * 0.8 <= delay <= n * 1.2
        assert max(delays) < 15.0


def test_backoff_is_jittered() -> None:
    runs = {tuple(backoff_delays()) for _ in range(20)}
    assert len(runs) > 1  # a fleet of phones does not reconnect in step


def test_backoff_honours_base_and_cap() -> None:
    delays = backoff_delays(base=1.0, cap=5.0)
    assert len(delays) == 3  # 1, 2, 4; 8 is past the cap
    for delay, n in zip(delays, (1.0, 2.0, 4.0), strict=True):
        assert n * 0.8 <= delay <= n * 1.2
