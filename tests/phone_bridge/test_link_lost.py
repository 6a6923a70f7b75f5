"""A link that drops once open is "connection lost" (exit 1), whichever side notices first.

A write that meets the dead link and the reader that sees it end race each other when a
car dies; both must give the same error, never the dial's "unreachable" (exit 3).
"""

from __future__ import annotations

import time

import pytest

from phone_bridge.client import CarLink
from phone_bridge.errors import LinkClosed, explain
from protocol.connection import PhoneConnection
from protocol.identity import Identity
from shell.transport import BaseTransport, TransportError


class FakeDeadTransport(BaseTransport):
    """A link to a car that died after the dial: every write and read fails."""

    name, peer = "lan", "192.0.2.1:4711"

    async def send(self, data: bytes) -> None:
        raise TransportError("the car closed the connection")

    async def recv(self) -> bytes:
        raise TransportError("the car closed the connection")

    async def close(self) -> None:
        pass


def _link() -> CarLink:
    conn = PhoneConnection(Identity.generate(), "Phone", car_public_key=bytes(32), now=time.time())
    return CarLink(FakeDeadTransport(), conn)


async def test_a_failed_write_is_connection_lost_exit_1() -> None:
    with pytest.raises(LinkClosed) as caught:
        await _link().flush()  # the Hello
    err = explain(caught.value)
    assert err.code == 1 and str(err).startswith("connection to the car lost: ")


async def test_the_reader_seeing_the_end_says_the_same() -> None:
    link = _link()
    link.conn.data_to_send()  # the Hello was written before the car died
    await link.__aenter__()
    with pytest.raises(LinkClosed) as caught:
        await link.next_event(5)
    assert explain(caught.value).code == 1
    assert str(caught.value) == "connection to the car lost: the car closed the connection"
    await link.aclose()
