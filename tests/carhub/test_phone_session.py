"""``carhub.phone_session`` over a hand-written fake transport: pin, store, ack, walk away.

The phone is a real ``PhoneConnection``; the car's session runs on a real ``Engine`` with
SQLite in ``tmp_path``. A ``FailingStore`` stands in for a full disk, and reports each
commit so a test can compare it with what the car had written to the phone by then.
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
    ApplyBatch,
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
from protocol.messages import Message
from protocol.sync import EMPTY_ANCHOR, ContactsAck, ContactsBatch, ContactsSender
from shell.transport import BaseTransport, TransportError


class FakeTransport(BaseTransport):
    """One end of an in-memory pipe; ``None`` in a queue means the other end closed."""

    def __init__(
        self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None], name: str
    ) -> None:
        self._in, self._out = inbox, outbox
        self.name, self.peer = name, "192.0.2.5:40000"
        self.closed = False
        self.written: list[bytes] = []  # every chunk sent, in order

    @classmethod
    def pair(cls, name: str = "lan") -> tuple[FakeTransport, FakeTransport]:
        a: asyncio.Queue[bytes | None] = asyncio.Queue()
        b: asyncio.Queue[bytes | None] = asyncio.Queue()
        return cls(a, b, name), cls(b, a, name)

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise TransportError("closed")
        self.written.append(data)
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
            self._in.put_nowait(None)  # a pending recv of our own ends too, as on a WebSocket


class FailingStore(Store):
    """A store whose disk is full for pins and/or contacts batches."""

    fail_pin = False
    fail_batch = False
    on_commit: Callable[[ApplyBatch], None] | None = None  # called once a batch is committed

    def add_phone(self, *args: object, **kwargs: object) -> None:
        if self.fail_pin:
            raise StoreError("database or disk is full")
        super().add_phone(*args, **kwargs)  # type: ignore[arg-type]

    def apply_synced(self, *args: object, **kwargs: object) -> None:
        if self.fail_batch:
            raise StoreError("database or disk is full")
        super().apply_synced(*args, **kwargs)  # type: ignore[arg-type]
        if self.on_commit is not None:
            batch = args[1]
            assert isinstance(batch, ApplyBatch)
            self.on_commit(batch)


class Phone:
    """A real ``PhoneConnection`` on the test's end of the pipe."""

    def __init__(self, engine: Engine, name: str = "lan", peer: str | None = None) -> None:
        self.identity = Identity.generate()
        self.conn = PhoneConnection(self.identity, "Pixel", now=time.time())
        self.end, self.car_end = FakeTransport.pair(name)
        if peer is not None:
            self.car_end.peer = peer  # where the car sees the phone connect from
        self.session = PhoneSession(engine, self.car_end)
        self.task = asyncio.create_task(self.session.run())
        self.events: list[ConnectionEvent] = []
        self.chunks_in = 0  # chunks received from the car so far

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
                self.chunks_in += 1
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
    # The reason only: the storage detail is car internals, for the car's log (PROTOCOL.md 3).
    assert ev.error.reason is Reason.PEER_ERROR and "storage" not in str(ev.error)
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


class AckRecordingSender(ContactsSender):
    """The phone's real sender, noting in which car chunk (1-based) each ack arrived."""

    def __init__(self, phone: Phone, contacts: list[Contact], **kw: int) -> None:
        super().__init__(contacts, {}, None, **kw)
        self.phone = phone
        self.acked_in: dict[int, int] = {}  # seq -> number of the chunk that carried its ack

    def receive(self, msg: Message) -> list[Message]:
        if isinstance(msg, ContactsAck):
            # ``until`` records each journal at once, so a reply is fed to the sender before
            # the next chunk is read: ``chunks_in`` is the chunk this ack came in.
            self.acked_in[msg.seq] = self.phone.chunks_in
        return super().receive(msg)


def record_commits(engine: Engine, phone: Phone) -> dict[int, int]:
    """Map each committed batch's seq to how many chunks the car had written by then."""
    written_at: dict[int, int] = {}
    failing(engine).on_commit = lambda b: written_at.setdefault(b.seq, len(phone.car_end.written))
    return written_at


def assert_acks_after_commits(written_at: dict[int, int], acked_in: dict[int, int]) -> None:
    assert written_at and set(acked_in) == set(written_at)
    for seq, written in written_at.items():
        assert acked_in[seq] > written, f"the ack for batch {seq} went out before its commit"


async def test_a_batch_is_committed_before_its_ack(engine: Engine) -> None:
    phone = Phone(engine)
    await phone.pair(engine)
    await phone.until(lambda e: isinstance(e, SessionEstablished))
    written_at = record_commits(engine, phone)
    sender = AckRecordingSender(phone, [Contact(uid="u1", fn="Ada")])
    phone.conn.start_sync(sender)
    ev = await phone.until(lambda e: isinstance(e, SyncCompleted | ConnectionFailed))
    assert isinstance(ev, SyncCompleted)
    events = phone.events
    assert any(isinstance(e, SyncCompleted) for e in events)
    total, contacts = engine.store.contacts(phone.identity.device_id)
    assert total == 1 and contacts[0].fn == "Ada"
    assert_acks_after_commits(written_at, sender.acked_in)
    await phone.stop()


