"""Finding cars: mDNS (``_carhub._tcp.local.``) and BLE adverts, merged into one list.

The TXT record's schema, and what makes one malformed, is ``protocol.dnssd``. A car seen
both ways is listed once: mDNS gives the full 16-hex id, BLE service data the first 4 bytes
of it, and the TXT key ``ble`` the car's BLE address, so either match merges.

zeroconf is imported when mDNS is browsed, not with this module: ``sync`` and ``run`` with
a car's address (or its last known one) never browse, and zeroconf costs ~20 ms and ~3 MB.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol.dnssd import SERVICE_TYPE, decode_txt
from protocol.errors import MessageError

if TYPE_CHECKING:
    from zeroconf import Zeroconf
    from zeroconf.asyncio import AsyncServiceInfo

__all__ = ["SERVICE_TYPE", "SHORTENED_MARK", "CarSighting", "discover", "discover_mdns", "merge"]

# Appended to a name the car advertised shortened over BLE (it is a prefix of the name).
SHORTENED_MARK = "…"

log = logging.getLogger("phone_bridge.discovery")

SHORT_ID_RE = re.compile(r"[0-9a-f]{8}")  # the BLE advert's id prefix


@dataclass
class CarSighting:
    """One car as discovery saw it."""

    id: str  # 16 hex chars from mDNS; the 8-hex prefix when only BLE saw it
    name: str
    model: str = ""
    version: int = 0
    pairing_open: bool = False
    endpoint: str = ""  # host:port of the WebSocket session endpoint (mDNS)
    ble_address: str = ""
    via: list[str] = field(default_factory=list)  # "mdns", "ble"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "pairing_open": self.pairing_open,
            "address": self.endpoint,
            "ble_address": self.ble_address,
            "via": self.via,
        }


async def discover_mdns(
    timeout: float, interface: str | None = None, want: str | None = None
) -> list[CarSighting]:
    """Browse mDNS for ``timeout`` seconds (or until a car matching ``want`` appears).

    Args:
        timeout: how long to listen.
        interface: an IP address to bind (e.g. 127.0.0.1), or None for all.
        want: stop early once a car with this id or name is resolved.
    """
    from zeroconf import IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    kwargs: dict[str, object] = {"ip_version": IPVersion.V4Only}
    if interface:
        kwargs["interfaces"] = [interface]
    azc = AsyncZeroconf(**kwargs)  # type: ignore[arg-type]
    found: dict[str, CarSighting] = {}
    pending: set[asyncio.Task[None]] = set()
    done = asyncio.Event()

    async def resolve(zc: Zeroconf, name: str) -> None:
        # Nobody awaits this task, so an exception here would only be logged by asyncio
        # as "never retrieved": skip the service instead.
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(zc, 1500):
                return
            car = _from_info(info)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("mDNS: skipping %r: %s: %s", name, type(exc).__name__, exc)
            return
        if car is not None:
            found[car.id] = car
            if want and want in (car.id, car.name):
                done.set()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            task = asyncio.get_running_loop().create_task(resolve(zeroconf, name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(azc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        pass
    finally:
        await browser.async_cancel()
        for task in pending:
            task.cancel()
        await azc.async_close()
    return sorted(found.values(), key=lambda c: c.name)


def _from_info(info: AsyncServiceInfo) -> CarSighting | None:
    """Turn a resolved service into a sighting, or None (logged at debug) if malformed."""
    from zeroconf import IPVersion

    try:
        record = decode_txt(info.properties, default_name=info.name.split(".")[0])
    except MessageError as exc:
        log.debug("mDNS: skipping %r: %s", info.name, exc.detail)
        return None
    addrs = info.parsed_addresses(IPVersion.V4Only)
    if not addrs:
        log.debug("mDNS: skipping %r: no IPv4 address", info.name)
        return None
    return CarSighting(
        id=record.id,
        name=record.name,
        model=record.model,
        version=record.version,
        pairing_open=record.pairing_open,
        endpoint=f"{addrs[0]}:{info.port}",
        ble_address=record.ble_address,
        via=["mdns"],
    )


def merge(mdns: list[CarSighting], ble: list[CarSighting]) -> list[CarSighting]:
    """Merge BLE sightings into mDNS ones by id prefix or BLE address."""
    out = list(mdns)
    for b in ble:
        short = bool(SHORT_ID_RE.fullmatch(b.id))  # never merge on an empty or odd prefix
        match = next(
            (
                m
                for m in out
                if (short and m.id.startswith(b.id))
                or (b.ble_address and m.ble_address == b.ble_address)
            ),
            None,
        )
        if match is None:
            out.append(b)
            continue
        match.via = sorted({*match.via, "ble"})
        match.ble_address = match.ble_address or b.ble_address
        match.pairing_open = match.pairing_open or b.pairing_open
    return sorted(out, key=lambda c: c.name)


async def discover(
    timeout: float,
    *,
    interface: str | None = None,
    radio: str | None = None,
    use_mdns: bool = True,
    use_ble: bool = False,
    want: str | None = None,
) -> list[CarSighting]:
    """Run mDNS and (optionally) BLE discovery concurrently and merge the results."""
    tasks = []
    if use_mdns:
        tasks.append(discover_mdns(timeout, interface, want))
    if use_ble:
        tasks.append(_discover_ble(timeout, radio, want))
    results = await asyncio.gather(*tasks)
    mdns = results[0] if use_mdns else []
    ble = results[-1] if use_ble else []
    return merge(mdns, ble)


async def _discover_ble(
    timeout: float, radio: str | None, want: str | None = None
) -> list[CarSighting]:
    from phone_bridge.ble.scanner import BleCar, scan_cars

    def wanted(car: BleCar) -> bool:
        # The advert carries an 8-hex id prefix; a full id matches by its prefix.
        # A name past 8 bytes is advertised shortened (PROTOCOL.md §1.2): match its prefix.
        target = want or ""
        return (
            bool(want)
            and bool(car.name)
            and (
                car.name == want
                or target.startswith(car.id_prefix)
                or (not car.name_complete and target.startswith(car.name) and bool(car.name))
            )
        )

    cars = await scan_cars(timeout, radio, stop_when=wanted if want else None)
    return [
        CarSighting(
            id=c.id_prefix,
            # A shortened advertised name (PROTOCOL.md §1.2) is shown, and matched, as a prefix.
            name=c.name if c.name_complete else c.name + SHORTENED_MARK,
            version=c.version,
            pairing_open=c.pairing_open,
            ble_address=c.address,
            via=["ble"],
        )
        for c in cars
    ]


def is_hostport(value: str) -> bool:
    """Tell whether ``value`` looks like HOST:PORT rather than a car id or name."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return False
    try:
        socket.inet_aton(host)
        return True
    except OSError:
        return "." in host or host == "localhost"
