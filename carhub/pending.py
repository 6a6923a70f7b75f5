"""A pairing request awaiting the car user's decision, whoever waits for it.

A CarHub phone's session and an Apple-profile phone's LE SC bond (``carhub.apple_phones``)
both show their code as a ``PendingPairing``; the engine passes the answer to its party.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol

from carhub import views

__all__ = ["PairingParty", "PendingPairing", "new_request_id"]


class PairingParty(Protocol):
    """Who waits for a pairing decision: a CarHub session, or an LE SC bond (BLE side)."""

    def confirm_pairing(self, accepted: bool) -> None: ...


@dataclass
class PendingPairing:
    """A pairing request waiting for the car user's decision: what the API shows, and who asks."""

    request: views.PairingRequest
    session: PairingParty = field(repr=False)

    @property
    def id(self) -> str:
        return self.request.id


def new_request_id() -> str:
    """Return a fresh pairing request id (8 hex digits)."""
    return secrets.token_hex(4)
