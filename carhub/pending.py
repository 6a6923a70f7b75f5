"""A pairing request awaiting the car user's decision, whoever waits for it.

A CarHub phone's session, an Apple-profile phone's LE SC bond (``carhub.apple_phones``) and a
Classic phone's SSP bond (``carhub.classic_phones``) all show their code as a
``PendingPairing``; the engine passes the answer to its party. The two Bluetooth sides share
``request_bond_pairing`` and ``drop_failed_pairing`` (the engine's side) and
``ask_car_user`` (the radio side's wait for the answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from carhub import views
from carhub.events import EventHub

__all__ = [
    "BondDecision",
    "PairingHost",
    "PairingParty",
    "PendingPairing",
    "ask_car_user",
    "colon_address",
    "drop_failed_pairing",
    "new_request_id",
    "request_bond_pairing",
]

log = logging.getLogger("carhub.pairing")

BondMethod = Literal["ssp", "le-sc"]


class PairingParty(Protocol):
    """Who waits for a pairing decision: a CarHub session, or a Bluetooth bond."""

    def confirm_pairing(self, accepted: bool) -> None: ...


@dataclass
class PendingPairing:
    """A pairing request waiting for the car user's decision: what the API shows, and who asks."""

    request: views.PairingRequest
    session: PairingParty = field(repr=False)

    @property
    def id(self) -> str:
        return self.request.id


@dataclass
class BondDecision:
    """Stands where a CarHub session would in a ``PendingPairing``: the answer goes to the
    Bluetooth side (SSP or LE SC), once."""

    phone_id: str
    label: str  # "SSP", "LE SC": for the log
    decide: Callable[[bool], None] = field(repr=False)
    done: bool = False

    def confirm_pairing(self, accepted: bool) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.decide(accepted)
        except Exception as exc:  # the Bluetooth side's fault must not fail the dashboard's click
            log.error("%s decision for %s failed: %r", self.label, self.phone_id, exc)


class PairingHost(Protocol):
    """What the two helpers use of the engine."""

    pending: dict[str, PendingPairing]
    hub: EventHub

    def add_pending(self, req: PendingPairing) -> None: ...
    def pairing_requests(self) -> list[views.PairingRequest]: ...


def new_request_id() -> str:
    """Return a fresh pairing request id (8 hex digits)."""
    return secrets.token_hex(4)


def colon_address(phone_id: str) -> str:
    """Return a phone id (12 hex digits) as the address it is: ``AA:BB:CC:DD:EE:FF``."""
    up = phone_id.upper()
    return ":".join(up[i : i + 2] for i in range(0, len(up), 2))


def request_bond_pairing(
    host: PairingHost,
    method: BondMethod,
    label: str,
    phone_id: str,
    phone_name: str,
    code: str,
    expires_at: float,
    decide: Callable[[bool], None],
) -> Callable[[], None]:
    """Show a Bluetooth bond's code as a pairing request.

    Args:
        host: the engine.
        method: the request's ``method`` ("ssp" or "le-sc").
        label: how the log names it ("SSP", "LE SC").
        phone_id: the phone's address (12 hex digits).
        phone_name: the name the phone gave.
        code: the six digits both sides show.
        expires_at: when the request lapses (epoch seconds).
        decide: called once with the user's answer.

    Returns:
        ``withdraw``: drops the request if it is still shown (the bond ended otherwise).
    """
    request = views.PairingRequest(
        id=new_request_id(),
        phone_id=phone_id,
        phone_name=phone_name,
        phone_fingerprint=colon_address(phone_id),
        code=code,
        expires_at=expires_at,
        method=method,
    )
    log.info("%s pairing request from %r (%s)", label, phone_name, request.phone_fingerprint)

    def withdraw() -> None:
        if host.pending.pop(request.id, None) is not None:
            host.hub.publish("pairing", host.pairing_requests())

    host.add_pending(PendingPairing(request, BondDecision(phone_id, label, decide)))
    return withdraw


def drop_failed_pairing(
    host: PairingHost, method: BondMethod, label: str, phone_id: str, reason: str
) -> None:
    """Log why a bond did not happen, drop its requests, and tell the dashboard.

    Args:
        host: the engine.
        method: the requests' ``method`` ("ssp" or "le-sc"); others stay.
        label: how the log names it ("SSP", "LE SC").
        phone_id: the phone's address (12 hex digits).
        reason: why, as the dashboard shows it.
    """
    log.warning("%s pairing with %s failed: %s", label, colon_address(phone_id), reason)
    stale = [
        rid
        for rid, r in host.pending.items()
        if r.request.method == method and r.request.phone_id == phone_id
    ]
    for rid in stale:
        del host.pending[rid]
    if stale:
        host.hub.publish("pairing", host.pairing_requests())
    host.hub.publish("pairing_failed", {"phone_id": phone_id, "reason": reason})


async def ask_car_user(
    show: Callable[[Callable[[bool], None]], Callable[[], None]], code: str, timeout: float
) -> str:
    """Show a Bluetooth pairing code and wait for the car user's answer.

    Args:
        show: shows the request given ``decide(accepted)``; returns ``withdraw()``
            (``AppleEvents.apple_pairing_requested`` or ``ClassicEvents.classic_pairing_requested``
            with everything but ``decide`` bound).
        code: the code as shown, for the refusal reason.
        timeout: seconds to wait (within the pairing protocol's own timeout).

    Returns:
        "" when the code was accepted, else why not, in one line. The request is withdrawn
        either way.
    """
    answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def decide(accepted: bool) -> None:
        if not answer.done():
            answer.set_result(bool(accepted))

    withdraw = show(decide)
    try:
        accepted = await asyncio.wait_for(answer, timeout)
    except TimeoutError:
        return f"no answer to code {code} within {timeout:.0f} s"
    finally:
        with contextlib.suppress(Exception):
            withdraw()
    return "" if accepted else f"code {code} was rejected on the car"
