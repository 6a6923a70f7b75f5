"""Which Bluetooth radios are emulated: the one rule both CLIs use to guard --auto-confirm.

Accepting every pairing code without a human is safe only on the virtual radio
(``carhub-radio``), where every peer is ours. The rule is an allowlist of Bumble transport
schemes, because Bumble has many transports that reach real controllers (``usb``, ``pyusb``,
``hci-socket``, ``serial``, ``vhci``, ...) and a new one must not count as emulated by default.
The check is on the string alone, so it imports neither Bumble nor the radio.
"""

from __future__ import annotations

__all__ = ["EMULATED_RADIO_PREFIXES", "is_emulated"]

EMULATED_RADIO_PREFIXES = ("tcp-client:",)


def is_emulated(transport_spec: str) -> bool:
    """Tell whether a Bumble transport string reaches the emulated radio.

    Args:
        transport_spec: what the user passed to ``--hci`` or ``--radio``, e.g.
            ``tcp-client:127.0.0.1:7000`` (emulated) or ``usb:0`` (real hardware).

    Returns:
        True only for a transport of the virtual radio.
    """
    return transport_spec.startswith(EMULATED_RADIO_PREFIXES)
