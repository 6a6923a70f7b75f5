"""A Bumble ``Device`` that routes Classic-only host events to the BR/EDR connection.

Bumble 0.0.236 finds the connection of a Classic-only HCI event (IO Capability Request,
User Confirmation Request, PIN Code Request, Role Change, SCO...) by the peer's BD_ADDR
alone (``bumble.device.with_connection_from_address``), and takes the first connection
with that address, whatever its transport. A dual-mode phone connected over LE and over
BR/EDR at once, whose LE identity address is its public BD_ADDR (every iPhone, once
bonded), therefore had its Classic pairing handled as if it were on the LE link: the
car asked the LE link's pairing delegate (the AMS/ANCS one) for an SSP code, and the
Classic link never learned it had bonded. ``DualModeDevice`` looks among pending and
BR/EDR connections only, which is what those events are about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bumble.core import InvalidStateError, PhysicalTransport
from bumble.device import Device

__all__ = ["CLASSIC_ONLY_EVENTS", "DualModeDevice"]

# Every handler Bumble marks "[Classic only]" and resolves by address.
CLASSIC_ONLY_EVENTS = (
    "authentication_io_capability_request",
    "authentication_io_capability_response",
    "authentication_user_confirmation_request",
    "authentication_user_passkey_request",
    "pin_code_request",
    "authentication_user_passkey_notification",
    "sco_connection",
    "sco_connection_failure",
    "role_change",
    "classic_pairing",
    "classic_pairing_failure",
)


def _on_br_edr(name: str) -> Callable[..., Any]:
    """Bumble's handler ``on_<name>``, given the BR/EDR connection to ``address``."""
    handler = getattr(Device, f"on_{name}").__wrapped__  # the undecorated method

    def on_event(self: Device, address: Any, *args: Any, **kwargs: Any) -> Any:
        connection = self.pending_connections.get(address) or self.find_connection_by_bd_addr(
            address, transport=PhysicalTransport.BR_EDR
        )
        if connection is None:
            raise InvalidStateError(f"no BR/EDR connection for {address}")
        return handler(self, connection, *args, **kwargs)

    on_event.__name__ = f"on_{name}"
    return on_event


class DualModeDevice(Device):
    """``Device`` whose Classic-only events never reach an LE connection (see above)."""


for _name in CLASSIC_ONLY_EVENTS:
    setattr(DualModeDevice, f"on_{_name}", _on_br_edr(_name))
