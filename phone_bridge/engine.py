"""The phone's flows: open a session, pair, sync once, or stay connected (``run``).

Every decision about bytes lives in ``protocol/``; this module sequences flows and keeps the
state directory up to date. Its own refusals are ``phone_bridge.errors.BridgeError``; what
the protocol or a transport raises (``ProtocolError``, ``TransportError``, ``TimeoutError``)
passes through unchanged, and ``explain`` maps it onto the phone's tree and exit codes
(``BridgeError``, ``explain`` and the ``EXIT_*`` codes are re-exported from there).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from phone_bridge.client import CarLink, pair, sync_contacts
from phone_bridge.connect import ConnectOptions, Target, open_transport
from phone_bridge.discovery import is_hostport
from phone_bridge.errors import (
    EXIT_BAD_INPUT,
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_NOT_PAIRED,
    EXIT_PAIRING,
    BadInput,
    BridgeError,
    TooManyDeletes,
    explain,
)
from phone_bridge.state import PairedCar, PhoneState
from protocol.connection import PairingComplete, PhoneConnection, SessionEstablished
from protocol.contacts import Contact, Photo
from protocol.errors import PairingError, Reason, VCardError
from protocol.identity import PairingUri
from protocol.messages import VERSIONS_ENV, Message, parse_versions
from protocol.sync import ContactsState, DeletesRefused, DigestCache, SyncSnapshot, SyncSummary
from protocol.vcard import ImportResult, import_vcards

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_NOT_PAIRED",
    "EXIT_PAIRING",
    "BridgeError",
    "Contacts",
    "backoff_delays",
    "do_pair",
    "do_pair_oob",
    "explain",
    "load_contacts",
    "open_session",
    "sync_once",
]

log = logging.getLogger("phone_bridge")


@dataclass
class Contacts:
    contacts: list[Contact]
    photos: dict[bytes, Photo]
    errors: list[VCardError] = field(default_factory=list)  # cards skipped
    warnings: list[VCardError] = field(default_factory=list)  # lines skipped in kept cards
    # Kept with the contacts so a re-sync of the same objects encodes only what changed.
    cache: DigestCache = field(default_factory=DigestCache)


def load_contacts(
    path: Path,
    *,
    allow_empty: bool = False,
    importer: Callable[[bytes], ImportResult] = import_vcards,
) -> Contacts:
    """Import a vCard file; malformed cards and lines are reported, not fatal, unless all are.

    A bad file must never empty the car: a file cut short (it ends inside a card) or one
    in which no card could be read is refused. An empty file is how a user empties the
    car's copy on purpose, so it is accepted only with ``allow_empty`` (``--allow-deletes``).
    ``importer`` parses the bytes (``phone_bridge.book_cache`` passes one that remembers).

    Raises:
        BadInput: unreadable, empty (without ``allow_empty``), not a vCard file, cut short,
            or no card could be read (nothing is sent then).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from exc
    if not data.strip():
        if allow_empty:
            return Contacts([], {})
        raise BadInput(
            f"{path} is empty; nothing was synced "
            "(to empty the car's copy on purpose, pass --allow-deletes)"
        )
    result = importer(data)  # sniffs the file once: is_vcard says what it found
    if not result.is_vcard:
        raise BadInput(f"{path} is not a vCard file; nothing was synced")
    if result.truncated:
        raise BadInput(f"{path} ends inside a card (cut short?); nothing was synced")
    if not result.contacts:
        first = result.errors[0] if result.errors else VCardError(1, "no card")
        raise BadInput(
            f"no card in {path} could be read ({len(result.errors)} skipped; first at line "
            f"{first.line}: {first.reason}); nothing was synced"
        )
    return Contacts(
        list(result.contacts), dict(result.photos), list(result.errors), list(result.warnings)
    )


