"""The dashboard API's same-origin and Host guard (pure ASGI, so WebSockets are covered)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "SameOriginGuard"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
_DEFAULT_PORT = {"http": 80, "https": 443}


class SameOriginGuard:
    """Refuse cross-site use of the dashboard API (pure ASGI, so WebSockets are covered).

    Any web page open in a browser on the head unit could otherwise accept a pairing
    request: browsers let pages POST and open WebSockets cross-origin. So: the Host header
    must be an allowed host (defeats DNS rebinding), and a request that carries an Origin
    must come from the dashboard's own origin (browsers always send one cross-origin):
    the same scheme, host and port, compared exactly (``https://`` is another origin
    than the ``http://`` dashboard, even on the same host and port).

    Args:
        app: the ASGI app to guard.
        allowed_hosts: Host header values served; None serves any.
        scheme: the scheme the dashboard is served at (``carhub run`` serves plain
            HTTP). Not the request's own: uvicorn rewrites that from a loopback client's
            ``X-Forwarded-Proto``, which would let ``https://`` pass again.
    """

    def __init__(
        self, app: Any, allowed_hosts: tuple[str, ...] | None, scheme: str = "http"
    ) -> None:
        self.app = app
        self.allowed = allowed_hosts
        self.scheme = scheme

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get("host", "")
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if self.allowed is not None and hostname not in self.allowed:
                await _refuse(scope, send, f"host {host!r} is not served")
                return
            origin = headers.get("origin")
            unsafe = scope["type"] == "websocket" or scope.get("method") not in ("GET", "HEAD")
            if unsafe and origin is not None and not self._same_origin(origin, host):
                await _refuse(scope, send, f"cross-origin request from {origin} refused")
                return
        await self.app(scope, receive, send)

    def _same_origin(self, origin: str, host: str) -> bool:
        """Whether ``origin`` is the dashboard's own: scheme, host and port all equal."""
        own = _origin_tuple(f"{self.scheme}://{host}")
        return own is not None and _origin_tuple(origin) == own


def _origin_tuple(text: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]`` as (scheme, host, port), or None if it is not one.

    An origin has no path, query, fragment or user info; ``null`` and anything else that
    does not parse is no origin at all.
    """
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError:
        return None
    scheme = url.scheme.lower()
    if scheme not in _DEFAULT_PORT or not url.hostname:
        return None
    if url.path or url.query or url.fragment or "@" in url.netloc:
        return None
    return scheme, url.hostname, port if port is not None else _DEFAULT_PORT[scheme]


async def _refuse(scope: Any, send: Any, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
