"""The car as AMS/ANCS client of an iPhone over BLE, in one process on a LocalRadio: bonding
by numeric comparison, now playing, media commands, notifications, reconnect, unpair."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from carhub.apple import AppleHandle, apple_phone_id
from carhub.ble import BleCarServer, BleLink
from carhub.views import Notification
from protocol.apple.ams import RemoteCommand
from protocol.apple.ancs import ActionId, EventFlags
from protocol.media import NowPlaying
from radio import LocalRadio
from tests.carhub.apple_ble_iphone import FakeIPhone

DEVICE_ID = "c0ffee0123456789"
INFO: dict[str, object] = {"id": DEVICE_ID, "name": "Golf", "model": "VW", "version": 1, "lan": []}
NOTE = {
    0: "com.apple.MobileSMS",
    1: "Ann",
    2: "",
    3: "See you at 8",
    5: "20240229T081500",
    6: "Reply",
    7: "Clear",
}
ACTIONS = EventFlags.POSITIVE_ACTION | EventFlags.NEGATIVE_ACTION


class Events:
    """A recording AppleEvents double (the engine's side)."""

    def __init__(self) -> None:
        self.may_bond = True
        self.accept: bool | None = True  # None: never answer
        self.calls: list[tuple[str, Any]] = []
        self.bonded: dict[str, str] = {}
        self.handles: dict[str, AppleHandle] = {}
        self.playing: list[NowPlaying] = []
        self.notes: dict[tuple[str, int], Notification] = {}
        self.unpair: list[Callable[[str], None]] = []
        self.changed = asyncio.Event()

    def _note(self, name: str, value: Any) -> None:
        self.calls.append((name, value))
        self.changed.set()

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def apple_may_bond(self) -> bool:
        return self.may_bond

    def apple_pairing_requested(
        self,
        phone_id: str,
        phone_name: str,
        code: str,
        expires_at: float,
        decide: Callable[[bool], None],
    ) -> Callable[[], None]:
        self._note("requested", (phone_id, phone_name, code, expires_at))
        if self.accept is not None:
            asyncio.get_running_loop().call_soon(decide, self.accept)
        return lambda: self._note("withdrawn", phone_id)

    def apple_pairing_failed(self, phone_id: str, reason: str) -> None:
        self._note("failed", reason)

    def apple_bonded(self, phone_id: str, phone_name: str) -> None:
        self.bonded[phone_id] = phone_name
        self._note("bonded", phone_id)

    def apple_is_bonded(self, phone_id: str) -> bool:
        return phone_id in self.bonded

    def apple_connected(self, phone_id: str, handle: AppleHandle) -> None:
        self.handles[phone_id] = handle
        self._note("connected", tuple(handle.profiles))

    def apple_disconnected(self, phone_id: str, handle: AppleHandle) -> None:
        self.handles.pop(phone_id, None)
        self._note("disconnected", phone_id)

    def apple_now_playing(self, phone_id: str, np: NowPlaying, received_at_ms: int) -> None:
        self.playing.append(np)
        self._note("now_playing", np.title)

    def apple_notification(self, notification: Notification) -> None:
        self.notes[(notification.phone_id, notification.uid)] = notification
        self._note("notification", notification.uid)

    def apple_notification_removed(self, phone_id: str, uid: int) -> None:
        self.notes.pop((phone_id, uid), None)
        self._note("removed", uid)

    def apple_notifications_reset(self, phone_id: str) -> None:
        self.notes = {k: v for k, v in self.notes.items() if k[0] != phone_id}
        self._note("reset", phone_id)

    def on_unpair(self, listener: Callable[[str], None]) -> None:
        self.unpair.append(listener)

    async def wait(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (result := check()):
            self.changed.clear()
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; calls: {self.calls}"
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.1))
            except TimeoutError:
                pass
        return result


async def _links(link: BleLink) -> None:
    link.session_established()
    try:
        while True:
            await link.send(await link.recv())
    except ConnectionError:
        pass


def make_car(air: LocalRadio, events: Events, state: Path, **kw: Any) -> BleCarServer:
    return BleCarServer(
        air,
        name="Golf",
        device_id=DEVICE_ID,
        info=INFO,
        on_link=_links,
        apple=events,
        state_dir=state,
        **kw,
    )


@pytest.fixture
async def air() -> LocalRadio:
    return LocalRadio()


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def car(air: LocalRadio, events: Events, tmp_path: Path) -> AsyncIterator[BleCarServer]:
    server = make_car(air, events, tmp_path)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def phone(air: LocalRadio) -> AsyncIterator[FakeIPhone]:
    iphone = FakeIPhone(air)
    await iphone.power_on()
    iphone.add_note(7, NOTE, ACTIONS)
    yield iphone
    await iphone.close()


