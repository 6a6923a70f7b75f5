"""The car's Bluetooth Classic side: SSP pairing, SDP, RFCOMM and the PBAP pull loop.

``car.ClassicCar`` is what ``carhub.ble.server.BleCarServer`` and the runner use; ``link``
runs one phone's link, ``pull`` one pull, ``obex_link`` the OBEX client over RFCOMM,
``sdp_lookup`` finds the phone's PBAP server, ``pairing`` decides SSP numeric comparison.
The protocol itself is sans-I/O in ``protocol.obex`` and ``protocol.pbap``.
"""

from __future__ import annotations

from carhub.pbap.car import CAR_AUDIO_CLASS, ClassicCar

__all__ = ["CAR_AUDIO_CLASS", "ClassicCar"]
