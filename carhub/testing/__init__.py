"""``carhub.testing``: emulated cars, phones and radios as real processes, for tests.

The pytest plugin (``carhub.testing.plugin``, installed with the package) gives the
fixtures ``carhub_radio``, ``carhub_car`` and ``carhub_phone``; these classes are what
they return. Only the standard library, httpx and websockets are imported here: pytest
is imported by the plugin module alone. docs/testing.md has the guide.
"""

from __future__ import annotations

from carhub.testing.car import Car, EventStream
from carhub.testing.phone import Pairing, Phone, PhoneRun
from carhub.testing.processes import CommandFailed, Processes, Result, wait_for
from carhub.testing.radio import Radio

__all__ = [
    "Car",
    "CommandFailed",
    "EventStream",
    "Pairing",
    "Phone",
    "PhoneRun",
    "Processes",
    "Radio",
    "Result",
    "wait_for",
]
