"""The phone's byte pipe to a car over GATT, built on ``BleakClient``.

Theory of operation: connect, read the ``info`` characteristic (who the car is and its
LAN endpoints), subscribe to ``channel_out`` and then move bytes: ``send`` cuts the stream
to the MTU and writes each chunk *without response* to ``channel_in`` (ordered on one
connection, and several per connection event on real radios); notifications land in a
``shell.chunks.ChunkQueue`` that ``recv`` drains. A disconnect puts an end marker in the
queue, so ``recv`` raises ``TransportError`` once every chunk received before it has been
read. A car that notifies more than the queue's bound while nothing reads is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from phone_bridge.ble.backend import BumbleRadio, bleak_backends
from protocol.framing import MIN_ATT_MTU, segment
from protocol.gatt import CHANNEL_IN_UUID, CHANNEL_OUT_UUID, INFO_UUID, CarInfo, decode_info
from radio.hci import HciSpec
from shell.chunks import ChunkQueue
from shell.transport import BaseTransport, TransportError

__all__ = ["BleTransport"]

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
_CLOSED = "BLE link closed"


class BleTransport(BaseTransport):
    """A connected byte pipe to one car.

    Use ``await BleTransport.connect(...)``; the constructor is internal.

    Attributes:
        name: always ``"ble"``.
        peer: the car's BD address.
        info: the car's decoded info characteristic.
    """

    name = "ble"

    def __init__(self, client: BleakClient, owned_radio: BumbleRadio | None) -> None:
        self._client = client
        self._owned_radio = owned_radio
        self._chunks = ChunkQueue(on_overflow=self._on_overflow, closed_message=_CLOSED)
        self._closed = False
        self.peer = str(client.address)
        self.info: CarInfo | None = None

    @classmethod
    async def connect(
        cls,
        address: str | BLEDevice,
        *,
        radio: HciSpec | BumbleRadio | None = None,
        timeout: float = DEFAULT_CONNECT_TIMEOUT,
        btsnoop: Path | None = None,
    ) -> BleTransport:
        """Connect to a car, read its info and subscribe to its notifications.

        Args:
            address: the car's BD address (``BleCar.address``) or a bleak ``BLEDevice``.
            radio: ``None`` for the platform's Bluetooth, or an emulated radio (a Bumble
                transport string gives this transport its own controller).
            timeout: connection timeout in seconds.
            btsnoop: capture this connection's HCI traffic (emulated radio only; on real
                hardware use the OS's tools, e.g. btmon).

        Returns:
            The connected transport.

        Raises:
            TransportError: the car could not be reached or is not a CarHub car.
            protocol.errors.MessageError: the car's info value is malformed.
        """
        owned = (
            None
            if radio is None or isinstance(radio, BumbleRadio)
            else BumbleRadio(radio, btsnoop=btsnoop)
        )
        _, client_cls = bleak_backends(owned or radio)
        self_ref: list[BleTransport] = []
        client = BleakClient(
            address,
            disconnected_callback=lambda _c: self_ref[0]._on_disconnected() if self_ref else None,
            timeout=timeout,
            backend=client_cls,
        )
        transport = cls(client, owned)
        self_ref.append(transport)
        try:
            await transport._open()
        except BaseException:
            await transport.close()
            raise
        return transport

    @property
    def mtu(self) -> int:
        """The negotiated ATT MTU."""
        return max(MIN_ATT_MTU, int(self._client.mtu_size))

    async def send(self, data: bytes) -> None:
        """Write ``data`` to the car, cut to the MTU.

        Raises:
            TransportError: the link is gone.
        """
        for chunk in segment(data, self.mtu):
            if self._closed or not self._client.is_connected:
                raise TransportError(_CLOSED)
            try:
                await self._client.write_gatt_char(CHANNEL_IN_UUID, chunk, response=False)
            except (BleakError, OSError) as exc:
                raise TransportError(f"BLE write failed: {exc}") from exc

    async def recv(self) -> bytes:
        """Return the next chunk the car notified.

        Raises:
            TransportError: the link is gone and every chunk was read.
        """
        return await self._chunks.get()

    async def close(self) -> None:
        """Disconnect and release an emulated radio this transport opened (idempotent)."""
        self._mark_closed()
        with contextlib.suppress(Exception):  # already disconnected is fine
            await self._client.disconnect()
        if self._owned_radio is not None:
            await self._owned_radio.close()

    async def _open(self) -> None:
        """Connect, read info and subscribe to channel_out."""
        try:
            await self._client.connect()
            services = self._client.services
            if services.get_characteristic(CHANNEL_OUT_UUID) is None:
                raise TransportError("not a CarHub car: no CarHub GATT service")
            self.info = decode_info(bytes(await self._client.read_gatt_char(INFO_UUID)))
            await self._client.start_notify(CHANNEL_OUT_UUID, self._on_notification)
        except TransportError:
            raise
        except (BleakError, TimeoutError, OSError) as exc:
            raise TransportError(f"BLE connect failed: {exc}") from exc
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled: not ours to translate
            # Bumble cancels a pending GATT request when the radio goes away mid-discovery;
            # that is a lost link, not a cancellation of this flow (it escaped as a traceback).
            raise TransportError("BLE connect failed: the link was lost") from exc

    def _on_notification(self, _sender: Any, data: bytearray) -> None:
        """Queue a notified chunk."""
        self._chunks.put_nowait(bytes(data))

    def _on_disconnected(self) -> None:
        """End recv() when the car or the radio drops the link."""
        self._mark_closed()

    def _on_overflow(self, queued: int) -> None:
        """Drop a car that overflowed the receive queue: recv() ends, send() fails."""
        log.warning(
            "BLE car %s overflowed the receive queue (%d bytes); dropping", self.peer, queued
        )
        self._mark_closed()

    def _mark_closed(self) -> None:
        """End recv() (after the chunks already queued) and fail later sends."""
        if not self._closed:
            self._closed = True
            self._chunks.close()
