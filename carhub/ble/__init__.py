"""The car's BLE side: a Bumble GATT peripheral (``server``), one ``BleLink`` per phone
(``link``) and the bytes it advertises (``advertising``)."""

from carhub.ble.link import BleLink
from carhub.ble.server import BleCarServer

__all__ = ["BleCarServer", "BleLink"]
