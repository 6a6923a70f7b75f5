"""The HTTP half of the CardDAV client: PROPFIND and REPORT over httpx, bounded.

Every request has a timeout (per phase, and a deadline for the whole answer, so a server
that drips one byte a second cannot hold us) and every answer a size cap. What goes wrong
becomes one of the phone's errors: ``CredentialsRefused`` (exit 8) for a 401, or
``DavStatusError`` (a ``SourceUnavailable``) carrying the status and any DAV precondition,
for the caller to decide (an expired sync token is a 403 with ``valid-sync-token``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from phone_bridge.carddav.davxml import DavResponse, DavXmlError, parse_multistatus, precondition
from phone_bridge.errors import CredentialsRefused, SourceUnavailable

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_RESPONSE_BYTES", "REQUEST_DEADLINE", "DavClient", "DavStatusError", "Login"]

log = logging.getLogger("phone_bridge.carddav")

# A multiget of 50 cards with photos stays far below this; a server that sends more is
# broken or hostile, and we would rather fail than hold it all in memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Connect/read/write timeouts per phase; a big multiget from a slow server still finishes.
PHASE_TIMEOUT = 20.0
# The whole request, answer included: a server dripping bytes cannot hold a pull forever.
REQUEST_DEADLINE = 120.0
_XML = "application/xml; charset=utf-8"


@dataclass(frozen=True)
class Login:
    """Who we are to the server, and whom we trust: user, password, extra CA file."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    ca_file: Path | None = None


class DavStatusError(SourceUnavailable):
    """The server answered a request with an HTTP error status.

    Args:
        url: the request's URL.
        status: the HTTP status.
        condition: the DAV precondition the error body names (e.g. ``valid-sync-token``).
    """

    def __init__(self, url: str, status: int, condition: str = "") -> None:
        why = f" ({condition})" if condition else ""
        super().__init__(f"the CardDAV server answered HTTP {status}{why} for {url}")
        self.url, self.status, self.condition = url, status, condition


