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
