"""Secure Simple Pairing for a Classic phone: numeric comparison through the dashboard.

Bumble asks ``Device.pairing_config_factory`` for a BR/EDR connection's config when the
controller starts SSP (the IO capability request), and calls the delegate's
``compare_numbers`` when both sides display yes/no. Every other method is refused: Just
Works (``confirm``) has no MITM protection, the car enters no passkey (``get_number``) and
displays none for a KeyboardOnly phone to type (``display_number`` drops the link), and
legacy PIN pairing is not SSP (``accept``, ``get_string``).

Which pairings may make a bond: a bonded phone authenticates with its link key (the
controller asks the host for it with HCI Link Key Request, on real adapters and on the
project's emulated radio alike) and never reaches SSP. So every SSP makes a new bond, a
bonded address included (the phone lost its key, or another device took its address):
only while the pairing window is open (``classic_may_bond``), before the code is shown
and again once the car user accepted it.

A phone that forgot the car fails the link key check instead (Authentication Complete
0x06 PIN or Key Missing, or 0x05 when it holds another key). ``carhub.pbap.link`` then
pairs again, but only while the window is open, and without deleting anything first: for
that connection the car's host answers the controller's Link Key Request with "no key"
(``ClassicCar``'s re-keying set), so SSP runs with the code shown and marked as replacing
a bond (``LinkPairing.replaces_bond``), and the controller's new key replaces the old one
only when the car user accepted it. A rejected or unanswered code leaves the old key as it
was: a device that claims a bonded phone's address cannot erase its bond
(``KEY_REJECTED``, ``PHONE_LOST_KEY``).

A key the car user never accepted (a passkey-entry SSP that completed anyway, say) is
undone by ``carhub.pbap.link`` with ``restore_link_key``: the car's previous link key, or
none, and the LE keys of the same entry untouched.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bumble import hci
from bumble.keys import KeyStore, PairingKeys
from bumble.pairing import PairingDelegate

from carhub.apple import apple_phone_id
from carhub.classic import ClassicEvents
from carhub.pending import ask_car_user

__all__ = [
    "KEY_REJECTED",
    "PHONE_LOST_KEY",
    "REPLACES_BOND",
    "LinkPairing",
    "SspDelegate",
    "forget_link_key",
    "has_link_key",
    "link_key_of",
    "restore_link_key",
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
# A pairing request for an address the car already has a key for says so on the dashboard.
REPLACES_BOND: Final = "replaces its bond"


@dataclass
class LinkPairing:
    """What the pairing of one BR/EDR connection did (read by ``carhub.pbap.car``)."""

    phone_id: str
    phone_name: str = ""
    started: bool = False  # SSP began (the controller asked for our IO capability)
    new_bond: bool = False  # the car user accepted a code: a new bond (for any address)
    replaces_bond: bool = False  # a re-key: the car holds a key for this address
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


async def link_key_of(keystore: KeyStore, phone_id: str) -> PairingKeys | None:
    """Return the link key (``link_key``, ``link_key_type``) held for ``phone_id``, if any."""
    with contextlib.suppress(Exception):  # a damaged bonds.json holds no key to keep
        for name, keys in await keystore.get_all():
            if apple_phone_id(name) == phone_id and keys.link_key is not None:
                return PairingKeys(link_key=keys.link_key, link_key_type=keys.link_key_type)
    return None


async def restore_link_key(keystore: KeyStore, phone_id: str, prior: PairingKeys | None) -> None:
    """Put back the link key ``prior`` (from ``link_key_of``), or none, keeping LE keys.

    Args:
        keystore: the car's key store.
        phone_id: the phone's BD_ADDR as 12 lower-case hex digits.
        prior: the link key the car held before a key it did not accept was written.
    """
    if prior is None or prior.link_key is None:
        await forget_link_key(keystore, phone_id)
        return
    for name, keys in await keystore.get_all():
        if apple_phone_id(name) != phone_id:
            continue
        # delete + update: the JSON store merges and the memory store replaces on update.
        await keystore.delete(name)
        keys.link_key, keys.link_key_type = prior.link_key, prior.link_key_type
        await keystore.update(name, keys)
        log.info("Classic: restored the car's previous link key for %s", name)


async def forget_link_key(keystore: KeyStore, phone_id: str) -> bool:
    """Delete the car's BR/EDR link key for ``phone_id``, keeping the entry's LE keys.

    For a key nobody accepted, or a link that is not a bond (see the module docstring):
    an iPhone bonded over LE too keeps its LE bond.

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
        abort: ends the pairing when the delegate cannot refuse by answering (drops the
            ACL); None does nothing.
    """

    def __init__(
        self,
        state: LinkPairing,
        events: ClassicEvents,
        keystore: KeyStore,
        *,
        timeout: float,
        abort: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self._state = state
        self._events = events
        self._keystore = keystore
        self._timeout = timeout
        self._abort: Callable[[], None] = abort or (lambda: None)

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

    async def get_string(self, max_length: int) -> str | None:
        """Refuse a PIN (legacy pairing): SSP numeric comparison only."""
        self._state.refuse("the phone asked for a PIN (legacy pairing); SSP only")
        return None

    async def display_number(self, number: int, digits: int) -> None:
        """Refuse passkey entry with the car displaying (the phone declared KeyboardOnly).

        The displaying side's host has no negative reply, so ``abort`` drops the link; a
        key that SSP writes anyway is undone by ``carhub.pbap.link``.
        """
        self._state.refuse("the phone asked for passkey entry; only numeric comparison")
        log.info("Classic phone %s: passkey entry refused", self._state.phone_id)
        self._abort()

    async def compare_numbers(self, number: int, digits: int) -> bool:
        """Show the code on the dashboard and wait for the car user's answer."""
        state, events = self._state, self._events
        if not events.classic_may_bond():
            return state.refuse(await self._closed_window_reason())
        code = f"{number:0{digits}d}"
        name = state.phone_name
        # A phone-initiated SSP for a bonded address replaces the bond just as a re-key does.
        state.replaces_bond = state.replaces_bond or await has_link_key(
            self._keystore, state.phone_id
        )
        if state.replaces_bond:  # the car user must know an existing bond is at stake
            name = f"{name} ({REPLACES_BOND})" if name else f"{state.phone_id} ({REPLACES_BOND})"
        expires_at = time.time() + self._timeout
        refusal = await ask_car_user(
            lambda decide: events.classic_pairing_requested(
                state.phone_id, name, code, expires_at, decide
            ),
            code,
            self._timeout,
        )
        if refusal:
            return state.refuse(refusal)
        if not events.classic_may_bond():
            return state.refuse("the pairing window closed before the code was accepted")
        state.new_bond = True
        return True

    async def _closed_window_reason(self) -> str:
        """Why SSP is refused with the window closed (a bonded phone that lost its key)."""
        if await has_link_key(self._keystore, self._state.phone_id):
            return PHONE_LOST_KEY
        return "the pairing window is closed"
