"""Open an HCI transport for a Bumble host: a transport string or an in-process radio.

Both the car (``carhub.ble``) and the phone's bleak backend call ``open_hci`` so the same
spec works everywhere: ``tcp-client:HOST:PORT`` (the ``carhub-radio`` process),
``usb:0`` / ``hci-socket:0`` (real hardware) or a ``LocalRadio`` object (tests).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from bumble.snoop import BtSnooper
from bumble.transport import open_transport
from bumble.transport.common import SnoopingTransport, Transport

from radio.air import AirController, LocalRadio

__all__ = ["HciSpec", "RadioUnavailableError", "open_hci"]

log = logging.getLogger(__name__)

HciSpec = str | LocalRadio
# tcp-client does not retry, and a radio started a moment earlier by the same script
# may not be listening yet: 10 tries 0.3 s apart cover a cold Python start.
_TCP_ATTEMPTS = 10
_TCP_DELAY = 0.3


class RadioUnavailableError(ConnectionError):
    """The HCI transport could not be opened (no radio process, no adapter)."""


class _LocalTransport(Transport):
    """A controller on a ``LocalRadio``, used directly as HCI source and sink."""

    def __init__(self, radio: LocalRadio, controller: AirController) -> None:
        super().__init__(controller, controller)
        self._radio = radio
        self._controller = controller

    async def close(self) -> None:
        """Take the controller off the air; its peers see a disconnection."""
        self._radio.remove(self._controller)


async def open_hci(spec: HciSpec, btsnoop: Path | None = None) -> Any:
    """Open an HCI transport.

    Args:
        spec: a Bumble transport string or a ``LocalRadio``.
        btsnoop: if set, every HCI packet is also written to this btsnoop v1 file.

    Returns:
        A Bumble ``Transport`` (``source``, ``sink``, ``await close()``).

    Raises:
        RadioUnavailableError: the transport could not be opened.
    """
    if isinstance(spec, LocalRadio):
        transport: Transport = _LocalTransport(spec, spec.controller())
    else:
        transport = await _open_with_retry(spec)
    if btsnoop is None:
        return transport
    output = btsnoop.open("wb")
    return SnoopingTransport(transport, BtSnooper(output), output.close)


async def _open_with_retry(spec: str) -> Transport:
    """Open a transport string, retrying tcp-client while the radio starts."""
    attempts = _TCP_ATTEMPTS if spec.startswith("tcp-client:") else 1
    for attempt in range(1, attempts + 1):
        try:
            return await open_transport(spec)
        except (OSError, ValueError, RuntimeError) as exc:
            if attempt == attempts:
                raise RadioUnavailableError(f"cannot open HCI transport {spec!r}: {exc}") from exc
            log.debug("HCI %s not ready (%s), retrying", spec, exc)
            await asyncio.sleep(_TCP_DELAY)
    raise RadioUnavailableError(spec)  # unreachable: the loop returns or raises
