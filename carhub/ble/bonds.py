"""The car's Bluetooth LE bonds: where their keys live, and which pairings may make one.

Keys (LTK, the phone's IRK and identity address) live in ``STATE/bonds.json``, a Bumble
``JsonKeyStore`` written 0600 (it holds secrets), so a bonded iPhone reconnects encrypted
after a car restart with no new code. The file is keyed by the phone's identity address:
Bumble resolves a resolvable private address through the IRKs loaded at power-on (and
after every new bond, ``Device.refresh_resolving_list``), so ``connection.peer_address``
of a bonded phone is its identity address whatever address it connected from.

Only LE Secure Connections numeric comparison makes a bond (Apple requires MITM): Bumble
marks every bond "authenticated", Just Works included, so ``NumericComparisonSession``
refuses any other method before a key exists, and ``CarPairingDelegate`` shows the code
through ``AppleEvents.apple_pairing_requested`` and waits for the car user's answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bumble import smp
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore, PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

from carhub.apple import AppleEvents, apple_phone_id
from carhub.pending import ask_car_user

__all__ = [
    "DECISION_TIMEOUT_S",
    "CarKeyStore",
    "CarPairingDelegate",
    "NumericComparisonSession",
    "PairingState",
    "drop_unknown_bonds",
    "erase_bonds",
    "le_pairing_config",
    "load_irk",
    "open_keystore",
    "session_proxy",
]

log = logging.getLogger("carhub.ble.apple")

# The car user's answer must come within the SMP timeout (30 s, Core Vol 3 Part H 3.4),
# or the phone gives up first; 25 s leaves room for the rest of the exchange.
DECISION_TIMEOUT_S = 25.0
_NAMESPACE = "car"
# Refusing a pairing that would take over a bond: at the Pairing Request, what Bumble sends
# when the delegate refuses; during key distribution no code names a stolen identity, so
# the one Bumble sends for an unexpected key.
_NOT_SUPPORTED = smp.ErrorCode.PAIRING_NOT_SUPPORTED
_UNSPECIFIED = smp.ErrorCode.UNSPECIFIED_REASON
_TAKEOVER = "identity already bonded to another phone; unpair it first"


class CarKeyStore(JsonKeyStore):
    """A ``JsonKeyStore`` whose file is created 0600 and replaced atomically."""

    async def save(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Write ``db`` to a 0600 temporary file, then rename it over the store."""
        self.directory_name.mkdir(parents=True, exist_ok=True)
        temp = self.filename.with_name(self.filename.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(db, out, sort_keys=True, indent=4)
        os.chmod(temp, 0o600)  # an older temporary file may have had wider bits
        os.replace(temp, self.filename)


def open_keystore(state_dir: Path | None) -> KeyStore:
    """Return the car's key store: ``STATE/bonds.json``, or in memory without a state dir."""
    if state_dir is None:
        return MemoryKeyStore()
    return CarKeyStore(_NAMESPACE, str(state_dir / "bonds.json"))


def load_irk(state_dir: Path | None) -> bytes:
    """Return the car's Identity Resolving Key, created once in ``STATE/ble_irk`` (0600).

    The car advertises from a static address, so its IRK only has to be unguessable (it
    is distributed to every bonded phone); without a state dir it is random per run.
    """
    if state_dir is None:
        return secrets.token_bytes(16)
    path = state_dir / "ble_irk"
    with contextlib.suppress(FileNotFoundError, ValueError):
        irk = bytes.fromhex(path.read_text().strip())
        if len(irk) == 16:
            return irk
    irk = secrets.token_bytes(16)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(irk.hex() + "\n")
    return irk


async def erase_bonds(keystore: KeyStore, phone_id: str) -> None:
    """Erase every stored bond of ``phone_id`` (its identity address)."""
    for name, _keys in await keystore.get_all():
        if apple_phone_id(name) == phone_id:
            with contextlib.suppress(KeyError):
                await keystore.delete(name)
            log.info("BLE: erased the bond of %s", phone_id)


async def drop_unknown_bonds(
    keystore: KeyStore,
    events: AppleEvents | None,
    keep: Callable[[str], bool] | None = None,
) -> None:
    """Erase stored bonds the engine does not list (unpaired while the radio was off).

    Args:
        keystore: the car's bonds.
        events: the Apple-profile side; an entry it lists stays. None lists none.
        keep: a second predicate on the entry's name (``ClassicCar.is_bonded``: a Classic
            phone's link key); an entry either keeps stays.
    """
    for name, _keys in await keystore.get_all():
        listed = events is not None and events.apple_is_bonded(apple_phone_id(name))
        if not listed and not (keep is not None and keep(name)):
            log.info("BLE: erasing the bond of %s, which the car no longer lists", name)
            with contextlib.suppress(KeyError):
                await keystore.delete(name)


class PairingState(Protocol):
    """What a pairing delegate needs of the Apple-profile link it pairs (``carhub.ble.apple``)."""

    phone_name: str
    refusal: str  # why the car refused, "" if it did not

    @property
    def phone_id(self) -> str:
        """The phone's id as the pairing request shows it."""
        ...

    def paired_by_comparison(self) -> None:
        """Note that the car user accepted a numeric-comparison code on this link."""
        ...


class CarPairingDelegate(PairingDelegate):
    """Numeric comparison through the dashboard; every other method is refused.

    Args:
        state: the link being paired, or None (a connection that is not an Apple-profile
            phone: refuse).
        events: the engine (window state, the pairing request).
        timeout: seconds to wait for the car user's answer.
    """

    def __init__(
        self, state: PairingState | None, events: AppleEvents | None, timeout: float
    ) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self._state = state
        self._events = events
        self._timeout = timeout

    def refuse(self, reason: str) -> bool:
        """Record why the car refused (the first reason wins) and return False."""
        if self._state is not None and not self._state.refusal:
            self._state.refusal = reason
        return False

    async def accept(self) -> bool:
        """Start a pairing only for an Apple-profile link, with the pairing window open."""
        if self._state is None or self._events is None:
            return self.refuse("not an Apple-profile phone")
        if not self._events.apple_may_bond():
            return self.refuse("the pairing window is closed")
        return True

    async def confirm(self, auto: bool = False) -> bool:
        """Refuse Just Works: it has no MITM protection."""
        return self.refuse("the phone offered Just Works pairing (no code); refused")

    async def get_number(self) -> int | None:
        """Refuse passkey entry (the car only compares numbers)."""
        self.refuse("the phone asked for passkey entry; only numeric comparison is allowed")
        return None

    async def compare_numbers(self, number: int, digits: int) -> bool:
        """Show the code on the dashboard and wait for the car user's answer."""
        state, events = self._state, self._events
        if state is None or events is None:
            return self.refuse("not an Apple-profile phone")
        if not events.apple_may_bond():
            return self.refuse("the pairing window is closed")
        code = f"{number:0{digits}d}"
        expires_at = time.time() + self._timeout
        refusal = await ask_car_user(
            lambda decide: events.apple_pairing_requested(
                state.phone_id, state.phone_name, code, expires_at, decide
            ),
            code,
            self._timeout,
        )
        if refusal:
            return self.refuse(refusal)
        if not events.apple_may_bond():  # the window ran out while the user looked
            return self.refuse("the pairing window closed before the code was accepted")
        state.paired_by_comparison()
        return True


def le_pairing_config(state: PairingState | None, events: AppleEvents | None) -> PairingConfig:
    """LE SC with MITM and bonding; the delegate shows the code on the dashboard."""
    # The car's identity is the static address it advertises from (a controller's public
    # address may change with the radio), so the phone's bond stays valid.
    return PairingConfig(
        sc=True,
        mitm=True,
        bonding=True,
        delegate=CarPairingDelegate(state, events, DECISION_TIMEOUT_S),
        identity_address_type=PairingConfig.AddressType.RANDOM,
    )


def session_proxy(classic_live: Callable[[str], bool] | None) -> type[NumericComparisonSession]:
    """The SMP session class of one car: ``classic_live(phone_id)`` says whether a phone
    is on an authenticated BR/EDR link now (``carhub.pbap.ClassicCar.is_live``)."""
    if classic_live is None:
        return NumericComparisonSession
    attrs = {"_classic_live": staticmethod(classic_live)}
    return type("CarSmpSession", (NumericComparisonSession,), attrs)


class NumericComparisonSession(smp.Session):
    """An SMP session that refuses every method but LE SC numeric comparison up front, and
    every pairing that would take over an existing bond.

    The method check runs on the Pairing Request, before any key is derived, so nothing is
    stored for a refused pairing (the delegate alone would see Just Works only after the keys).

    Bumble stores a new bond under the identity address the peer distributes, replacing any
    keys already there, so a phone that distributes a bonded phone's address (or IRK, which
    resolves to it) would be served as that phone. A bonded iPhone reconnects with encryption
    and never pairs again, so the car refuses a pairing from a bonded identity, or one whose
    distributed identity matches a bond: the bond must be unpaired first. Only entries with
    LE keys (an LTK or an IRK) count: a BR/EDR link key alone is no LE identity.
    """

    _bonded_ids: frozenset[str] = frozenset()  # apple_phone_id of every stored bond
    _classic_live: Callable[[str], bool] = staticmethod(lambda _phone_id: False)
    _bonded_irks: frozenset[bytes] = frozenset()

    async def on_smp_pairing_request_command_async(
        self, command: smp.SMP_Pairing_Request_Command
    ) -> None:
        """Refuse a pairing that would not be numeric comparison, or that comes from a
        bonded identity; else pair as usual."""
        reason = self._refusal(command)
        if reason:
            log.info("BLE pairing with %s refused: %s", self.connection.peer_address, reason)
            self._refuse(reason, smp.ErrorCode.AUTHENTICATION_REQUIREMENTS)
            return
        if not await self._load_bonds():
            return
        if self._taken(self.connection.peer_address, None):
            self._refuse_takeover("address", self.connection.peer_address, _NOT_SUPPORTED)
            return
        await super().on_smp_pairing_request_command_async(command)

    def on_smp_identity_information_command(
        self, command: smp.SMP_Identity_Information_Command
    ) -> None:
        """Refuse a distributed IRK that is a bonded phone's; else take it."""
        if self._taken(None, command.identity_resolving_key):
            self._refuse_takeover("IRK", "(a bonded phone's)", _UNSPECIFIED)
            return
        super().on_smp_identity_information_command(command)

    def on_smp_identity_address_information_command(
        self, command: smp.SMP_Identity_Address_Information_Command
    ) -> None:
        """Refuse a distributed identity address that is a bonded phone's; else take it."""
        if self._taken(command.bd_addr, None):
            self._refuse_takeover("identity address", command.bd_addr, _UNSPECIFIED)
            return
        super().on_smp_identity_address_information_command(command)

    async def on_pairing(self) -> None:
        """Check the distributed identity once more against the bonds as they are now (a
        concurrent pairing may have made a bond since the Pairing Request), then store."""
        if self.completed:
            return
        address = self.peer_bd_addr or self.connection.peer_address
        irk: bytes | None = self.peer_identity_resolving_key
        if not await self._load_bonds():
            return
        if self._taken(address, irk):
            self._refuse_takeover("identity", address, _UNSPECIFIED)
            return
        await super().on_pairing()

    async def _load_bonds(self) -> bool:
        """Keep the stored bonds' identities on the session; refuse the pairing if unreadable."""
        keystore = self.manager.device.keystore
        try:
            bonds = await keystore.get_all() if keystore is not None else []
        except Exception as exc:  # a damaged bonds.json: make no bond that could clash
            log.warning("BLE pairing refused: cannot read the bonds (%s)", type(exc).__name__)
            self._refuse("the car cannot read its bonds", _UNSPECIFIED)
            return False
        # A phone bonded over Classic first (an iPhone with its contacts) has the same
        # identity address and a link key alone, and may bond over LE too (Bumble merges
        # the LE keys into its entry), but only while that phone is on an authenticated
        # BR/EDR link to the car: else any LE pairer could hand out its address as its
        # identity and take the Classic phone's place on the dashboard.
        le = [
            (name, keys)
            for name, keys in bonds
            if _has_le_keys(keys) or not self._classic_live(apple_phone_id(name))
        ]
        self._bonded_ids = frozenset(apple_phone_id(name) for name, _keys in le)
        self._bonded_irks = frozenset(k.irk.value for _n, k in le if k.irk is not None)
        return True

    def _taken(self, address: object | None, irk: bytes | None) -> bool:
        """Whether ``address`` (either address type) or ``irk`` is a stored bond's."""
        if address is not None and apple_phone_id(str(address)) in self._bonded_ids:
            return True
        return irk is not None and bytes(irk) in self._bonded_irks

    def _refuse_takeover(self, what: str, value: object, error: smp.ErrorCode) -> None:
        """Refuse a pairing whose ``what`` (peer-controlled ``value``) is a bond's already."""
        if self.completed:
            return  # refused already (the IRK, then the address of the same pairing)
        log.warning(
            "BLE %r: refused pairing: identity already bonded to another phone; "
            "unpair it first (%s %r)",
            str(self.connection.peer_address),
            what,
            str(value),
        )
        self._refuse(_TAKEOVER, error)

    def _refuse(self, reason: str, error: smp.ErrorCode) -> None:
        """Give the delegate the reason (the engine's ``apple_pairing_failed``), fail."""
        delegate = self.pairing_config.delegate
        if isinstance(delegate, CarPairingDelegate):
            delegate.refuse(reason)
        self.send_pairing_failed(error)

    def _refusal(self, command: smp.SMP_Pairing_Request_Command) -> str:
        """Why this Pairing Request cannot be numeric comparison ("" if it is)."""
        if not (self.sc and command.auth_req & smp.AuthReq.SC):
            return "the phone asked for legacy pairing; LE Secure Connections only"
        if command.oob_data_flag:
            return "the phone asked for out-of-band pairing; numeric comparison only"
        if not (self.mitm or command.auth_req & smp.AuthReq.MITM):
            return "the phone asked for pairing without MITM protection"
        try:
            method: Any = self.PAIRING_METHODS[command.io_capability][self.io_capability]  # type: ignore[index]
        except (KeyError, IndexError):
            return f"unknown IO capability {command.io_capability}"
        if isinstance(method, tuple) and len(method) == 2:
            method = method[1]
        if method != smp.PairingMethod.NUMERIC_COMPARISON:
            name = getattr(method, "name", method)
            return f"the phone's IO capabilities give {name}, not numeric comparison"
        return ""


def _has_le_keys(keys: PairingKeys) -> bool:
    """Whether a key store entry holds LE keys (not only a BR/EDR link key)."""
    return any(k is not None for k in (keys.ltk, keys.ltk_central, keys.ltk_peripheral, keys.irk))
