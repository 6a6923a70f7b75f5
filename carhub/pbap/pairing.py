"""Secure Simple Pairing for a Classic phone: numeric comparison through the dashboard.

Bumble asks ``Device.pairing_config_factory`` for a BR/EDR connection's config when the
controller starts SSP (the IO capability request), and calls the delegate's
``compare_numbers`` when both sides display yes/no. Every other method is refused: Just
Works (``confirm``) has no MITM protection, and the car enters no passkey.

Which pairings may make a bond:
- a new bond only while the pairing window is open (``classic_may_bond``), before the code
  is shown and again once the car user accepted it;
- a phone the car has bonded already (the engine lists it, ``classic_is_bonded``, and the
  key store holds a link key for its BD_ADDR) may pair again with the window closed, but
  only on a controller that never asks the host for a stored link key (Bumble's virtual
  controller, known by its lack of HCI_Set_Connection_Encryption): there every reconnect
  is a new SSP. Its code is still shown and must be accepted (or auto-confirmed). With a
  real adapter a bonded phone authenticates with its link key and never reaches SSP, so a
  new SSP from a bonded address means the phone lost its key or another device took its
  address: that is a new bond, and the window rule applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from bumble.keys import KeyStore
from bumble.pairing import PairingDelegate

from carhub.apple import apple_phone_id
from carhub.classic import ClassicEvents

__all__ = ["LinkPairing", "SspDelegate", "has_link_key"]


@dataclass
class LinkPairing:
    """What the pairing of one BR/EDR connection did (read by ``carhub.pbap.car``)."""

    phone_id: str
    phone_name: str = ""
    started: bool = False  # SSP began (the controller asked for our IO capability)
    new_bond: bool = False  # the car user accepted a code for a phone not bonded yet
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


class SspDelegate(PairingDelegate):
    """SSP numeric comparison through ``ClassicEvents.classic_pairing_requested``.

    Args:
        state: the connection's pairing record.
        events: the engine.
        keystore: the car's key store (link keys).
        rebond_without_window: whether a bonded phone may pair again with the window
            closed (only on a controller without link key requests: see the module doc).
        timeout: seconds to wait for the car user's answer.
    """

    def __init__(
        self,
        state: LinkPairing,
        events: ClassicEvents,
        keystore: KeyStore,
        *,
        rebond_without_window: bool,
        timeout: float,
    ) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self._state = state
        self._events = events
        self._keystore = keystore
        self._rebond = rebond_without_window
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
        rebond = self._rebond and events.classic_is_bonded(state.phone_id)
        rebond = rebond and await has_link_key(self._keystore, state.phone_id)
        if not rebond and not events.classic_may_bond():
            return state.refuse("the pairing window is closed")
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
        if not rebond and not events.classic_may_bond():
            return state.refuse("the pairing window closed before the code was accepted")
        state.new_bond = not rebond
        return True
