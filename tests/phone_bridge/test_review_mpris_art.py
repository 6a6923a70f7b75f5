"""``mpris:artUrl`` named by whatever a player (or the stream it plays) says: only images,
never a hang, never memory beyond the limit."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import zstandard

from phone_bridge.mpris.artwork import ArtCache
from tests.local_http import serving
from tests.phone_bridge.fake_mpris import png

BOMB = zstandard.ZstdCompressor().compress(b"\xff\xd8\xff" + bytes(150 << 20))


class _Bomb(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Encoding", "zstd")
        self.send_header("Content-Length", str(len(BOMB)))
        self.end_headers()
        try:
            self.wfile.write(BOMB)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def bomb_url() -> Iterator[str]:
    with serving(_Bomb) as url:
        yield url + "/cover.jpg"


async def test_a_fifo_named_as_cover_does_not_hang_the_player(tmp_path: Path) -> None:
    fifo = tmp_path / "cover.png"
    os.mkfifo(fifo)
    try:
        assert await asyncio.wait_for(ArtCache().load(fifo.as_uri()), 3.0) == b""
    finally:  # release a reader stuck in open(), so the test's loop can close
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


async def test_a_local_file_is_sent_only_if_it_really_is_an_image(tmp_path: Path) -> None:
    # A player (or a stream's metadata) naming ~/.ssh/id_ed25519 as "cover.png" must not get
    # that file to the car: a local file's type is its bytes', never its name's.
    secret = tmp_path / "cover.png"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n")
    real = tmp_path / "real.jpg"
    real.write_bytes(png())
    cache = ArtCache()
    assert await cache.load(secret.as_uri()) == b""
    assert await cache.load(real.as_uri()) != b""
    assert [a.mime for a in cache.images.values()] == ["image/png"]


async def test_a_compressed_cover_cannot_inflate_past_the_limit(bomb_url: str) -> None:
    cache = ArtCache(max_bytes=1_000_000, timeout=20.0)
    tracemalloc.start()
    try:
        assert await cache.load(bomb_url) == b""
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 40 << 20, f"{peak:,} bytes held for a 1 MB cover limit"
