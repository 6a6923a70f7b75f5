"""The car's BLE side: a Bumble GATT peripheral (``server``), one ``BleLink`` per phone
(``link``) and the bytes it advertises (``advertising``)."""

from carhub.ble.link import BleLink
from carhub.ble.server import MAX_QUEUED_BYTES, SUBSCRIBE_TIMEOUT_S, BleCarServer

__all__ = ["MAX_QUEUED_BYTES", "SUBSCRIBE_TIMEOUT_S", "BleCarServer", "BleLink"]