def phone_id_of(phone: FakeIPhone) -> str:
    assert phone.device is not None
    return apple_phone_id(str(phone.device.public_address))


async def bond(car: BleCarServer, events: Events, phone: FakeIPhone) -> str:
    await phone.connect(car.address)
    pid = phone_id_of(phone)
    await events.wait(lambda: pid in events.handles)
    await asyncio.wait_for(events.handles[pid].started.wait(), 10)  # type: ignore[attr-defined]
    return pid


async def test_security_request_only_after_insufficient_authentication_then_bond(
    car: BleCarServer, events: Events, phone: FakeIPhone, tmp_path: Path
) -> None:
    pid = await bond(car, events, phone)
    # The phone refused an ATT request first; only then did the car ask for security.
    assert phone.log.index("refused") < phone.log.index("security_request")
    requested = [v for n, v in events.calls if n == "requested"]
    assert len(requested) == 1 and requested[0][2] == phone.codes[0]
    assert requested[0][1] == "Test iPhone" and requested[0][3] > time.time()
    assert events.bonded == {pid: "Test iPhone"}
    assert events.handles[pid].profiles == ("ams", "ancs")
    bonds = tmp_path / "bonds.json"
    assert stat.S_IMODE(os.stat(bonds).st_mode) == 0o600
    assert (
        phone.device is not None
        and str(phone.device.public_address).split("/")[0] in bonds.read_text()
    )


async def test_now_playing_with_a_truncated_title_and_every_media_command(
    car: BleCarServer, events: Events, phone: FakeIPhone
) -> None:
    pid = await bond(car, events, phone)
    full = "A title far too long for one AMS notification"
    np = await events.wait(
        lambda: next((p for p in events.playing if p.title == full and p.duration_ms), None)
    )
    assert np.artists == ["Artist One"] and np.album == "Album One" and np.duration_ms == 201500
    assert any(
        entry.startswith("attribute:0202") for entry in phone.log
    )  # re-read via Entity Attribute
    handle = events.handles[pid]
    await events.wait(lambda: handle.media_commands() == {"play", "pause", "next"})
    await handle.media_command("next")
    await events.wait(lambda: events.playing[-1].title == "Second")
    await handle.media_command("pause")
    await events.wait(lambda: events.playing[-1].state == "paused")
    await handle.media_command("play")
    assert phone.commands == [RemoteCommand.NEXT_TRACK, RemoteCommand.PAUSE, RemoteCommand.PLAY]


async def test_notifications_added_removed_and_acted_on(
    car: BleCarServer, events: Events, phone: FakeIPhone
) -> None:
    pid = await bond(car, events, phone)
    pre = await events.wait(lambda: events.notes.get((pid, 7)))
    assert (pre.app_id, pre.app_name, pre.title, pre.message) == (
        "com.apple.MobileSMS",
        "Messages",
        "Ann",
        "See you at 8",
    )
    assert (pre.date, pre.category, pre.positive_action, pre.negative_action) == (
        "2024-02-29T08:15:00",
        "social",
        "Reply",
        "Clear",
    )
    await phone.post(8, {0: "com.apple.MobileSMS", 1: "Bob", 3: "hi", 5: "20240301T090000"})
    new = await events.wait(lambda: events.notes.get((pid, 8)))
    assert new.positive_action is None and new.negative_action is None and new.title == "Bob"
    await phone.remove(8)
    await events.wait(lambda: (pid, 8) not in events.notes)
    await events.handles[pid].notification_action(7, "positive")
    await events.wait(lambda: (pid, 7) not in events.notes)
    assert [(a.uid, a.action) for a in phone.actions] == [(7, ActionId.POSITIVE)]


def stored_keys(state: Path) -> str:
    bonds = state / "bonds.json"
    return bonds.read_text() if bonds.exists() else ""


@pytest.mark.parametrize("how", ["reject", "window_closed"])
async def test_a_refused_bond_stores_nothing(
    car: BleCarServer, events: Events, phone: FakeIPhone, tmp_path: Path, how: str
) -> None:
    if how == "reject":
        events.accept = False
    else:
        events.may_bond = False
    await phone.connect(car.address)
    reason = await events.wait(lambda: next((v for n, v in events.calls if n == "failed"), None))
    assert ("rejected" in reason) if how == "reject" else ("window is closed" in reason), reason
    await events.wait(lambda: "disconnected" in phone.log)
    assert events.bonded == {} and events.handles == {}
    assert phone.device is not None
    assert str(phone.device.public_address).split("/")[0] not in stored_keys(tmp_path)
    assert await phone.keys.get_all() == []
    if how == "window_closed":
        assert "requested" not in events.names()


