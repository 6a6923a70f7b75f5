"""One Classic phone's link to the car: authenticate, encrypt, find PBAP, pull.

Theory of operation, per BR/EDR connection (``ClassicLink.run``):

1. Authentication. A phone that connects starts it itself, as a real phone does when its
   user taps the car in Settings; if it has not within ``AUTH_WAIT_S`` of the ACL (and no
   pairing is under way), the car authenticates. A car-initiated connection always does.
   SSP numeric comparison is decided by ``carhub.pbap.pairing``; a refusal or a failure is
   ``classic_pairing_failed`` and the link is dropped. A new bond is ``classic_bonded``.
   A bonded phone authenticates with its link key and no SSP. One that forgot the car
   fails that check (HCI 0x06 or 0x05): with the pairing window open the car authenticates
   again with its host answering "no key" for this address (``LinkSettings.rekeying``),
   which runs SSP with the code shown as replacing a bond; the old key is replaced only by
   an accepted pairing and stays on a rejection, a timeout or a failure. With the window
   closed the car keeps the key, says the phone must pair again, and drops the link.
   A link key written on the link that the car user never accepted (passkey entry that
   completed anyway), or a link authenticated with no bond behind it, has its link key
   undone at once (the previous one back, or none; LE keys stay) and is dropped.
2. Encryption: required when the controller can encrypt; Bumble's virtual controller
   cannot, so there one line says the emulated link is unencrypted and the pull goes on.
3. ``classic_connected``, then SDP (the PSE's RFCOMM channel), RFCOMM, OBEX CONNECT with
   the PBAP target, and the pull (``carhub.pbap.pull``). Any failure after step 3 began
   is one log line and ``classic_pull_failed``. A disconnection cancels the pull at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from bumble import hci, rfcomm
from bumble.device import Connection
from bumble.keys import KeyStore, PairingKeys

from carhub.apple import apple_phone_id
from carhub.classic import ClassicEvents, ClassicLinkError
from carhub.pbap.obex_link import RESPONSE_TIMEOUT_S, ObexChannel
from carhub.pbap.pairing import (
    KEY_REJECTED,
    PHONE_LOST_KEY,
    LinkPairing,
    has_link_key,
    link_key_of,
    restore_link_key,
)
from carhub.pbap.pull import pull_book
from carhub.pbap.sdp_lookup import find_pse
from protocol.pbap import PBAP_TARGET, car_features, connect_app_params

__all__ = ["AUTH_TIMEOUT_S", "AUTH_WAIT_S", "ClassicLink", "LinkSettings"]

log = logging.getLogger("carhub.pbap")

# PBAP_API: the car authenticates itself when the phone has not within 2 s of the ACL.
AUTH_WAIT_S: Final = 2.0
# SSP with a person comparing codes on both sides: the car's 25 s decision and the rest.
AUTH_TIMEOUT_S: Final = 40.0
ENCRYPT_TIMEOUT_S: Final = 10.0
RFCOMM_TIMEOUT_S: Final = 10.0
NAME_TIMEOUT_S: Final = 2.0
_PBAP_12: Final = 0x0102
_T = TypeVar("_T")
_TERMINATED = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR


@dataclass(frozen=True)
class LinkSettings:
    """What every link of one car shares."""

    events: ClassicEvents
    keystore: KeyStore
    page_size: int
    emulated: bool  # the controller cannot encrypt (Bumble's virtual one)
    spawn: Callable[[Awaitable[None]], None]
    response_timeout: float = RESPONSE_TIMEOUT_S
    # Phone ids whose Link Key Request the car's host answers with "no key" (re-keying):
    # shared with ``ClassicCar``'s link key provider.
    rekeying: set[str] = field(default_factory=set)


class _AuthFailed(ClassicLinkError):
    """Authentication Complete with an error status."""

    def __init__(self, code: int) -> None:
        super().__init__(f"authentication failed (HCI 0x{code:02X})")
        self.code = code


class ClassicLink:
    """A connected Classic phone (``carhub.classic.ClassicHandle``).

    Args:
        connection: the BR/EDR connection.
        pairing: the connection's pairing record (shared with its SSP delegate).
        settings: the car's events, key store and page size.
    """

    transport_name = "classic"

    def __init__(
        self, connection: Connection, pairing: LinkPairing, settings: LinkSettings
    ) -> None:
        self.connection = connection
        self.address = connection.peer_address.to_string(False)
        self.phone_id = apple_phone_id(self.address)
        self.pairing = pairing
        self._s = settings
        self._gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._connected = False
        self._obex: ObexChannel | None = None
        self._reported = False  # the pull ended with pull_done or pull_skipped
        self._prior: PairingKeys | None = None  # the car's link key before this link
        self._new_key = False  # the controller gave a new link key (Bumble stored it)
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        connection.on(connection.EVENT_LINK_KEY, self._on_link_key)

    def close(self, reason: str) -> None:
        """Disconnect the phone (in the background)."""
        log.info("Classic phone %s: disconnecting (%s)", self.address, reason)
        self._s.spawn(self.disconnect())

    async def disconnect(self) -> None:
        """Drop the ACL (already gone is fine)."""
        if self._gone.done():
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.connection.disconnect(_TERMINATED), ENCRYPT_TIMEOUT_S)

    def gone(self) -> None:
        """The connection ended (or the transport went away): end everything of it."""
        if not self._gone.done():
            self._gone.set_result(None)
        if self._obex is not None:
            self._obex.lost("the phone disconnected")
        if self._connected:
            self._connected = False
            self._s.events.classic_disconnected(self.phone_id, self)

    @property
    def live(self) -> bool:
        """Authenticated (and encrypted where the controller can) and reported connected."""
        return self._connected

    async def run(self, *, car_initiated: bool) -> None:
        """Pair if needed, then pull; every outcome is reported into the engine."""
        events = self._s.events
        self._s.spawn(self._learn_name())
        try:
            await self._until_gone(self._authenticate(car_initiated))
        except ClassicLinkError as exc:
            reason = self.pairing.refusal or str(exc)
            log.warning("Classic phone %s: pairing failed: %s", self.address, reason)
            if self._new_key and not (self.pairing.new_bond and self._is_bonded()):
                await self._undo_key()
            events.classic_pairing_failed(self.phone_id, reason)
            await self.disconnect()
            return
        if self.pairing.new_bond:
            events.classic_bonded(self.phone_id, self.pairing.phone_name)
        if (self._new_key and not self.pairing.new_bond) or not self._is_bonded():
            log.warning(
                "Classic phone %s: authenticated but not bonded; link key undone, dropped",
                self.address,
            )
            await self._undo_key()
            await self.disconnect()
            return
        try:
            await self._until_gone(self._encrypt())
        except ClassicLinkError as exc:
            log.warning("Classic phone %s: %s; dropped", self.address, exc)
            await self.disconnect()
            return
        self._connected = True
        events.classic_connected(self.phone_id, self)
        try:
            await self._until_gone(self._pull())
        except ClassicLinkError as exc:
            if self._reported:  # the pull was reported whole; only the goodbye failed
                log.debug("Classic phone %s: closing the PBAP channel: %s", self.address, exc)
                return
            log.warning("PBAP pull from %s failed: %s", self.address, exc)
            events.classic_pull_failed(self.phone_id, str(exc))

    async def _until_gone(self, step: Awaitable[None]) -> None:
        """Await ``step``, cancelled at once if the phone disconnects."""
        task = asyncio.ensure_future(step)
        try:
            await asyncio.wait({task, self._gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise ClassicLinkError("the phone disconnected")
        task.result()

    async def _learn_name(self) -> None:
        """Ask the phone its name for the pairing request (best effort, bounded)."""
        device = self.connection.device
        with contextlib.suppress(Exception):
            name = await asyncio.wait_for(
                device.request_remote_name(self.connection), NAME_TIMEOUT_S
            )
            self.pairing.phone_name = self.pairing.phone_name or str(name)[:64]

    async def _authenticate(self, car_initiated: bool) -> None:
        """Authenticate; pair again a phone that forgot the car, if the window is open."""
        keystore = self._s.keystore
        self._prior = await link_key_of(keystore, self.phone_id)
        try:
            await self._authenticate_once(car_initiated)
        except _AuthFailed as exc:
            # An SSP that ran and failed (the code rejected, say) is not a key check.
            started = self.pairing.started
            if (
                started
                or exc.code not in KEY_REJECTED
                or not await has_link_key(keystore, self.phone_id)
            ):
                raise
            if not self._s.events.classic_may_bond():
                # Keep the key: a device that claims a bonded phone's address must not be
                # able to erase its bond.
                self.pairing.refuse(PHONE_LOST_KEY)
                raise
            log.info(
                "Classic phone %s failed the link key check (HCI 0x%02X) with the pairing "
                "window open: pairing again; its key is replaced only if the code is accepted",
                self.address,
                exc.code,
            )
            # Nothing is deleted before the car user's decision: the host answers "no key"
            # for this address until this SSP ends, and only an accepted one writes a key.
            self._prior = await link_key_of(keystore, self.phone_id)
            self.pairing.replaces_bond = True
            self._s.rekeying.add(self.phone_id)
            try:
                await self._authenticate_once(car_initiated=True)
            finally:
                self._s.rekeying.discard(self.phone_id)

    def _is_bonded(self) -> bool:
        return self._s.events.classic_is_bonded(self.phone_id)

    async def _undo_key(self) -> None:
        """Undo this link's link key: a bonded phone's previous one back, else none."""
        prior = self._prior if self._is_bonded() else None
        await asyncio.sleep(0)  # Bumble stores the new key in a task: let it land first
        try:
            await restore_link_key(self._s.keystore, self.phone_id, prior)
        except Exception as exc:  # a key store that cannot be written
            log.warning("Classic phone %s: cannot undo its link key: %s", self.address, exc)

    async def _authenticate_once(self, car_initiated: bool) -> None:
        """Wait for the phone's authentication, or run it (see the module docstring)."""
        connection = self.connection
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def ok() -> None:
            if not done.done():
                done.set_result(None)

        def failed(code: int) -> None:
            if not done.done():
                done.set_exception(_AuthFailed(code))

        connection.on(connection.EVENT_CONNECTION_AUTHENTICATION, ok)
        connection.on(connection.EVENT_CONNECTION_AUTHENTICATION_FAILURE, failed)
        try:
            if connection.authenticated:
                return
            if not car_initiated:
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(done), AUTH_WAIT_S)
            if not self.pairing.started:
                try:
                    await _bounded(connection.authenticate(), AUTH_TIMEOUT_S, "authentication")
                except ClassicLinkError:
                    if done.done():
                        done.result()  # raises _AuthFailed, which carries the HCI status
                    raise
            await _bounded(done, AUTH_TIMEOUT_S, "authentication")
        finally:
            connection.remove_listener(connection.EVENT_CONNECTION_AUTHENTICATION, ok)
            connection.remove_listener(connection.EVENT_CONNECTION_AUTHENTICATION_FAILURE, failed)

    async def _encrypt(self) -> None:
        """Require encryption, except on the virtual controller (logged once per link)."""
        if self._s.emulated:
            log.info(
                "emulated Classic link to %s: unencrypted (the virtual controller cannot encrypt)",
                self.address,
            )
            return
        if not self.connection.is_encrypted:
            await _bounded(self.connection.encrypt(), ENCRYPT_TIMEOUT_S, "encryption")

    async def _pull(self) -> None:
        """SDP, RFCOMM, OBEX CONNECT, the pull, then close the channel politely."""
        record = await find_pse(self.connection)
        client = rfcomm.Client(self.connection)
        mux = await _bounded(client.start(), RFCOMM_TIMEOUT_S, "RFCOMM")
        dlc = await _bounded(mux.open_dlc(record.channel), RFCOMM_TIMEOUT_S, "RFCOMM channel")
        obex = ObexChannel(dlc, self.address, timeout=self._s.response_timeout)
        self._obex = obex
        dlc.on(dlc.EVENT_CLOSE, lambda: obex.lost("the RFCOMM channel closed"))
        try:
            # PBAP 1.2 section 6.4: the features go in the CONNECT only to a 1.2 PSE.
            claimed = 0
            if record.features_known or record.version >= _PBAP_12:
                claimed = car_features(record.features)
            await obex.connect(PBAP_TARGET, connect_app_params(claimed) if claimed else b"")
            result = await pull_book(
                obex,
                self._s.events,
                self.phone_id,
                page_size=self._s.page_size,
                shared_features=claimed & record.features,
            )
            self._reported = True
            log.info(
                "PBAP %s from %s: %d contacts in %.2f s",
                result.outcome,
                self.address,
                result.cards,
                result.seconds,
            )
            await obex.disconnect()
        finally:
            self._obex = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown(), RFCOMM_TIMEOUT_S)

    def _on_disconnection(self, _reason: int) -> None:
        self.gone()

    def _on_link_key(self) -> None:
        self._new_key = True


async def _bounded(step: Awaitable[_T], timeout: float, what: str) -> _T:
    """Await a step on the peer with a timeout; its failures become ``ClassicLinkError``."""
    try:
        return await asyncio.wait_for(step, timeout)
    except TimeoutError:
        raise ClassicLinkError(f"no {what} within {timeout:g} s") from None
    except ClassicLinkError:
        raise
    except Exception as exc:  # HCI errors, a lost L2CAP channel, Bumble's state errors
        raise ClassicLinkError(f"{what} failed: {type(exc).__name__} {exc}") from None
