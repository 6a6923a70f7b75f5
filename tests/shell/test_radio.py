"""shell.radio: only the virtual radio counts as emulated, so --auto-confirm stays off real radios."""

from __future__ import annotations

import pytest

from shell.radio import is_emulated


@pytest.mark.parametrize("spec", ["tcp-client:127.0.0.1:7000", "tcp-client:radio:7000"])
def test_the_virtual_radio_is_emulated(spec: str) -> None:
    assert is_emulated(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "usb:0",
        "pyusb:0",
        "hci-socket:0",
        "serial:/dev/ttyUSB0",
        "vhci",
        "tcp-server:0.0.0.0:7000",  # a host could be listening for a real controller
        "android-netsim",
        "",
        "TCP-CLIENT:127.0.0.1:7000",  # Bumble's schemes are lower case; no guessing
        " tcp-client:127.0.0.1:7000",
        "tcp-clientx:127.0.0.1:7000",
    ],
)
def test_everything_else_is_a_real_radio(spec: str) -> None:
    assert not is_emulated(spec)
