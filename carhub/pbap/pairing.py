"""Secure Simple Pairing for a Classic phone: numeric comparison through the dashboard.

Bumble asks ``Device.pairing_config_factory`` for a BR/EDR connection's config when the
controller starts SSP (the IO capability request), and calls the delegate's
``compare_numbers`` when both sides display yes/no. Every other method is refused: Just
Works (``confirm``) has no MITM protection, and the car enters no passkey.

Which pairings may make a bond: a bonded phone authenticates with its link key (the
controller asks the host for it with HCI Link Key Request, on real adapters and on the
project's emulated radio alike) and never reaches SSP. So every SSP makes a new bond, a
bonded address included (the phone lost its key, or another device took its address):
only while the pairing window is open (``classic_may_bond``), before the code is shown
and again once the car user accepted it.

A phone that forgot the car fails the link key check instead (Authentication Complete
0x06 PIN or Key Missing, or 0x05 when it holds another key). ``carhub.pbap.link`` then
deletes the car's link key with ``forget_link_key`` and pairs again, but only while the
window is open: a device that claims a bonded phone's address must not be able to erase
its bond (``KEY_REJECTED``, ``PHONE_LOST_KEY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bumble import hci
from bumble.keys import KeyStore
from bumble.pairing import PairingDelegate

from carhub.apple import apple_phone_id
from carhub.classic import ClassicEvents

__all__ = [
    "KEY_REJECTED",
    "PHONE_LOST_KEY",
    "LinkPairing",
    "SspDelegate",
    "forget_link_key",
    "has_link_key",
]

log = logging.getLogger("carhub.pbap")

# The Authentication Complete statuses of a link key check the phone failed: it has no key
# for the car (PIN or Key Missing) or another one (Authentication Failure).
KEY_REJECTED: Final = frozenset(
    {hci.HCI_PIN_OR_KEY_MISSING_ERROR, hci.HCI_AUTHENTICATION_FAILURE_ERROR}
)
PHONE_LOST_KEY: Final = (
    "the phone no longer has this car's key: open the pairing window on the car and pair again"
)
_LE_KEYS: Final = ("ltk", "ltk_central", "ltk_peripheral", "irk", "csrk")


@dataclass
class LinkPairing:
    """What the pairing of one BR/EDR connection did (read by ``carhub.pbap.car``)."""

    phone_id: str
    phone_name: str = ""
    started: bool = False  # SSP began (the controller asked for our IO capability)
    new_bond: bool = False  # the car user accepted a code: a new bond (for any address)
    refusal: str = ""  # why the car refused, "" if it did not

    def refuse(self, reason: str) -> bool:
        """Record why (the first reason wins) and return False."""
        self.refusal = self.refusal or reason
        return False


async def has_link_key(keystore: KeyStore, phone_id: str) -> bool:
    """Whether ``keystore`` holds a BR/EDR link key for ``phone_id``."""
    try:
        bonds = await keystore.get_all()
    except Exception:  # a damaged bonds.json: no bond can be trusted
        return False
    return any(apple_phone_id(n) == phone_id and k.link_key is not None for n, k in bonds)


async def forget_link_key(keystore: KeyStore, phone_id: str) -> bool:
    """Delete the car's BR/EDR link key for ``phone_id``, keeping the entry's LE keys.

    Only for a phone that failed the link key check while the pairing window is open (see
    the module docstring): an iPhone bonded over LE too keeps its LE bond.

    Args:
        keystore: the car's key store.
        phone_id: the phone's BD_ADDR as 12 lower-case hex digits.

    Returns:
        Whether a link key was deleted.
    """
    deleted = False
    for name, keys in await keystore.get_all():
        if apple_phone_id(name) != phone_id or keys.link_key is None:
            continue
        # Bumble's JsonKeyStore.update merges into the stored entry, so a field is dropped
        # by deleting the entry and writing back what remains.
        await keystore.delete(name)
        keys.link_key = keys.link_key_type = None
        if any(getattr(keys, f) is not None for f in _LE_KEYS):
            await keystore.update(name, keys)
        log.info("Classic: deleted the car's link key for %s", name)
        deleted = True
    return deleted


class SspDelegate(PairingDelegate):
    """SSP numeric comparison through ``ClassicEvents.classic_pairing_requested``.

    Args:
        state: the connection's pairing record.
        events: the engine.
        keystore: the car's key store (link keys).
        timeout: seconds to wait for the car user's answer.
    """

    def __init__(
        self,
        state: LinkPairing,
        events: ClassicEvents,
        keystore: KeyStore,
        *,
        timeout: float,
    ) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self._state = state
        self._events = events
        self._keystore = keystore
        self._timeout = timeout

    async def accept(self) -> bool:
        """Legacy (PIN) pairing: refused, SSP only."""
        return self._state.refuse("the phone asked for legacy PIN pairing; SSP only")

    async def confirm(self, auto: bool = False) -> bool:
        """Refuse Just Works: it has no MITM protection."""
        return self._state.refuse("the phone offered Just Works pairing (no code); refused")

    async def get_number(self) -> int | None:
        """Refuse passkey entry (the car only compares numbers)."""
        self._state.refuse("the phone asked for passkey entry; only numeric comparison")
        return None

    async def compare_numbers(self, number: int, digits: int) -> bool:
        """Show the code on the dashboard and wait for the car user's answer."""
        state, events = self._state, self._events
        if not events.classic_may_bond():
            return state.refuse(await self._closed_window_reason())
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()

        def decide(accepted: bool) -> None:
            if not answer.done():
                answer.set_result(bool(accepted))

        code = f"{number:0{digits}d}"
        withdraw: Callable[[], None] = events.classic_pairing_requested(
            state.phone_id, state.phone_name, code, time.time() + self._timeout, decide
        )
        try:
            accepted = await asyncio.wait_for(answer, self._timeout)
        except TimeoutError:
            return state.refuse(f"no answer to code {code} within {self._timeout:.0f} s")
        finally:
            with contextlib.suppress(Exception):
                withdraw()
        if not accepted:
            return state.refuse(f"code {code} was rejected on the car")
        if not events.classic_may_bond():
            return state.refuse("the pairing window closed before the code was accepted")
        state.new_bond = True
        return True

    async def _closed_window_reason(self) -> str:
        """Why SSP is refused with the window closed (a bonded phone that lost its key)."""
        if await has_link_key(self._keystore, self._state.phone_id):
            return PHONE_LOST_KEY
        return "the pairing window is closed"
