"""CarHub's virtual Bluetooth radio: Bumble controllers sharing one air, LE and BR/EDR.

``LocalRadio`` for one process, ``RadioServer`` (``carhub-radio serve``) across processes,
``open_hci`` to reach either (or real hardware) from a Bumble host.
"""

from radio.air import AirController, LocalRadio, address_for
from radio.hci import HciSpec, RadioUnavailableError, open_hci
from radio.server import RadioServer

__all__ = [
    "AirController",
    "HciSpec",
    "LocalRadio",
    "RadioServer",
    "RadioUnavailableError",
    "address_for",
    "open_hci",
]
