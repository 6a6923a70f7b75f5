"""``mpris:artUrl`` covers over http(s) and from files: size and time limits, failures as lines."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from phone_bridge.mpris.artwork import ArtCache
from phone_bridge.mpris.player import MprisPlayer
from tests.local_http import serving
from tests.phone_bridge.fake_mpris import FakeMprisPlayer, FakeTrack, PrivateBus, png

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 500
hits: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        hits.append(path)
        if path == "/slow":
            time.sleep(3)
        body, kind, code = {
            "/cover.jpg": (JPEG, "image/jpeg", 200),
            "/big": (b"\xff\xd8\xff" + b"\x00" * 2_000_000, "image/jpeg", 200),
            "/text": (b"<html>hi</html>", "text/html", 200),
            "/slow": (JPEG, "image/jpeg", 200),
        }.get(path, (b"gone", "text/plain", 404))
        self.send_response(code)
        self.send_header("Content-Type", kind)
        if path != "/big":  # no length: the limit must stop the stream itself
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should on /big

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(_Handler) as url:
        yield url


async def test_an_http_cover_is_fetched_once_and_kept_by_hash(server: str) -> None:
    cache = ArtCache()
    hits.clear()
    digest = await cache.load(server + "/cover.jpg")
    assert digest == hashlib.sha256(JPEG).digest()
    assert cache.images[digest].mime == "image/jpeg" and cache.images[digest].data == JPEG
    assert await cache.load(server + "/cover.jpg") == digest
    assert hits == ["/cover.jpg"]  # the second track of the album costs nothing


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/missing", "HTTP 404"), ("/big", "byte limit"), ("/text", "not an image"),
     ("/slow", "no answer in 0.5 s")],
)  # fmt: skip
async def test_a_cover_that_fails_is_one_line_and_no_artwork(
    server: str, path: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ArtCache(timeout=0.5)
    start = time.monotonic()
    assert await cache.load(server + path) == b""
    assert time.monotonic() - start < 2.0
    lines = [r.getMessage() for r in caplog.records if r.name == "phone_bridge.mpris"]
    assert len(lines) == 1 and reason in lines[0] and "\n" not in lines[0], lines
    assert cache.images == {}


async def test_local_files_unknown_schemes_and_limits(tmp_path: Path) -> None:
    cache = ArtCache(max_bytes=1000)
    small, big = tmp_path / "a b.png", tmp_path / "big.png"
    small.write_bytes(png())
    big.write_bytes(png() + b"\x00" * 2000)
    assert await cache.load(small.as_uri()) == hashlib.sha256(png()).digest()
    assert await cache.load(big.as_uri()) == b""
    assert await cache.load("data:image/png;base64,AAAA") == b""
    assert await cache.load("ftp://example.invalid/x.png") == b""
    assert len(cache.images) == 1


async def test_an_http_cover_follows_its_track_without_delaying_it(server: str) -> None:
    bus = PrivateBus()
    try:
        track = FakeTrack("/t/1", "Streamed", art_url=server + "/cover.jpg?track=1")
        fake = await FakeMprisPlayer(bus.address, "web", [track]).start()
        mp = MprisPlayer(None, bus.address)
        sent: list[bytes] = []
        mp.subscribe(lambda np: sent.append(np.artwork))
        task = asyncio.create_task(mp.run())
        try:
            deadline = time.monotonic() + 2.0
            while hashlib.sha256(JPEG).digest() not in sent and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            # First the track at once, then the same track with its cover.
            assert sent[0] == b"" and sent[-1] == hashlib.sha256(JPEG).digest()
            assert mp.artwork[sent[-1]].data == JPEG
        finally:
            fake.quit()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        bus.stop()


def test_logging_names_the_failing_url_shortly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    url = "file:///nonexistent/" + "x" * 500
    assert asyncio.run(ArtCache().load(url)) == b""
    (line,) = [r.getMessage() for r in caplog.records]
    assert len(line) < 300 and "file:///nonexistent/" in line