async def open_session(
    state: PhoneState, target: Target, opts: ConnectOptions, name: str
) -> CarLink:
    """Open an authenticated session with a paired car.

    A paired car is its key, not its address: the car's ``Hello`` says which car answered,
    and the key pinned for that id must complete the handshake. A target named by its
    address (``host:port``) is whichever paired car answers there; one named by id or name
    is that car only. Once the session is up, ``target.paired`` is the car that answered,
    and its stored address is where it was met (a car restarted on a new port is found
    again by ``host:port``).

    Raises:
        BridgeError: not paired here (``EXIT_NOT_PAIRED``).
        TransportError: the car is unreachable.
        ProtocolError: the handshake failed; ``SessionError(unknown-peer)`` when the car
            no longer knows this phone, or (not from the car) when the car that answered
            is not paired here.
    """
    cars = _candidates(target, state)
    if not cars:
        raise BridgeError(f"not paired with {target.label}; run 'pair' first", EXIT_NOT_PAIRED)
    transport = await open_transport(target, opts)
    keys = {c.id: bytes.fromhex(c.public_key) for c in cars.values()}
    conn = PhoneConnection(
        state.identity, name, lookup_car=keys.get, versions=_versions(), now=time.time()
    )
    link = CarLink(transport, conn)
    await link.__aenter__()
    try:
        await link.wait_for(SessionEstablished, 10.0)
    except BaseException:
        await link.aclose()
        raise
    target.paired = _met_at(state, cars[conn.peer_device_id], target, link)
    return link


def _versions() -> tuple[int, ...]:
    """The protocol versions to offer: all, unless ``CARHUB_PROTOCOL_VERSIONS`` narrows them."""
    return parse_versions(os.environ.get(VERSIONS_ENV, ""))


def _candidates(target: Target, state: PhoneState) -> dict[str, PairedCar]:
    """The paired cars a session with ``target`` may reach, by id."""
    # Named by address: any paired car met there. Named by id or name: that car only.
    by_address = is_hostport(target.query) and target.sighting is None
    cars = state.cars() if by_address else {}
    if target.paired is not None:
        cars[target.paired.id] = target.paired
    return cars


def _met_at(state: PhoneState, car: PairedCar, target: Target, link: CarLink) -> PairedCar:
    """Remember where a paired car was just met over the LAN, if that is new."""
    if link.transport.name == "lan" and target.endpoint and car.endpoint != target.endpoint:
        car.endpoint = target.endpoint
        state.save_car(car)
    return car


async def do_pair(
    state: PhoneState,
    target: Target,
    opts: ConnectOptions,
    name: str,
    decide: Callable[[str], Awaitable[bool]],
) -> tuple[PairedCar, CarLink]:
    """Pair with a car and return it with the (already secure) link.

    Raises:
        TransportError: the car is unreachable.
        PairingError: rejected, code mismatch, window closed, rate limited or timed out.
    """
    transport = await open_transport(target, opts)
    link = CarLink(
        transport, PhoneConnection(state.identity, name, versions=_versions(), now=time.time())
    )
    await link.__aenter__()
    try:
        done = await pair(link, decide)
    except BaseException:
        await link.aclose()
        raise
    return _save_paired(state, target, link, done), link


async def do_pair_oob(
    state: PhoneState,
    target: Target,
    opts: ConnectOptions,
    name: str,
    uri: PairingUri,
    timeout: float = 90.0,
) -> tuple[PairedCar, CarLink]:
    """Pair with the car whose pairing URI (QR code) was scanned: no code to compare.

    The scanned secret is the proof on both sides; the car's key must hash to the URI's
    fingerprint (``protocol.pairing`` checks it before sending anything of ours).

    Raises:
        TransportError: the car is unreachable.
        PairingError: the key does not match the URI, the car refused the secret (used,
            replaced, expired), or the window closed, rate limited, timed out.
    """
    transport = await open_transport(target, opts)
    conn = PhoneConnection(state.identity, name, oob=uri, versions=_versions(), now=time.time())
    link = CarLink(transport, conn)
    await link.__aenter__()
    try:
        done = await link.wait_for(PairingComplete, timeout)
        # The key matched the URI; the id the car gave in its Hello must be that key's id
        # too, or we would file a genuine key under a wrong id.
        if done.peer_device_id != uri.device_id:
            raise PairingError(Reason.OOB_MISMATCH, "the car's Hello id is not the URI's id")
        await link.wait_for(SessionEstablished, 10.0)
    except BaseException:
        await link.aclose()
        raise
    return _save_paired(state, target, link, done), link


