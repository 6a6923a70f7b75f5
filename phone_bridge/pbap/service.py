"""``PbapService``: the PBAP PSE on a Bumble device: SDP record, RFCOMM server, one
``protocol.pbap.server.PhoneBookServer`` per RFCOMM channel opened by a car.

The shell only moves bytes: what the DLC receives goes to the PSE, what the PSE queues
goes back on the DLC. Malformed OBEX from the car is one log line and the DLC is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bumble import rfcomm, sdp
from bumble.core import (
    BT_L2CAP_PROTOCOL_ID,
    BT_OBEX_PROTOCOL_ID,
    BT_PHONEBOOK_ACCESS_PSE_SERVICE,
    BT_PHONEBOOK_ACCESS_SERVICE,
    BT_RFCOMM_PROTOCOL_ID,
)
from bumble.device import Device

from phone_bridge.pbap.book import BookFile
from protocol.obex import ObexError
from protocol.pbap.server import (
    PSE_FEATURES,
    V11_FEATURES,
    PceConnected,
    PceDisconnected,
    PhoneBookServer,
    PseEvent,
    Served,
)

__all__ = ["PBAP_RECORD_HANDLE", "PBAP_VERSIONS", "PbapService", "pse_sdp_record"]

log = logging.getLogger("phone_bridge.pbap")

Emit = Callable[[dict[str, Any]], None]
PBAP_RECORD_HANDLE = 0x00010002
# What ``--pbap-version`` picks: the SDP profile version and what the PSE implements. A
# 1.1 PSE has no PbapSupportedFeatures attribute and never sends the counters.
PBAP_VERSIONS: dict[str, tuple[int, int]] = {
    "1.1": (0x0101, V11_FEATURES),
    "1.2": (0x0102, int(PSE_FEATURES)),
}
SUPPORTED_REPOSITORIES = 0x01  # local phone book only (no SIM, no speed dial, no favourites)
_ATTR_SUPPORTED_REPOSITORIES = 0x0314
_ATTR_SUPPORTED_FEATURES = 0x0317
_ATTR_SERVICE_NAME = 0x0100


def pse_sdp_record(handle: int, channel: int, version: str = "1.2"
                   ) -> list[sdp.ServiceAttribute]:
    """The SDP record of a PBAP PSE on RFCOMM ``channel`` (no GoepL2capPsm).

    Args:
        handle: the service record handle.
        channel: the RFCOMM server channel.
        version: "1.2" or "1.1" (a key of ``PBAP_VERSIONS``).

    Returns:
        Its attributes: service class 0x112F, L2CAP/RFCOMM/OBEX, profile 0x1130 v1.2 or
        v1.1, SupportedRepositories, and for 1.2 PbapSupportedFeatures (``PSE_FEATURES``).
    """
    de = sdp.DataElement
    profile, features = PBAP_VERSIONS[version]
    record = [
        sdp.ServiceAttribute(sdp.SDP_SERVICE_RECORD_HANDLE_ATTRIBUTE_ID,
                             de.unsigned_integer_32(handle)),
        sdp.ServiceAttribute(sdp.SDP_SERVICE_CLASS_ID_LIST_ATTRIBUTE_ID,
                             de.sequence([de.uuid(BT_PHONEBOOK_ACCESS_PSE_SERVICE)])),
        sdp.ServiceAttribute(sdp.SDP_PROTOCOL_DESCRIPTOR_LIST_ATTRIBUTE_ID, de.sequence([
            de.sequence([de.uuid(BT_L2CAP_PROTOCOL_ID)]),
            de.sequence([de.uuid(BT_RFCOMM_PROTOCOL_ID), de.unsigned_integer_8(channel)]),
            de.sequence([de.uuid(BT_OBEX_PROTOCOL_ID)]),
        ])),
        sdp.ServiceAttribute(sdp.SDP_BROWSE_GROUP_LIST_ATTRIBUTE_ID,
                             de.sequence([de.uuid(sdp.SDP_PUBLIC_BROWSE_ROOT)])),
        sdp.ServiceAttribute(sdp.SDP_BLUETOOTH_PROFILE_DESCRIPTOR_LIST_ATTRIBUTE_ID,
                             de.sequence([de.sequence([
                                 de.uuid(BT_PHONEBOOK_ACCESS_SERVICE),
                                 de.unsigned_integer_16(profile)])])),
        sdp.ServiceAttribute(_ATTR_SERVICE_NAME, de.text_string(b"OBEX Phonebook Access Server")),
        sdp.ServiceAttribute(_ATTR_SUPPORTED_REPOSITORIES,
                             de.unsigned_integer_8(SUPPORTED_REPOSITORIES)),
    ]  # fmt: skip
    if version != "1.1":  # the attribute is new in 1.2
        record.append(sdp.ServiceAttribute(_ATTR_SUPPORTED_FEATURES,
                                           de.unsigned_integer_32(features)))
    return record


class PbapService:
    """Serve ``books`` over PBAP on every Bumble device it is attached to.

    Args:
        books: the phone book (re-read by its owner; each request sees the latest).
        emit: called with each event, for ``--json`` (``pulled``, ``pbap-connected``...).
        version: the PBAP version it is, "1.2" or "1.1" (``PBAP_VERSIONS``).

    Raises:
        ValueError: an unknown version.
    """

    def __init__(self, books: BookFile, emit: Emit, *, version: str = "1.2") -> None:
        if version not in PBAP_VERSIONS:
            raise ValueError(f"PBAP version must be one of {', '.join(PBAP_VERSIONS)}")
        self.books = books
        self.version = version
        self.pse_features = PBAP_VERSIONS[version][1]
        self._emit = emit
        self.channel = 0
        self.sessions = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, device: Device) -> int:
        """Register the RFCOMM server and the SDP record (before or after power on).

        Returns:
            The RFCOMM channel.
        """
        server = rfcomm.Server(device)
        self.channel = server.listen(self._on_dlc)
        records = dict(device.sdp_service_records)
        records[PBAP_RECORD_HANDLE] = pse_sdp_record(PBAP_RECORD_HANDLE, self.channel,
                                                  self.version)
        device.sdp_service_records = records
        log.info("PBAP %s PSE on RFCOMM channel %d (features 0x%08X)",
                 self.version, self.channel, self.pse_features)
        return self.channel

    def _on_dlc(self, dlc: rfcomm.DLC) -> None:
        peer = str(dlc.multiplexer.l2cap_channel.connection.peer_address)
        pse = PhoneBookServer(self.books.book, pse_features=self.pse_features)
        self.sessions += 1
        log.info("PBAP: %s opened RFCOMM channel %d", peer, self.channel)

        def on_data(data: bytes) -> None:
            pse.book = self.books.book  # the latest file, from the next request on
            try:
                events = pse.receive_data(data)
            except ObexError as exc:
                log.warning("PBAP: malformed OBEX from %s (%s): channel closed", peer, exc)
                self._spawn(self._close(dlc))
                return
            out = pse.data_to_send()
            if out:
                dlc.write(out)
            for event in events:
                self._report(peer, event)

        dlc.sink = on_data

    def _report(self, peer: str, event: PseEvent) -> None:
        if isinstance(event, PceConnected):
            log.info("PBAP: %s connected (PCE features 0x%08X)", peer, event.features)
            self._emit({"event": "pbap-connected", "car": peer, "features": event.features})
        elif isinstance(event, Served):
            log.info("PBAP: %s %s %s offset %d: %d cards (0x%02X)", peer, event.operation,
                     event.path, event.offset, event.cards, event.code)
            self._emit({"event": "pulled", "car": peer, "operation": event.operation,
                        "path": event.path, "offset": event.offset, "cards": event.cards,
                        "code": event.code})
        elif isinstance(event, PceDisconnected):
            log.info("PBAP: %s disconnected OBEX", peer)
            self._emit({"event": "pbap-disconnected", "car": peer})

    async def _close(self, dlc: rfcomm.DLC) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(dlc.disconnect(), 2.0)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Cancel what is still running (closing channels)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
