"""The car's OBEX client over one RFCOMM DLC: bytes in and out of ``protocol.obex.ObexClient``.

The DLC's bytes go only through the client machine; this module pumps them and waits, with
a timeout on every response (reset by each packet of a long GET, so a 5,000-card page
that keeps arriving is not cut, but a phone that stops answering is). A malformed
response, a refusal, the DLC closing or a timeout ends the request with a
``ClassicLinkError`` (``ObexRefused`` for a refusal, with its response code).

Each GET's body is bounded by what it asks for (``body_bound``): a probe or a page of
cards without photos needs far less than the client's 64 MiB, so a phone that sends more
is cut off early. The Application Parameters of a GET's answer packets come merged per tag
by the client (the last value wins), so a phone that repeats PhonebookSize or its counters
in its last packet is read as it means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from carhub.classic import ClassicLinkError
from protocol.obex import (
    DEFAULT_MAX_BODY,
    MAX_PACKET,
    BodyChunk,
    ClientEvent,
    Connected,
    Disconnected,
    Failed,
    GetDone,
    ObexClient,
    ObexError,
)
from protocol.pbap import AppParams, PbapError, PbapGet, Property, decode_app_params
from protocol.pbap.calls import MAX_CALLS_BYTES

__all__ = [
    "MAX_PROBE_BODY",
    "MAX_TEXT_CARD",
    "RESPONSE_TIMEOUT_S",
    "Dlc",
    "ObexChannel",
    "ObexRefused",
    "body_bound",
]

log = logging.getLogger("carhub.pbap")

# A phone answers each OBEX packet within milliseconds once it has the book in memory;
# building a large page may take it a few seconds. 10 s of silence is a phone gone.
RESPONSE_TIMEOUT_S = 10.0

# Body bounds per GET. A probe (MaxListCount = 0) is due no card at all; the call history
# is 100 entries of a name, a number and a time (a few hundred bytes each: MAX_CALLS_BYTES
# of protocol.pbap.calls, what its reader reads); a card without
# its photo is rarely over a few KiB, so a page of 500 gets 16 MiB. Photo pages keep the
# client's DEFAULT_MAX_BODY (64 MiB): photos are what it is sized for.
MAX_PROBE_BODY = 64 * 1024
MAX_TEXT_CARD = 32 * 1024
_MIN_TEXT_PAGE = 1024 * 1024
_CALL_HISTORIES = frozenset({"cch.vcf", "ich.vcf", "och.vcf", "mch.vcf"})


def body_bound(request: PbapGet) -> int:
    """The most body bytes the answer to ``request`` may bring.

    Args:
        request: a GET the car sends.

    Returns:
        ``MAX_PROBE_BODY`` for MaxListCount = 0, ``MAX_CALLS_BYTES`` for a call history,
        ``MAX_TEXT_CARD`` per card (at least 1 MiB) for a page whose PropertySelector leaves
        the photo out, else ``DEFAULT_MAX_BODY``.
    """
    try:
        params = decode_app_params(request.app_params)
    except PbapError:  # our own bytes: cannot happen, and the widest bound is no harm
        return DEFAULT_MAX_BODY
    count = params.max_list_count
    if count == 0:
        return MAX_PROBE_BODY
    if request.name.rsplit("/", 1)[-1] in _CALL_HISTORIES:
        return MAX_CALLS_BYTES
    selector = params.property_selector
    if count is not None and selector is not None and not selector & Property.PHOTO:
        return min(DEFAULT_MAX_BODY, max(_MIN_TEXT_PAGE, count * MAX_TEXT_CARD))
    return DEFAULT_MAX_BODY


class Dlc(Protocol):
    """What the channel needs of a ``bumble.rfcomm.DLC``."""

    sink: Callable[[bytes], None] | None

    def write(self, data: bytes) -> None:
        """Queue bytes to the peer."""
        ...


class ObexRefused(ClassicLinkError):
    """The phone answered a request with an error response code."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"the phone refused {what} (OBEX 0x{code:02X})")
        self.code = code


