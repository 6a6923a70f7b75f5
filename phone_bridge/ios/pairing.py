"""How the emulated iPhone pairs: LE Secure Connections numeric comparison, as a central.

An iPhone never starts pairing by itself: it waits for the accessory's SMP Security
Request, then either encrypts with the bond it holds for that accessory or pairs (LE SC,
MITM, bonding; it displays the 6-digit code and the user taps Pair). It hands over its IRK
and identity address in the key distribution, so the accessory can resolve the private
addresses it connects from later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bumble.pairing import PairingConfig, PairingDelegate

__all__ = ["Confirm", "NumericComparison", "pairing_config"]

log = logging.getLogger(__name__)

# Asked with the 6-digit code; True accepts (a human said yes, or --auto-confirm).
Confirm = Callable[[str], Awaitable[bool]]
_KEYS = (
    PairingDelegate.KeyDistribution.DISTRIBUTE_ENCRYPTION_KEY
    | PairingDelegate.KeyDistribution.DISTRIBUTE_IDENTITY_KEY
)


class NumericComparison(PairingDelegate):
    """A display-yes/no delegate: show the code, ask ``confirm``.

    Args:
        confirm: asked with the code; its answer accepts or rejects the pairing.
        on_code: told the code first (for the log line and ``--json``).
    """

    def __init__(self, confirm: Confirm, on_code: Callable[[str], None]) -> None:
        super().__init__(
            io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
            local_initiator_key_distribution=_KEYS,
            local_responder_key_distribution=_KEYS,
        )
        self._confirm = confirm
        self._on_code = on_code

    async def compare_numbers(self, number: int, digits: int) -> bool:
        """Show the code and return the user's answer."""
        code = f"{number:0{digits}d}"
        self._on_code(code)
        accepted = await self._confirm(code)
        log.info("pairing code %s %s", code, "accepted" if accepted else "rejected")
        return accepted

    async def confirm(self, auto: bool = False) -> bool:
        """Refuse Just Works: an iPhone bonding for ANCS always compares numbers."""
        log.warning("the car asked for pairing without a code (Just Works): refused")
        return False


def pairing_config(delegate: NumericComparison, *, public_identity: bool = False) -> Any:
    """Bumble's pairing config of an iPhone: LE SC, MITM, bonding, and as identity the
    random static address, or with ``public_identity`` the controller's public address
    (its BR/EDR address, so the car sees one phone on LE and Classic)."""
    return PairingConfig(
        sc=True,
        mitm=True,
        bonding=True,
        delegate=delegate,
        identity_address_type=(
            PairingConfig.AddressType.PUBLIC if public_identity
            else PairingConfig.AddressType.RANDOM
        ),
    )
