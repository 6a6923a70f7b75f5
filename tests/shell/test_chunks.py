"""shell.chunks.ChunkQueue: order, the end marker, the byte bound and its overflow."""

from __future__ import annotations

import asyncio

import pytest

from shell.chunks import CHUNK_OVERHEAD, MAX_QUEUED_BYTES, ChunkQueue
from shell.errors import TransportError


async def test_chunks_come_out_in_order() -> None:
    q = ChunkQueue()
    for chunk in (b"a", b"bc", b"", b"def"):
        q.put_nowait(chunk)
    assert [await q.get() for _ in range(4)] == [b"a", b"bc", b"", b"def"]
    assert q.qsize() == 0 and q.queued_bytes == 0


async def test_put_copies_a_bytearray() -> None:
    q = ChunkQueue()
    buf = bytearray(b"abc")
    q.put_nowait(buf)  # type: ignore[arg-type]  # bleak hands over bytearrays
    buf[0] = ord("z")
    chunk = await q.get()
    assert chunk == b"abc" and type(chunk) is bytes


async def test_get_waits_for_a_chunk() -> None:
    q = ChunkQueue()
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.put_nowait(b"late")
    assert await asyncio.wait_for(getter, 1) == b"late"


async def test_close_ends_get_after_the_queued_chunks() -> None:
    q = ChunkQueue(closed_message="BLE link closed")
    q.put_nowait(b"one")
    q.put_nowait(b"two")
    q.close()
    assert q.closed and q.qsize() == 3  # two chunks and the end marker
    assert await q.get() == b"one"
    assert await q.get() == b"two"
    for _ in range(3):  # every later call raises too
        with pytest.raises(TransportError, match=r"^BLE link closed$"):
            await q.get()
    assert q.qsize() == 1  # the marker stays for the next caller


async def test_close_wakes_a_waiting_get() -> None:
    q = ChunkQueue()
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.close()
    with pytest.raises(TransportError):
        await asyncio.wait_for(getter, 1)


async def test_close_is_idempotent_and_drops_later_chunks() -> None:
    q = ChunkQueue()
    q.close()
    q.close()
    q.put_nowait(b"after")
    assert q.qsize() == 1 and q.queued_bytes == 0
    with pytest.raises(TransportError):
        await q.get()


async def test_bytes_count_the_per_chunk_overhead() -> None:
    q = ChunkQueue()
    q.put_nowait(b"x" * 10)
    q.put_nowait(b"")
    assert q.queued_bytes == 10 + 2 * CHUNK_OVERHEAD
    await q.get()
    assert q.queued_bytes == CHUNK_OVERHEAD
    await q.get()
    assert q.queued_bytes == 0


def test_default_bound_is_the_cars_2_mib() -> None:
    assert MAX_QUEUED_BYTES == 2 * 1024 * 1024 and CHUNK_OVERHEAD == 64


async def test_a_chunk_up_to_the_bound_is_kept() -> None:
    overflows: list[int] = []
    q = ChunkQueue(1000, on_overflow=overflows.append, chunk_overhead=0)
    q.put_nowait(b"x" * 600)
    q.put_nowait(b"y" * 400)  # exactly at the bound
    assert overflows == [] and not q.closed and q.queued_bytes == 1000
    assert await q.get() == b"x" * 600


async def test_overflow_drops_everything_closes_and_reports() -> None:
    overflows: list[int] = []
    q = ChunkQueue(1000, on_overflow=overflows.append, closed_message="gone")
    q.put_nowait(b"x" * 500)
    q.put_nowait(b"y" * 300)
    q.put_nowait(b"z" * 100)  # 500 + 300 + 100 + 3 * 64 > 1000
    assert overflows == [800 + 2 * CHUNK_OVERHEAD]
    assert q.closed and q.queued_bytes == 0 and q.qsize() == 1  # only the end marker
    with pytest.raises(TransportError, match=r"^gone$"):
        await q.get()
    q.put_nowait(b"more")  # writes in flight after the overflow are dropped silently
    assert overflows == [800 + 2 * CHUNK_OVERHEAD] and q.qsize() == 1


async def test_a_flood_of_empty_chunks_hits_the_bound() -> None:
    overflows: list[int] = []
    q = ChunkQueue(10 * CHUNK_OVERHEAD, on_overflow=overflows.append)
    for _ in range(11):
        q.put_nowait(b"")
    assert overflows == [10 * CHUNK_OVERHEAD] and q.closed


async def test_overflow_without_a_callback_still_closes() -> None:
    q = ChunkQueue(10, chunk_overhead=0)
    q.put_nowait(b"x" * 11)
    assert q.closed and q.qsize() == 1
    with pytest.raises(TransportError, match=r"^link closed$"):
        await q.get()
