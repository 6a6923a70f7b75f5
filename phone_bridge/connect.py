"""Finding the car a user named and opening a transport to it.

``CAR`` on the command line is a car id (or its prefix), a car name, or ``host:port``.
``--transport auto`` prefers the LAN (mDNS, or the endpoint remembered from pairing) and
falls back to BLE when the LAN endpoint is unknown or unreachable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from phone_bridge.discovery import (
    SHORT_ID_RE,
    SHORTENED_MARK,
    CarSighting,
    discover,
    is_hostport,
)
from phone_bridge.errors import CarNotFound
from phone_bridge.state import PairedCar, PhoneState
from shell.transport import BaseTransport, TransportError
from shell.websocket import WebSocketTransport

__all__ = ["CarNotFound", "ConnectOptions", "Target", "last_known", "open_transport", "resolve"]

log = logging.getLogger("phone_bridge")


@dataclass
class ConnectOptions:
    transport: str = "auto"  # auto | lan | ble
    radio: str | None = None  # Bumble transport for the emulated BLE backend
    mdns_interface: str | None = None
    discover_timeout: float = 3.0
    btsnoop: str | None = None  # capture BLE HCI traffic here (emulated radio)


@dataclass
class Target:
    """Where to reach a car, and what we know of it."""

    query: str
    endpoint: str = ""
    ble_address: str = ""
    ble_id: str = ""
    paired: PairedCar | None = None
    sighting: CarSighting | None = None

    @property
    def label(self) -> str:
        if self.paired:
            return f"{self.paired.name} ({self.paired.id})"
        if self.sighting:
            return f"{self.sighting.name} ({self.sighting.id})"
        return self.query


def _match(query: str, car_id: str, name: str) -> bool:
    """Match by exact name (or its shortened BLE form), or by the query prefixing the car's id.

    The reverse (the car's id a prefix of the query) is allowed only for an 8-hex BLE short
    id, which is all a BLE advert carries; any shorter id would capture every query.
    """
    q, cid = query.casefold(), car_id.casefold()
    if not q:
        return False
    if cid and cid.startswith(q):
        return True
    if SHORT_ID_RE.fullmatch(cid) and q.startswith(cid):
        return True
    shown = name.casefold()
    if shown.endswith(SHORTENED_MARK) and len(shown) > 1:
        # A BLE advert's shortened name (PROTOCOL.md §1.2): the query may complete it.
        return q.startswith(shown[: -len(SHORTENED_MARK)])
    return shown == q


async def resolve(query: str | None, state: PhoneState, opts: ConnectOptions) -> Target:
    """Turn the user's ``CAR`` into a ``Target`` (``None``: the first car discovered).

    Raises:
        CarNotFound: nothing matches.
    """
    cars = state.cars()
    if query and is_hostport(query):
        paired = next((c for c in cars.values() if c.endpoint == query), None)
        return Target(query, endpoint=query, paired=paired)
    matches = [c for c in cars.values() if query and _match(query, c.id, c.name)]
    _refuse_ambiguous(query, [(c.id, c.name) for c in matches])
    paired = matches[0] if matches else None
    seen = await discover(
        opts.discover_timeout,
        interface=opts.mdns_interface,
        radio=opts.radio,
        use_mdns=opts.transport != "ble",
        use_ble=opts.transport == "ble" or (opts.transport == "auto" and opts.radio is not None),
        want=paired.id if paired else query,
    )
    if query is None:
        # Prefer a car we already paired with, then one whose pairing window is open.
        seen.sort(key=lambda s: (not any(c.id == s.id for c in cars.values()), not s.pairing_open))
        sighting = seen[0] if seen else None
    else:
        want = paired.id if paired else query
        found = [s for s in seen if _match(want, s.id, s.name)]
        if paired is None:
            _refuse_ambiguous(query, [(s.id, s.name) for s in found])
        sighting = found[0] if found else None
    if sighting is not None and paired is None:
        paired = next((c for c in cars.values() if c.id.startswith(sighting.id)), None)
    if sighting is None and paired is None:
        where = "over mDNS" + (" or BLE" if opts.radio or opts.transport == "ble" else "")
        what = f"car {query!r}" if query else "any car"
        raise CarNotFound(f"{what} not found {where} within {opts.discover_timeout:g} s")
    return Target(
        query or (sighting.name if sighting else ""),
        endpoint=(sighting.endpoint if sighting and sighting.endpoint else "")
        or (paired.endpoint if paired else ""),
        ble_address=(sighting.ble_address if sighting else "")
        or (paired.ble_address if paired else ""),
        ble_id=sighting.id if sighting else (paired.id if paired else ""),
        paired=paired,
        sighting=sighting,
    )


def last_known(query: str | None, state: PhoneState, opts: ConnectOptions) -> Target | None:
    """The one paired car ``query`` names, at the LAN address it was last met at, or None.

    A caller may dial that address before discovering (an mDNS browse costs ~0.1-3 s): the
    session is with the car's pinned key, so another car there is refused, and the caller
    then falls back to ``resolve``.

    Returns:
        None when ``query`` is empty or an address, names no paired car or several, the
        car has no LAN address, or the transport is BLE: ``resolve`` decides then.
    """
    if not query or is_hostport(query) or opts.transport == "ble":
        return None
    matches = [c for c in state.cars().values() if _match(query, c.id, c.name)]
    if len(matches) != 1 or not matches[0].endpoint:
        return None
    car = matches[0]
    return Target(query, endpoint=car.endpoint, ble_address=car.ble_address, ble_id=car.id,
                  paired=car)


def _refuse_ambiguous(query: str | None, matches: list[tuple[str, str]]) -> None:
    """Refuse a ``CAR`` that names more than one car: picking one would be a guess.

    One car seen by its full id and by its 8-hex BLE short id (a prefix of it) is one car.
    """
    ids = sorted({car_id for car_id, _ in matches}, key=len, reverse=True)
    distinct = [i for n, i in enumerate(ids) if not any(o.startswith(i) for o in ids[:n])]
    if len(distinct) > 1:
        names = {car_id: name for car_id, name in matches}
        listed = ", ".join(f"{names[i]!r} ({i})" for i in sorted(distinct))
        raise CarNotFound(
            f"car {query!r} is ambiguous: it matches {listed}; give more of the car's id"
        )


async def open_transport(target: Target, opts: ConnectOptions) -> BaseTransport:
    """Open the preferred transport to ``target``.

    Raises:
        TransportError: no transport could reach the car.
    """
    errors: list[str] = []
    if opts.transport in ("auto", "lan") and target.endpoint:
        try:
            return await WebSocketTransport.connect(target.endpoint)
        except TransportError as exc:
            if opts.transport == "lan":
                raise
            errors.append(str(exc))
            if target.ble_address or target.ble_id:
                log.info("LAN failed (%s); trying BLE", exc)
    if opts.transport in ("auto", "ble") and (target.ble_address or target.ble_id):
        from phone_bridge.ble.transport import BleTransport

        try:
            return await BleTransport.connect(
                target.ble_address or target.ble_id,
                radio=opts.radio,
                btsnoop=Path(opts.btsnoop) if opts.btsnoop else None,
            )
        except Exception as exc:  # bleak raises many types; the message is what matters
            errors.append(f"BLE: {exc}")
    if not errors:
        errors.append(f"no {opts.transport} route to {target.label} is known")
    raise TransportError("; ".join(errors))