def _save_paired(
    state: PhoneState, target: Target, link: CarLink, done: PairingComplete
) -> PairedCar:
    """Remember a freshly paired car (and where to reach it) in the state directory."""
    transport = link.transport
    car = PairedCar(
        id=done.peer_device_id,
        name=done.peer_name,
        public_key=done.peer_public_key.hex(),
        endpoint=target.endpoint if transport.name == "lan" else _lan_from_info(transport),
        ble_address=target.ble_address,
    )
    state.save_car(car)
    # A fresh pairing starts from an empty mirror on the car.
    state.forget_snapshot(car.id)
    return car


async def sync_once(
    state: PhoneState,
    link: CarLink,
    car: PairedCar,
    contacts: Contacts,
    on_progress: Callable[[int, int], None] = lambda d, t: None,
    *,
    first: bool = True,
    other: Callable[[Message], Awaitable[None]] | None = None,
    allow_deletes: bool = False,
) -> SyncSummary:
    """Sync the contacts once over an open session.

    ``first``: the car's opening ``ContactsState`` is still to come. Later syncs in the
    same session start from the anchor of the last acknowledgement, which no one else
    can have moved.

    Raises:
        TooManyDeletes: without ``allow_deletes``, the sync would delete more than half
            of the car's copy and more than 20 contacts; nothing was sent, and the
            session can sync again.
    """
    snapshot = state.snapshot(car.id)
    try:
        summary = await sync_contacts(
            link,
            contacts.contacts,
            contacts.photos,
            snapshot,
            lambda edits: state.record_sync(car.id, edits),
            on_progress,
            opening=None if first else _opening(snapshot, link),
            other=other,
            cache=contacts.cache,
            allow_deletes=allow_deletes,
        )
    except DeletesRefused as exc:
        link.mirror = (exc.anchor, exc.mirror)  # what the car still holds
        raise TooManyDeletes(
            f"the sync would delete {exc.deletes} of the {exc.mirror} contacts on the car; "
            "nothing was sent (pass --allow-deletes if that is what you want)"
        ) from exc
    car.last_sync = time.time()
    # Not through cars.json: that file holds the pinned keys and is rewritten with an fsync.
    state.snapshots.record_synced(car.id, car.last_sync)
    return summary


def _opening(snapshot: SyncSnapshot | None, link: CarLink) -> ContactsState:
    """The car's state for a later sync in this session: our snapshot, else the last ack."""
    if snapshot is not None:
        return ContactsState(anchor=snapshot.anchor, count=len(snapshot.digests))
    # A lost snapshot: an anchor we cannot match makes the sender ask for the manifest.
    anchor, count = link.mirror
    return ContactsState(anchor=anchor, count=count)


def backoff_delays(base: float = 0.5, cap: float = 15.0) -> list[float]:
    """Reconnect delays: exponential with jitter, capped; a caller stays on the last one."""
    delays, d = [], base
    while d < cap:
        delays.append(d * random.uniform(0.8, 1.2))
        d *= 2
    return delays


def _lan_from_info(transport: object) -> str:
    """The LAN endpoint a car lists in its BLE info characteristic, for a later hand-over.

    ``--transport auto`` tries it first next time and falls back to BLE if unreachable.
    """
    info = getattr(transport, "info", None)
    lan = getattr(info, "lan", None) or []
    return str(lan[0]) if lan else ""
