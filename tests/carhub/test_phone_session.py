"""``carhub.phone_session`` over a hand-written fake transport: pin, store, ack, walk away.

The phone is a real ``PhoneConnection``; the car's session runs on a real ``Engine`` with
SQLite in ``tmp_path``. A ``FailingStore`` stands in for a full disk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from carhub.engine import CarConfig, Engine
from carhub.phone_session import PhoneSession, peer_key
from carhub.store import Store, StoreError
from protocol.connection import (
    ConnectionEvent,
    ConnectionFailed,
    PairingCode,
    PairingComplete,
    PhoneConnection,
    SessionEstablished,
    SyncCompleted,
    SyncJournal,
    SyncProgress,
)
from protocol.contacts import Contact
from protocol.errors import Reason
from protocol.identity import Identity
from protocol.sync import ContactsSender
from shell.transport import BaseTransport, TransportError


class FakeTransport(BaseTransport):
    """One end of an in-memory pipe; ``None`` in a queue means the other end closed."""

    def __init__(
        self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None], name: str
    ) -> None:
        self._in, self._out = inbox, outbox
        self.name, self.peer = name, "192.0.2.5:40000"
        self.closed = False

    @classmethod
    def pair(cls, name: str = "lan") -> tuple[FakeTransport, FakeTransport]:
        a: asyncio.Queue[bytes | None] = asyncio.Queue()
        b: asyncio.Queue[bytes | None] = asyncio.Queue()
        return cls(a, b, name), cls(b, a, name)

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise TransportError("closed")
        await self._out.put(data)

    async def recv(self) -> bytes:
        data = await self._in.get()
        if data is None:
            self.closed = True
            raise TransportError("peer closed")
        return data

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._out.put_nowait(None)


class FailingStore(Store):
    """A store whose disk is full for pins and/or contacts batches."""

    fail_pin = False
    fail_batch = False

    def add_phone(self, *args: object, **kwargs: object) -> None:
        if self.fail_pin:
            raise StoreError("database or disk is full")
        super().add_phone(*args, **kwargs)  # type: ignore[arg-type]

    def apply_synced(self, *args: object, **kwargs: object) -> None:
        if self.fail_batch:
            raise StoreError("database or disk is full")
        super().apply_synced(*args, **kwargs)  # type: ignore[arg-type]


class Phone:
    """A real ``PhoneConnection`` on the test's end of the pipe."""

    def __init__(self, engine: Engine, name: str = "lan") -> None:
        self.identity = Identity.generate()
        self.conn = PhoneConnection(self.identity, "Pixel", now=time.time())
        self.end, car_end = FakeTransport.pair(name)
        self.session = PhoneSession(engine, car_end)
        self.task = asyncio.create_task(self.session.run())
        self.events: list[ConnectionEvent] = []

    async def until(self, want: Callable[[ConnectionEvent], bool]) -> ConnectionEvent:
        async with asyncio.timeout(5):
            while True:
                while (ev := self.conn.next_event()) is not None:
                    self.events.append(ev)
                    if isinstance(ev, SyncJournal):  # nothing to persist in this test
                        self.conn.journal_recorded()
                    if want(ev):
                        return ev
                if out := self.conn.data_to_send():
                    await self.end.send(out)
                try:
                    data = await self.end.recv()
                except TransportError:
                    return ConnectionFailed(TransportError("closed"))  # type: ignore[arg-type]
                self.conn.receive_data(data, time.time())

    async def pair(self, engine: Engine) -> None:
        await self.until(lambda e: isinstance(e, PairingCode))
        self.conn.confirm_pairing(True, time.time())
        engine.decide(next(iter(engine.pending)), accepted=True)

    async def stop(self) -> None:
        await self.end.close()
        await asyncio.wait_for(self.task, 5)  # the session ends without an exception


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = FailingStore(tmp_path / "carhub.sqlite3")
    eng = Engine(CarConfig(name="Test Car", state_dir=tmp_path), Identity.generate(), store)
    eng.open_pairing(0)
    yield eng
    await eng.shutdown()
    store.close()


def failing(engine: Engine) -> FailingStore:
    assert isinstance(engine.store, FailingStore)
    return engine.store


async def test_pair_then_session_opens_the_sync(engine: Engine) -> None:
    phone = Phone(engine)
    await phone.pair(engine)
    await phone.until(lambda e: isinstance(e, SessionEstablished))
    assert [p.id for p in engine.store.phones()] == [phone.identity.device_id]
    assert phone.identity.device_id in engine.connected
    assert phone.session.transport_name == "lan"
    await phone.stop()
    assert engine.connected == {}


async def test_storage_failure_while_pinning_never_half_pairs(engine: Engine) -> None:
    failing(engine).fail_pin = True
    phone = Phone(engine)
    await phone.pair(engine)
    ev = await phone.until(lambda e: isinstance(e, ConnectionFailed | PairingComplete))
    assert isinstance(ev, ConnectionFailed)
    assert ev.error.reason is Reason.PEER_ERROR and "storage" in str(ev.error)
    assert not any(isinstance(e, PairingComplete) for e in phone.events)  # pinned nothing
    assert engine.store.phones() == []
    await phone.stop()
    # The slot is free again for the next phone.
    assert engine.admission.request(object(), "next", "", time.time()) is None


async def sync_one(phone: Phone) -> list[ConnectionEvent]:
    sender = ContactsSender([Contact(uid="u1", fn="Ada")], {}, None)
    phone.conn.start_sync(sender)
    await phone.until(lambda e: isinstance(e, SyncCompleted | ConnectionFailed))
    return phone.events


async def test_a_batch_is_committed_before_its_ack(engine: Engine) -> None:
    phone = Phone(engine)
    await phone.pair(engine)
    await phone.until(lambda e: isinstance(e, SessionEstablished))
    events = await sync_one(phone)
    assert any(isinstance(e, SyncCompleted) for e in events)
    total, contacts = engine.store.contacts(phone.identity.device_id)
    assert total == 1 and contacts[0].fn == "Ada"
    await phone.stop()


async def test_storage_failure_on_a_batch_sends_no_ack(engine: Engine) -> None:
    phone = Phone(engine)
    await phone.pair(engine)
    await phone.until(lambda e: isinstance(e, SessionEstablished))
    failing(engine).fail_batch = True
    events = await sync_one(phone)
    failed = [e for e in events if isinstance(e, ConnectionFailed)]
    assert failed and failed[0].error.reason is Reason.PEER_ERROR
    # The phone's sender saw no ack: it reports progress only on one.
    assert not any(isinstance(e, SyncProgress | SyncCompleted) for e in events)
    assert engine.store.contacts(phone.identity.device_id)[0] == 0
    await phone.stop()


async def test_walking_away_mid_pairing_frees_the_slot(engine: Engine) -> None:
    phone = Phone(engine)
    await phone.until(lambda e: isinstance(e, PairingCode))
    assert engine.admission.request(object(), "other", "", time.time()) is not None  # busy
    await phone.stop()
    assert engine.pending == {}
    assert engine.admission.request(object(), "other", "", time.time()) is None


def test_peer_key_strips_the_lan_port_but_not_a_ble_address() -> None:
    lan, _ = FakeTransport.pair("lan")
    ble, _ = FakeTransport.pair("ble")
    ble.peer = "AA:BB:CC:DD:EE:FF"
    assert peer_key(lan) == "192.0.2.5" and peer_key(ble) == "AA:BB:CC:DD:EE:FF"