async def test_every_batch_of_a_windowed_sync_is_committed_before_its_ack(
    engine: Engine,
) -> None:
    phone = Phone(engine)
    await phone.pair(engine)
    await phone.until(lambda e: isinstance(e, SessionEstablished))
    written_at = record_commits(engine, phone)
    contacts = [Contact(uid=f"u{i}", fn=f"Contact {i}") for i in range(9)]
    # 2 a batch, 3 in flight: 5 batches, several of them arriving in one chunk.
    sender = AckRecordingSender(phone, contacts, batch_size=2, window=3)
    phone.conn.start_sync(sender)
    ev = await phone.until(lambda e: isinstance(e, SyncCompleted | ConnectionFailed))
    assert isinstance(ev, SyncCompleted) and ev.summary.batches == 5
    assert sorted(written_at) == [1, 2, 3, 4, 5]
    assert_acks_after_commits(written_at, sender.acked_in)
    assert engine.store.contacts(phone.identity.device_id)[0] == 9
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


@pytest.mark.parametrize(
    ("name", "peer", "key"),
    [
        ("lan", "10.0.0.5:51234", "10.0.0.5"),
        ("lan", "10.0.0.5:40001", "10.0.0.5"),
        ("ble", "AA:BB:CC:DD:EE:FF", "AA:BB:CC:DD:EE:FF"),
        ("ble", "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:01"),
    ],
)
def test_peer_key_is_the_lan_host_or_the_whole_ble_address(name: str, peer: str, key: str) -> None:
    link, _ = FakeTransport.pair(name)
    link.peer = peer
    assert peer_key(link) == key


async def rejected_attempt(engine: Engine, peer: str) -> None:
    """A fresh phone identity asks to pair from ``peer`` and the car user rejects the code."""
    phone = Phone(engine, peer=peer)
    await phone.until(lambda e: isinstance(e, PairingCode))
    assert engine.decide(next(iter(engine.pending)), accepted=False)
    ev = await phone.until(lambda e: isinstance(e, ConnectionFailed))
    assert isinstance(ev, ConnectionFailed) and ev.error.reason is not Reason.RATE_LIMITED
    await phone.stop()


async def test_pairing_rate_limit_keys_on_the_lan_host_not_the_port(engine: Engine) -> None:
    for port in range(51230, 51235):  # 5 failures, each from a new id and a new port
        await rejected_attempt(engine, f"10.0.0.5:{port}")
    sixth = Phone(engine, peer="10.0.0.5:51299")
    ev = await sixth.until(lambda e: isinstance(e, ConnectionFailed | PairingCode))
    assert isinstance(ev, ConnectionFailed) and ev.error.reason is Reason.RATE_LIMITED
    assert engine.pending == {}
    await sixth.stop()
    # Another host is not held to 10.0.0.5's failures.
    other = Phone(engine, peer="10.0.0.6:51230")
    assert isinstance(await other.until(lambda e: isinstance(e, PairingCode)), PairingCode)
    await other.stop()


def test_peer_key_strips_the_lan_port_but_not_a_ble_address() -> None:
    lan, _ = FakeTransport.pair("lan")
    ble, _ = FakeTransport.pair("ble")
    ble.peer = "AA:BB:CC:DD:EE:FF"
    assert peer_key(lan) == "192.0.2.5" and peer_key(ble) == "AA:BB:CC:DD:EE:FF"


class VirtualClock:
    """Wall-clock time plus one virtual second per reading, so timeouts pass in ms."""

    def __init__(self) -> None:
        self.start, self.readings = time.time(), 0

    def __call__(self) -> float:
        self.readings += 1
        return self.start + self.readings


async def test_a_quiet_link_is_closed_by_the_car_after_the_setup_timeout(engine: Engine) -> None:
    phone_end, car_end = FakeTransport.pair("lan")
    session = PhoneSession(engine, car_end)
    # The session builds its own driver; speed its ticker and clock up (SETUP_TIMEOUT is 10 s).
    session._driver._clock = VirtualClock()
    session._driver._tick_seconds = 0.01
    task = asyncio.create_task(session.run())
    try:
        data = await asyncio.wait_for(phone_end.recv(), 2)  # the car says why: timeout
        assert b"timeout" in data
        # ... and then hangs up, without waiting for the phone to.
        await asyncio.wait_for(asyncio.shield(task), 1)
        assert car_end.closed
    finally:
        await phone_end.close()
        await asyncio.wait_for(task, 2)


async def test_a_contact_with_a_4_mb_name_is_refused_and_nothing_is_stored(
    engine: Engine,
) -> None:
    phone = Phone(engine)
    await phone.pair(engine)
    await phone.until(lambda e: isinstance(e, SessionEstablished))
    # A phone that ignores the bounds: 4 MB of name compress to a few KB, one frame.
    huge = Contact(uid="big", fn="x" * 4_000_000)
    phone.conn.send(
        ContactsBatch(1, EMPTY_ANCHOR, [Contact(uid="ok", fn="Ada"), huge], [], [], True)
    )
    ev = await phone.until(lambda e: isinstance(e, ConnectionFailed))
    assert isinstance(ev, ConnectionFailed) and ev.error.reason is Reason.BAD_BATCH
    assert engine.store.contacts(phone.identity.device_id)[0] == 0  # the API serves nothing
    await phone.stop()