class ObexChannel:
    """One OBEX session to a phone's PBAP server over ``dlc``.

    Args:
        dlc: an open RFCOMM DLC (its ``sink`` is taken over).
        peer: the phone's address, for log lines.
        timeout: seconds a response may take (between packets of one GET).
    """

    def __init__(self, dlc: Dlc, peer: str, *, timeout: float = RESPONSE_TIMEOUT_S) -> None:
        self._dlc = dlc
        self._peer = peer
        self.timeout = timeout
        self._client = ObexClient(max_packet=MAX_PACKET)
        self._body = bytearray()
        self._waiter: asyncio.Future[ClientEvent] | None = None
        self._error: ClassicLinkError | None = None
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        dlc.sink = self._on_data

    def lost(self, reason: str = "the link closed") -> None:
        """The DLC or the ACL is gone: fail the request under way and every later one."""
        self._fail(ClassicLinkError(reason))

    async def connect(self, target: bytes, app_params: bytes) -> AppParams:
        """OBEX CONNECT to ``target``; returns the phone's Application Parameters.

        Raises:
            ClassicLinkError: refused, malformed, lost or no answer.
        """
        event = await self._request(self._client.connect(target, app_params), "the CONNECT")
        if not isinstance(event, Connected):
            raise ClassicLinkError(f"unexpected answer to CONNECT: {type(event).__name__}")
        return _params(event.app_params, "CONNECT")

    async def get(self, request: PbapGet) -> tuple[bytes, AppParams]:
        """One GET, whole: its body and the Application Parameters of its answers (merged
        per tag across the answer packets, the last value winning).

        Args:
            request: the GET; its answer may bring ``body_bound(request)`` body bytes.

        Raises:
            ObexRefused: the phone answered with an error code.
            ClassicLinkError: malformed, lost or no answer in time.
        """
        self._body = bytearray()
        bound = body_bound(request)
        data = self._client.get(request.name, request.type, request.app_params, max_body=bound)
        event = await self._request(data, f"GET {request.name}")
        if not isinstance(event, GetDone):
            raise ClassicLinkError(f"unexpected answer to GET: {type(event).__name__}")
        body, self._body = bytes(self._body), bytearray()
        return body, _params(event.app_params, f"GET {request.name}")

    async def disconnect(self) -> None:
        """OBEX DISCONNECT, best effort (the phone may be gone already)."""
        if self._error is not None or self._client.state != "connected":
            return
        with contextlib.suppress(ClassicLinkError):
            await self._request(self._client.disconnect(), "the DISCONNECT")

    async def _request(self, data: bytes, what: str) -> ClientEvent:
        """Send ``data`` and wait for the event that ends the request."""
        if self._error is not None:
            raise self._error
        waiter: asyncio.Future[ClientEvent] = self._loop.create_future()
        self._waiter = waiter
        self._deadline = self._loop.time() + self.timeout
        self._dlc.write(data)
        while True:
            try:
                # A shield: the timeout must not cancel the future a late packet resolves.
                event = await asyncio.wait_for(
                    asyncio.shield(waiter), max(self._deadline - self._loop.time(), 0)
                )
                break
            except TimeoutError:
                if self._loop.time() >= self._deadline:
                    self._fail(ClassicLinkError(f"no answer to {what} within {self.timeout:g} s"))
        if isinstance(event, Failed):
            raise ObexRefused(what, event.code)
        return event

    def _on_data(self, data: bytes) -> None:
        """Feed the phone's bytes to the client; send what it queues; end the request."""
        self._deadline = self._loop.time() + self.timeout
        try:
            events = self._client.receive_data(bytes(data))
        except ObexError as exc:
            self._fail(ClassicLinkError(f"malformed OBEX from the phone: {exc}"))
            return
        out = self._client.data_to_send()
        if out:
            self._dlc.write(out)
        for event in events:
            if isinstance(event, BodyChunk):
                self._body += event.data
            elif isinstance(event, (Connected, GetDone, Failed, Disconnected)):
                self._resolve(event)
            # PathSet and Aborted: the car sends neither SETPATH nor ABORT.

    def _resolve(self, event: ClientEvent) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(event)

    def _fail(self, error: ClassicLinkError) -> None:
        if self._error is None:
            self._error = error
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._error)


def _params(raw: bytes, what: str) -> AppParams:
    """Decode the phone's Application Parameters; malformed ones end the pull."""
    try:
        return decode_app_params(raw)
    except PbapError as exc:
        raise ClassicLinkError(f"malformed application parameters in {what}: {exc}") from None