async def test_reconnect_after_a_car_restart_from_a_new_rpa_needs_no_code(
    air: LocalRadio, events: Events, phone: FakeIPhone, tmp_path: Path
) -> None:
    car = make_car(air, events, tmp_path)
    await car.start()
    try:
        pid = await bond(car, events, phone)
        first_rpa = phone.rpa
        await events.wait(lambda: (pid, 7) in events.notes)
        await phone.disconnect()
        await events.wait(lambda: pid not in events.handles)
    finally:
        await car.stop()
    assert (pid, 7) in events.notes  # the BLE side resets nothing on a disconnect
    events.calls.clear()
    car = make_car(air, events, tmp_path)  # a new process: bonds come from bonds.json
    await car.start()
    try:
        await phone.connect(car.address)
        assert phone.rpa != first_rpa
        await events.wait(lambda: pid in events.handles)
        assert "requested" not in events.names() and len(phone.codes) == 1
        assert "encrypted_bonded" in phone.log, str(phone.log)
        # Notifications are forgotten, then re-read; now playing is refreshed.
        await events.wait(lambda: "reset" in events.names())
        await events.wait(lambda: (pid, 7) in events.notes)
        assert events.names().index("reset") < events.names().index("notification")
        await events.wait(lambda: "now_playing" in events.names())
    finally:
        await car.stop()


async def test_unpair_erases_the_bond_and_disconnects(
    car: BleCarServer, events: Events, phone: FakeIPhone, tmp_path: Path
) -> None:
    pid = await bond(car, events, phone)
    events.bonded.pop(pid)
    for listener in events.unpair:
        listener(pid)
    await events.wait(lambda: pid not in events.handles)
    assert phone.device is not None
    await events.wait(
        lambda: str(phone.device.public_address).split("/")[0] not in stored_keys(tmp_path)
    )  # type: ignore[union-attr]


async def test_malformed_data_is_dropped_and_the_car_keeps_serving(
    car: BleCarServer, events: Events, phone: FakeIPhone, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await bond(car, events, phone)
    await events.wait(lambda: (pid, 7) in events.notes)
    for bad in (b"", b"\x02", b"\x09\x00\x00x", b"\x02\x07\x00x", b"\x00\x01\x00nonsense"):
        await phone.notify(phone.update, bad)
    for bad in (b"\x00", b"\x07" * 8, b"\x00\x00\x04\x01"):
        await phone.notify(phone.ns, bad)
    await phone.notify(phone.ds, b"\x00\xff\xff\xff\xff\x01\xff\xff")  # a stray Data Source chunk
    await phone.notify(phone.remote, b"\x00\x01\x63")
    await phone.post(10, {0: "com.apple.MobileSMS", 1: "still here", 5: "bad date"})
    note = await events.wait(lambda: events.notes.get((pid, 10)))
    # A date the car cannot read becomes the car's time of arrival, still ISO 8601.
    assert note.title == "still here" and note.date[:4].isdigit() and note.date[10] == "T"
    assert abs(time.mktime(time.strptime(note.date, "%Y-%m-%dT%H:%M:%S")) - time.time()) < 60
    assert pid in events.handles
    await events.handles[pid].media_command("next")
    await events.wait(lambda: events.playing and events.playing[-1].title == "Second")
    assert "dropped" in caplog.text
    assert "Traceback" not in caplog.text


async def test_a_carhub_phone_syncs_while_an_iphone_is_connected(
    air: LocalRadio, car: BleCarServer, events: Events, phone: FakeIPhone
) -> None:
    from phone_bridge.ble import BleTransport, BumbleRadio

    pid = await bond(car, events, phone)
    radio = BumbleRadio(air)
    try:
        transport = await BleTransport.connect(car.address, radio=radio)
        try:
            await transport.send(b"hello car")
            got = b""
            while len(got) < 9:
                got += await transport.recv()
            assert got == b"hello car"
            assert pid in events.handles  # the iPhone stays connected meanwhile
        finally:
            await transport.close()
    finally:
        await radio.close()


async def test_an_iphone_is_not_dropped_by_the_subscribe_deadline(
    air: LocalRadio, events: Events, phone: FakeIPhone, tmp_path: Path
) -> None:
    car = make_car(air, events, tmp_path, subscribe_timeout=0.3)
    await car.start()
    try:
        pid = await bond(car, events, phone)
        await asyncio.sleep(0.6)
        assert pid in events.handles and "disconnected" not in phone.log
    finally:
        await car.stop()
