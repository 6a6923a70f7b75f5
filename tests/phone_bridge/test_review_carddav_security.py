"""CardDAV credentials go only where the user sent them, and never in the clear or a repr."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from phone_bridge.carddav.client import Login
from phone_bridge.carddav.feed import CardDavConfig, CardDavFeed
from phone_bridge.errors import SourceUnavailable

_MS = (
    '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" '
    'xmlns:c="urn:ietf:params:xml:ns:carddav"><d:response><d:href>{href}</d:href>'
    "<d:propstat><d:prop>{props}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
    "</d:response></d:multistatus>"
)


def _principal_at(target: str) -> str:
    props = f"<d:current-user-principal><d:href>{target}</d:href></d:current-user-principal>"
    return _MS.format(href="/", props=props)


class Server:
    """A DAV server whose root names its principal at ``target``; records every request."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == "/":
            return httpx.Response(207, content=_principal_at(self.target).encode())
        return httpx.Response(404)

    def credentials_sent_to(self) -> list[str]:
        return [str(r.url) for r in self.seen if "authorization" in r.headers]


def _pull(tmp_path: Path, server: Server, url: str) -> None:
    config = CardDavConfig(url, Login("alice", "s3cret-pw"))
    feed = CardDavFeed(config, tmp_path / "phone", transport=httpx.MockTransport(server))
    import asyncio

    asyncio.run(feed.pull())


def test_a_principal_on_plain_http_never_gets_the_password(tmp_path: Path) -> None:
    # An https server (or whoever forged its answer) naming a plain-http principal must not
    # make us send the password in the clear to the network.
    server = Server("http://dav.example/principals/alice/")
    with pytest.raises(SourceUnavailable, match="plain http"):
        _pull(tmp_path, server, "https://dav.example/")
    assert server.credentials_sent_to() == ["https://dav.example/"]


def test_a_principal_on_another_https_host_is_still_followed(tmp_path: Path) -> None:
    # iCloud names principals and home sets on other hosts, over https: keep working.
    server = Server("https://p42-contacts.example/123/principal/")
    with pytest.raises(SourceUnavailable):
        _pull(tmp_path, server, "https://contacts.example/")
    assert server.credentials_sent_to() == [
        "https://contacts.example/",
        "https://p42-contacts.example/123/principal/",
    ]


def test_plain_http_is_fine_on_the_origin_the_user_gave(tmp_path: Path) -> None:
    server = Server("/principals/alice/")
    with pytest.raises(SourceUnavailable):
        _pull(tmp_path, server, "http://127.0.0.1:5232/")
    assert server.credentials_sent_to() == [
        "http://127.0.0.1:5232/",
        "http://127.0.0.1:5232/principals/alice/",
    ]


def test_the_password_is_not_in_the_config_repr() -> None:
    config = CardDavConfig("https://dav.example/", Login("alice", "s3cret-pw"))
    assert "s3cret-pw" not in repr(config)
    assert "alice" in repr(config)


class _Streamed(httpx.AsyncByteStream):
    """A body that arrives in 64 KiB pieces, as from the network (not read up front)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for i in range(0, len(self.body), 65536):
            yield self.body[i : i + 65536]


def _bomb_server(coding: str, body: bytes) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-encoding": coding}
        return httpx.Response(207, headers=headers, stream=_Streamed(body))

    return httpx.MockTransport(answer)


def _peak_of_pull(tmp_path: Path, transport: httpx.MockTransport) -> tuple[int, Exception]:
    import asyncio
    import tracemalloc

    feed = CardDavFeed(CardDavConfig("https://dav.example/"), tmp_path / "p", transport=transport)
    tracemalloc.start()
    try:
        asyncio.run(feed.pull())
    except SourceUnavailable as exc:
        caught = exc
    else:
        raise AssertionError("the bomb was taken")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, caught


def test_a_zstd_bomb_is_refused_before_it_inflates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zstandard

    from phone_bridge.carddav import client

    monkeypatch.setattr(client, "MAX_RESPONSE_BYTES", 1 << 20)
    bomb = zstandard.ZstdCompressor().compress(bytes(150 << 20))  # 150 MiB of zeros, ~5 KiB
    peak, exc = _peak_of_pull(tmp_path, _bomb_server("zstd", bomb))
    assert peak < 40 << 20, f"{peak:,} bytes held for a 1 MiB limit"
    assert "zstd" in str(exc) or "over" in str(exc)


def test_a_gzip_bomb_stops_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    from phone_bridge.carddav import client

    monkeypatch.setattr(client, "MAX_RESPONSE_BYTES", 1 << 20)
    bomb = gzip.compress(bytes(100 << 20), compresslevel=9)  # 100 MiB of zeros, ~100 KiB
    peak, exc = _peak_of_pull(tmp_path, _bomb_server("gzip", bomb))
    assert peak < 40 << 20, f"{peak:,} bytes held for a 1 MiB limit"
    assert "over" in str(exc)


@pytest.mark.parametrize("target", ["http://dav.example/dav/", "https://other.example/dav/"])
def test_a_redirect_away_from_the_origin_drops_the_password(tmp_path: Path, target: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if str(request.url) == "https://dav.example/":
            return httpx.Response(301, headers={"location": target})
        return httpx.Response(401)

    config = CardDavConfig("https://dav.example/", Login("alice", "s3cret-pw"))
    feed = CardDavFeed(config, tmp_path / "phone", transport=httpx.MockTransport(answer))
    import asyncio

    from phone_bridge.errors import CredentialsRefused

    with pytest.raises(CredentialsRefused):
        asyncio.run(feed.pull())
    assert [str(r.url) for r in seen if "authorization" in r.headers] == ["https://dav.example/"]
    assert str(seen[-1].url) == target
