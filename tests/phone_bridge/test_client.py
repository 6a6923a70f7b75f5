"""``phone_bridge.client`` over a hand-written fake transport, against a sans-I/O car.

The car is a real ``CarConnection`` pumped by a small task (it commits nothing: a dict is
its store); the phone side is the real ``CarLink`` with its connection driver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from phone_bridge.client import CarLink, LinkClosed, sync_contacts
from protocol.admission import PairingAdmission
from protocol.connection import ApplyBatch, CarConnection, PhoneConnection, SessionEstablished
from protocol.contacts import Contact
from protocol.errors import ProtocolError, Reason
from protocol.identity import Identity
from protocol.sync import SnapshotEdit, replay_journal
from shell.transport import BaseTransport, TransportError

CAR, PHONE = Identity.generate(), Identity.generate()


class FakeTransport(BaseTransport):
    """One end of an in-memory pipe that logs every send into a shared ``log``."""

    name, peer = "lan", "192.0.2.1:4711"

    def __init__(
        self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None]
    ) -> None:
        self._in, self._out = inbox, outbox
        self.closed = False
        self.log: list[str] = []

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise TransportError("closed")
        self.log.append("send")
        await self._out.put(data)

    async def recv(self) -> bytes:
        data = await self._in.get()
        if data is None:
            raise TransportError("the car went away")
        return data

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._out.put_nowait(None)


class Car:
    """A sans-I/O car pumped over the other end of the pipe."""

    def __init__(self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None]):
        self._in, self._out = inbox, outbox
        self.conn = CarConnection(
            CAR, "Car", lookup_peer={PHONE.device_id: PHONE.public_key}.get,
            admission=PairingAdmission(), now=time.time(),
        )  # fmt: skip
        self.contacts: dict[str, Contact] = {}
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while (data := await self._in.get()) is not None:
            self.conn.receive_data(data, time.time())
            while (ev := self.conn.next_event()) is not None:
                if isinstance(ev, ApplyBatch):
                    self.contacts.update((c.uid, c) for c in ev.upserts)
                    self.conn.batch_stored(ev)
            if out := self.conn.data_to_send():
                await self._out.put(out)

    async def hang_up(self) -> None:
        await self._out.put(None)
        self.task.cancel()


@pytest.fixture
async def pair() -> AsyncIterator[tuple[CarLink, Car, FakeTransport]]:
    a: asyncio.Queue[bytes | None] = asyncio.Queue()
    b: asyncio.Queue[bytes | None] = asyncio.Queue()
    transport, car = FakeTransport(a, b), Car(b, a)
    conn = PhoneConnection(PHONE, "Pixel", car_public_key=CAR.public_key, now=time.time())
    link = CarLink(transport, conn)
    await link.__aenter__()
    yield link, car, transport
    await link.aclose()
    car.task.cancel()


async def test_enter_sends_the_hello_and_counts_bytes(pair: tuple[CarLink, Car, FakeTransport]) -> None:  # fmt: skip  # noqa: E501
    link, _, transport = pair
    assert transport.log[0] == "send" and link.bytes_sent > 0  # the Hello, before any reply
    await link.wait_for(SessionEstablished, 5)
    assert link.bytes_received > 0 and link.car_id == CAR.device_id


async def test_sync_records_the_journal_before_each_reply(
    pair: tuple[CarLink, Car, FakeTransport],
) -> None:
    link, car, transport = pair
    await link.wait_for(SessionEstablished, 5)
    start = len(transport.log)  # the Hello and the handshake
    contacts = [Contact(uid=f"u{i}", fn=f"Person {i}") for i in range(1200)]
    edits: list[SnapshotEdit] = []

    def record(batch: list[SnapshotEdit]) -> None:
        transport.log.append("record")
        edits.extend(batch)

    progress: list[tuple[int, int]] = []
    summary = await sync_contacts(
        link, contacts, {}, None, record, lambda d, t: progress.append((d, t)), 5.0
    )
    assert summary.added == 1200 and car.contacts == {c.uid: c for c in contacts}
    assert progress[-1] == (1200, 1200)
    # Write-ahead: every send of the sync follows a record of the journal.
    log = transport.log[start:]
    assert log[0] == "record"
    assert all(log[i - 1] == "record" for i, x in enumerate(log) if x == "send")
    snapshot = replay_journal(None, edits)
    assert snapshot is not None and len(snapshot.digests) == 1200
    assert link.mirror[1] == 1200


async def test_a_dropped_transport_is_link_closed(pair: tuple[CarLink, Car, FakeTransport]) -> None:  # fmt: skip  # noqa: E501
    link, car, _ = pair
    await link.wait_for(SessionEstablished, 5)
    await car.hang_up()
    with pytest.raises(LinkClosed):
        await link.next_event(5)


async def test_a_car_error_is_a_typed_protocol_error(pair: tuple[CarLink, Car, FakeTransport]) -> None:  # fmt: skip  # noqa: E501
    link, car, _ = pair
    await link.wait_for(SessionEstablished, 5)
    car.conn.abort(Reason.PEER_ERROR, "car storage: disk full")
    await car._out.put(car.conn.data_to_send())
    with pytest.raises(ProtocolError) as info:
        await link.wait_for(SessionEstablished, 5)
    assert info.value.reason is Reason.PEER_ERROR and info.value.from_peer
