"""An established session costs its driver no wake-ups (issue 13: idle CPU of a lab).

Every timeout of ``protocol.connection`` is before the session (setup, pairing), so the
driver's once-a-second ticker runs until ``SessionEstablished`` and then ends; a setup that
never finishes is still timed out (``test_driver.test_a_setup_timeout_fires_on_a_quiet_link``).
"""

from __future__ import annotations

import asyncio

from protocol.connection import SessionEstablished
from tests.shell.test_driver import FakeClock, make_driver, until


async def test_the_ticker_ticks_until_the_session_is_up_then_stops() -> None:
    driver, transport, conn, _ = make_driver(tick=0.01, clock=FakeClock(now=5.0, step=1.0))
    conn.script[b"up"] = ([SessionEstablished("peer", b"k" * 32)], b"")
    task = asyncio.create_task(driver.pump())
    await until(lambda: len(conn.ticks) >= 3)  # before the session: ticking
    transport.incoming.put_nowait(b"up")
    await until(lambda: bool(conn.received))
    await asyncio.sleep(0.03)  # a tick already asleep may still come
    ticks = len(conn.ticks)
    await asyncio.sleep(0.2)  # ~20 ticks' time
    assert len(conn.ticks) == ticks
    assert not task.done()  # the link itself is still up and read
    transport.incoming.put_nowait(None)
    await asyncio.wait_for(task, 2)