class DavClient:
    """A small async WebDAV client for the few requests CardDAV sync needs. Use ``async with``.

    Args:
        login: credentials (HTTP Basic) and an extra CA file for a self-signed server.
        transport: an httpx transport (tests); default: the network.
    """

    def __init__(
        self,
        login: Login,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        origin: str | None = None,
    ) -> None:
        import httpx  # here: the CLI must not pay for httpx unless --carddav is given

        if not log.isEnabledFor(logging.DEBUG):  # httpx logs every request at INFO
            logging.getLogger("httpx").setLevel(logging.WARNING)

        # Not httpx.BasicAuth, which signs every request: the password goes over https, or
        # to the very origin the user named (``origin``, maybe a loopback http server), never
        # in the clear to wherever a server's href points. httpx drops the header itself on
        # a redirect to another origin.
        self._basic = _basic_header(login) if login.user else None
        self._origin = _origin_of(origin) if origin else None
        self._http = httpx.AsyncClient(
            verify=_tls_context(login.ca_file),
            transport=transport,
            timeout=httpx.Timeout(PHASE_TIMEOUT),
            follow_redirects=True,  # /.well-known/carddav redirects (RFC 6764)
            headers={"User-Agent": "carhub-phone-bridge"},
        )
        self._user = login.user
        self.requests = 0  # how many requests went out (tests count them)

    async def __aenter__(self) -> DavClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def propfind(self, url: str, names_body: bytes, depth: int) -> list[DavResponse]:
        """PROPFIND ``url``; return the multistatus responses.

        Raises:
            CredentialsRefused: HTTP 401.
            DavStatusError: any other non-207 status.
            SourceUnavailable: network failure, timeout, oversized or unreadable answer.
        """
        responses, _ = await self.request("PROPFIND", url, names_body, depth)
        return responses

    async def report(
        self, url: str, body: bytes, depth: int | None = None
    ) -> tuple[list[DavResponse], str]:
        """REPORT ``url``; return the responses and the sync token (errors as ``propfind``)."""
        return await self.request("REPORT", url, body, depth)

    async def request(
        self, method: str, url: str, body: bytes, depth: int | None
    ) -> tuple[list[DavResponse], str]:
        """Send one DAV request and parse its multistatus (errors as ``propfind``)."""
        headers = {"Content-Type": _XML}
        if depth is not None:
            headers["Depth"] = str(depth)
        if self._basic is not None:
            if urlsplit(url).scheme != "https" and _origin_of(url) != self._origin:
                raise SourceUnavailable(
                    f"the CardDAV server pointed to {url} over plain http; the password "
                    "is only sent over https or to the URL given with --carddav"
                )
            headers["Authorization"] = self._basic
        self.requests += 1
        try:
            status, data, final = await asyncio.wait_for(
                self._send(method, url, body, headers), REQUEST_DEADLINE
            )
        except TimeoutError as exc:
            raise SourceUnavailable(f"the CardDAV server did not answer in time ({url})") from exc
        if status == 401:
            raise CredentialsRefused(
                f"the CardDAV server refused the credentials of {self._user or '(no user)'} "
                f"(HTTP 401 for {final}); check --carddav-user and the (app) password"
            )
        if status != 207:
            raise DavStatusError(final, status, precondition(data) if data else "")
        try:
            return parse_multistatus(data)
        except DavXmlError as exc:
            msg = f"the CardDAV server sent a bad answer for {final}: {exc}"
            raise SourceUnavailable(msg) from exc

    async def _send(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        import httpx

        from phone_bridge.http_body import BodyRefused, BodyTooLarge, accept_encoding, read_body

        headers = {**headers, **accept_encoding(gzip=True)}
        try:
            async with self._http.stream(method, url, content=body, headers=headers) as r:
                data = await read_body(r, MAX_RESPONSE_BYTES, gzip=True)
                return r.status_code, data, str(r.url)
        except BodyTooLarge as exc:
            msg = f"the CardDAV server's answer for {url} is {exc}; refused"
            raise SourceUnavailable(msg) from exc
        except BodyRefused as exc:
            raise SourceUnavailable(f"the CardDAV server's answer for {url}: {exc}") from exc
        except httpx.HTTPError as exc:
            msg = f"cannot reach the CardDAV server at {url}: {_why(exc)}"
            raise SourceUnavailable(msg) from exc


# One TLS context per CA file for the life of the process: ``run`` makes a client per pull,
# and loading a CA bundle each time would cost more than the pull itself.
_TLS: dict[Path | None, ssl.SSLContext] = {}


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's (or certifi's) trust store, or only ``ca_file`` (--carddav-ca)."""
    if ca_file not in _TLS:
        try:
            if ca_file is not None:
                _TLS[ca_file] = ssl.create_default_context(cafile=str(ca_file))
            else:
                import certifi

                _TLS[ca_file] = ssl.create_default_context(cafile=certifi.where())
        except (OSError, ssl.SSLError) as exc:
            raise SourceUnavailable(f"cannot use --carddav-ca {ca_file}: {exc}") from exc
    return _TLS[ca_file]


def _basic_header(login: Login) -> str:
    """HTTP Basic credentials (RFC 7617, UTF-8), as httpx.BasicAuth would send them."""
    pair = f"{login.user}:{login.password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the port made explicit."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _why(exc: BaseException) -> str:
    """A one-line reason for a network failure (httpx's messages can be empty)."""
    text = str(exc) or type(exc).__name__
    cause: BaseException | None = exc
    for _ in range(5):  # httpx wraps httpcore's error, which wraps ssl's
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({cause.verify_message}); see --carddav-ca"
        if cause is None:
            break
        cause = cause.__cause__ or cause.__context__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"TLS certificate not trusted ({text}); see --carddav-ca"
    return text.splitlines()[0]
