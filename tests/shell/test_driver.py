"""``shell.driver.ConnectionDriver`` over a hand-written fake transport and connection.

``FakeConnection`` is a scripted sans-I/O connection: each chunk it receives queues the
events and output the test gave it. Transport and connection share one ``log`` so a test
can check what happened in which order: ``("event", x)``, ``("write", bytes)``, ``("close",)``.
One test drives a real ``CarConnection`` to show a setup timeout firing on a quiet link.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

import pytest

from protocol.admission import PairingAdmission
from protocol.connection import CarConnection, ConnectionEvent, ConnectionFailed
from protocol.errors import ProtocolError, Reason, RemoteProtocolError
from protocol.framing import FrameDecoder
from protocol.identity import Identity
from protocol.messages import Error, decode
from shell.driver import ConnectionDriver
from shell.transport import BaseTransport, TransportError

Log = list[tuple[object, ...]]


class FakeTransport(BaseTransport):
    """Incoming chunks from a queue (``None`` = the peer closed); writes go to ``written``."""

    def __init__(self, log: Log | None = None) -> None:
        self.name, self.peer = "lan", "192.0.2.9:40000"
        self.incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.written: list[bytes] = []
        self.log: Log = log if log is not None else []
        self.closed = False
        self.close_calls = 0
        self.fail_send = False
        self.ended: TransportError | None = None

    async def send(self, data: bytes) -> None:
        if self.closed or self.fail_send:
            raise TransportError("link gone")
        self.written.append(data)
        self.log.append(("write", data))

    async def recv(self) -> bytes:
        data = await self.incoming.get()
        if data is None or self.closed:
            self.ended = TransportError("peer closed")
            raise self.ended
        return data

    async def close(self) -> None:
        self.close_calls += 1
        if not self.closed:
            self.closed = True
            self.log.append(("close",))
            self.incoming.put_nowait(None)  # wake a pending recv, as a real socket does


class FakeConnection:
    """A scripted ``SansIOConnection``: ``script[chunk]`` is the (events, output) it causes."""

    def __init__(self) -> None:
        self.script: dict[bytes, tuple[list[object], bytes]] = {}
        self.received: list[tuple[bytes, float]] = []
        self.ticks: list[float] = []
        self.closes: list[str] = []
        self.events: deque[object] = deque()
        self.out = bytearray()
        self.tick_error: Exception | None = None
        self.receive_error: ProtocolError | None = None

    def receive_data(self, data: bytes, now: float) -> None:
        if self.receive_error is not None:
            raise self.receive_error
        self.received.append((data, now))
        events, output = self.script.get(data, ([], b""))
        self.events.extend(events)
        self.out += output

    def tick(self, now: float) -> None:
        if self.tick_error is not None:
            raise self.tick_error
        self.ticks.append(now)

    def next_event(self) -> ConnectionEvent | None:
        return self.events.popleft() if self.events else None  # type: ignore[return-value]

    def data_to_send(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out

    def close(self, reason: str = "") -> None:
        self.closes.append(reason)
        self.out += b"bye:" + reason.encode()


class FakeClock:
    """Starts at ``now``; every reading moves it on by ``step`` seconds."""

    def __init__(self, now: float = 1000.0, step: float = 0.0) -> None:
        self.now, self.step = now, step

    def __call__(self) -> float:
        t = self.now
        self.now += self.step
        return t


def make_driver(
    on_event: Callable[[object], None] | None = None,
    *,
    tick: float = 60.0,
    clock: Callable[[], float] | None = None,
) -> tuple[ConnectionDriver, FakeTransport, FakeConnection, Log]:
    log: Log = []
    transport, conn = FakeTransport(log), FakeConnection()

    def record(ev: object) -> None:
        log.append(("event", ev))
        if on_event is not None:
            on_event(ev)

    driver = ConnectionDriver(transport, conn, record, clock=clock or FakeClock(), tick=tick)
    return driver, transport, conn, log


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(2):
        while not cond():
            await asyncio.sleep(0.001)


async def test_events_are_handed_out_in_order_before_what_they_caused_is_written() -> None:
    driver: ConnectionDriver

    def answer(ev: object) -> None:  # like batch_stored: the answer is queued by the handler
        driver.conn.out += b"ack:" + str(ev).encode() + b";"  # type: ignore[attr-defined]

    driver, transport, conn, log = make_driver(answer)
    conn.script[b"in1"] = (["e1", "e2"], b"reply;")
    conn.script[b"in2"] = (["e3"], b"")
    task = asyncio.create_task(driver.pump())
    transport.incoming.put_nowait(b"in1")
    transport.incoming.put_nowait(b"in2")
    transport.incoming.put_nowait(None)
    await asyncio.wait_for(task, 2)
    assert log == [
        ("event", "e1"),
        ("event", "e2"),
        ("write", b"reply;ack:e1;ack:e2;"),
        ("event", "e3"),
        ("write", b"ack:e3;"),
    ]
    assert [d for d, _ in conn.received] == [b"in1", b"in2"]
    assert all(now == 1000.0 for _, now in conn.received)  # the clock is passed as ``now``


async def test_pump_returns_the_transports_error_when_recv_ends() -> None:
    driver, transport, _, _ = make_driver()
    task = asyncio.create_task(driver.pump())
    transport.incoming.put_nowait(None)
    result = await asyncio.wait_for(task, 2)
    assert transport.ended is not None and result is transport.ended


async def test_pump_returns_none_when_the_owner_sets_closing() -> None:
    driver: ConnectionDriver

    def stop(ev: object) -> None:
        if ev == "bye":
            driver.closing = True

    driver, transport, conn, _ = make_driver(stop)
    conn.script[b"x"] = (["bye"], b"")
    task = asyncio.create_task(driver.pump())
    transport.incoming.put_nowait(b"x")  # and nothing after it: the pump must not wait
    assert await asyncio.wait_for(task, 2) is None
    assert [d for d, _ in conn.received] == [b"x"]


async def test_bytes_arriving_after_closing_is_set_are_not_fed() -> None:
    driver, transport, conn, _ = make_driver()
    task = asyncio.create_task(driver.pump())
    await asyncio.sleep(0.01)  # the pump is waiting in recv
    driver.closing = True
    transport.incoming.put_nowait(b"late")
    assert await asyncio.wait_for(task, 2) is None
    assert conn.received == [] and driver.bytes_received == 0


async def test_pump_returns_the_error_of_a_connection_that_already_failed() -> None:
    driver, transport, conn, _ = make_driver()
    conn.receive_error = RemoteProtocolError(Reason.TIMEOUT, "failed earlier")
    task = asyncio.create_task(driver.pump())
    transport.incoming.put_nowait(b"more")
    assert await asyncio.wait_for(task, 2) is conn.receive_error


async def test_a_handlers_protocol_error_is_logged_and_the_rest_still_handed_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failed = ConnectionFailed(RemoteProtocolError(Reason.PEER_ERROR, "gone"))

    def handler(ev: object) -> None:
        if ev == "answer me":
            raise ProtocolError(Reason.STATE, "connection failed meanwhile")

    driver, transport, conn, log = make_driver(handler)
    conn.script[b"a"] = (["answer me", failed], b"")
    conn.script[b"b"] = (["later"], b"")
    task = asyncio.create_task(driver.pump())
    with caplog.at_level(logging.WARNING, logger="shell.driver"):
        transport.incoming.put_nowait(b"a")
        transport.incoming.put_nowait(b"b")
        await until(lambda: ("event", "later") in log)
    assert [e for kind, *e in log if kind == "event"] == [["answer me"], [failed], ["later"]]
    assert any("connection failed meanwhile" in r.getMessage() for r in caplog.records)
    assert not task.done()  # the pump keeps going
    transport.incoming.put_nowait(None)
    assert isinstance(await asyncio.wait_for(task, 2), TransportError)


async def test_the_ticker_calls_tick_about_every_tick_seconds() -> None:
    clock = FakeClock(now=5.0, step=1.0)
    driver, transport, conn, _ = make_driver(tick=0.01, clock=clock)
    task = asyncio.create_task(driver.pump())
    await asyncio.sleep(0.2)
    transport.incoming.put_nowait(None)
    await asyncio.wait_for(task, 2)
    # 0.2 s at 0.01 s a tick is ~20 ticks; event-loop slack allows fewer, never far more.
    assert 5 <= len(conn.ticks) <= 25
    assert conn.ticks == sorted(conn.ticks) and conn.ticks[0] == 5.0  # each from the clock
    ticks = len(conn.ticks)
    await asyncio.sleep(0.05)
    assert len(conn.ticks) == ticks  # the ticker stopped with the pump


async def test_a_setup_timeout_fires_on_a_quiet_link() -> None:
    clock = FakeClock(now=0.0, step=1.0)  # one virtual second per reading
    car = CarConnection(
        Identity.generate(),
        "Car",
        lookup_peer=lambda _id: None,
        admission=PairingAdmission(),
        now=0.0,
    )
    log: Log = []
    transport = FakeTransport(log)
    failures: list[ConnectionFailed] = []

    def on_event(ev: object) -> None:
        if isinstance(ev, ConnectionFailed):
            failures.append(ev)

    driver = ConnectionDriver(transport, car, on_event, clock=clock, tick=0.01)
    task = asyncio.create_task(driver.pump())
    await until(lambda: bool(failures) and bool(transport.written))
    assert failures[0].error.reason is Reason.TIMEOUT
    # The car told the peer why, in one plaintext Error frame.
    frames = FrameDecoder(1 << 16)
    frames.receive_data(b"".join(transport.written))
    err = decode(frames.next_frame() or b"")
    assert isinstance(err, Error) and err.reason == Reason.TIMEOUT.value
    await transport.close()
    await asyncio.wait_for(task, 2)


async def test_a_ticker_that_raises_closes_the_link_and_ends_the_pump(
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver, transport, conn, _ = make_driver(tick=0.01)
    conn.tick_error = RuntimeError("bug in tick")
    with caplog.at_level(logging.ERROR, logger="shell.driver"):
        result = await asyncio.wait_for(driver.pump(), 2)
    assert isinstance(result, TransportError)
    assert transport.closed and driver.closing
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info and logged[0].exc_info[1] is conn.tick_error


async def test_aclose_says_goodbye_flushes_then_closes_and_is_safe_twice() -> None:
    driver, transport, conn, log = make_driver(tick=0.01)
    task = asyncio.create_task(driver.pump())
    await asyncio.sleep(0.03)
    await driver.aclose("done")
    assert conn.closes == ["done"]
    assert log[-2:] == [("write", b"bye:done"), ("close",)]
    assert driver.closing and transport.closed
    await driver.aclose("done")  # again: no error, nothing more is written
    assert log.count(("close",)) == 1 and log[-1] == ("close",)
    assert isinstance(await asyncio.wait_for(task, 2), TransportError)
    ticks = len(conn.ticks)
    await asyncio.sleep(0.05)
    assert len(conn.ticks) == ticks  # the ticker is gone


async def test_aclose_without_a_reason_does_not_close_the_connection() -> None:
    driver, _, conn, log = make_driver()
    conn.out += b"pending"
    await driver.aclose()
    assert conn.closes == [] and log == [("write", b"pending"), ("close",)]


async def test_a_send_failure_in_flush_sets_closing_and_raises() -> None:
    driver, transport, conn, _ = make_driver()
    transport.fail_send = True
    conn.out += b"data"
    with pytest.raises(ConnectionError):
        await driver.flush()
    assert driver.closing and driver.bytes_sent == 0


async def test_a_send_failure_while_processing_ends_the_pump() -> None:
    driver, transport, conn, _ = make_driver()
    conn.script[b"x"] = (["e"], b"reply")
    transport.fail_send = True
    task = asyncio.create_task(driver.pump())
    transport.incoming.put_nowait(b"x")
    assert isinstance(await asyncio.wait_for(task, 2), ConnectionError)
    assert driver.closing


async def test_bytes_sent_and_received_are_counted() -> None:
    driver, transport, conn, _ = make_driver()
    conn.script[b"abc"] = ([], b"12345")
    conn.script[b"de"] = ([], b"")
    task = asyncio.create_task(driver.pump())
    for chunk in (b"abc", b"de", None):
        transport.incoming.put_nowait(chunk)
    await asyncio.wait_for(task, 2)
    conn.out += b"678"
    await driver.flush()
    await driver.flush()  # nothing left: nothing sent, nothing counted
    assert driver.bytes_received == 5
    assert driver.bytes_sent == 8 and transport.written == [b"12345", b"678"]
