"""What the engine and an Apple-profile phone's BLE link need of each other.

An iPhone runs no CarHub app: it connects to the car over BLE and serves AMS (Apple Media
Service) and ANCS (Apple Notification Center Service), and the car is their GATT client
(``carhub.ble.apple``). That side reports what it learns into the engine through
``AppleEvents``, and the engine drives the phone (media commands, notification actions,
unpair) through the ``AppleHandle`` each connected phone registers. Neither side imports
the other: these two Protocols are the whole seam, as ``SessionHandle`` is for CarHub phones.

An Apple-profile phone's id is its Bluetooth identity address as 12 lower-case hex digits
with no colons (``apple_phone_id``): the car knows a bonded phone by it whatever private
address the phone connects from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from carhub.views import Notification
from protocol.media import NowPlaying

__all__ = ["AppleEvents", "AppleHandle", "AppleLinkError", "apple_phone_id"]

# The values of a phone's ``profiles`` field in ``GET /api/phones``.
Profile = Literal["ams", "ancs"]


class AppleLinkError(Exception):
    """The phone could not be asked (link gone, ATT error, timeout): a one-line reason."""


def apple_phone_id(identity_address: str) -> str:
    """Return the phone id for an identity address (``AA:BB:CC:DD:EE:FF`` or with ``/P``)."""
    return identity_address.split("/")[0].replace(":", "").lower()


class AppleHandle(Protocol):
    """A connected Apple-profile phone, as the engine drives it (``carhub.ble.apple``)."""

    transport_name: str  # always "ble"
    profiles: tuple[Profile, ...]  # what the phone offers now, in the order ("ams", "ancs")

    def media_commands(self) -> frozenset[str]:
        """The media actions the phone's AMS offers now (of play, pause, toggle, next, previous)."""
        ...

    async def media_command(self, action: str) -> None:
        """Send one AMS Remote Command. Raises ``AppleLinkError``."""
        ...

    async def notification_action(self, uid: int, action: Literal["positive", "negative"]) -> None:
        """Perform a notification's action through ANCS. Raises ``AppleLinkError``."""
        ...

    def close(self, reason: str) -> None:
        """Disconnect the phone (in the background)."""
        ...


class AppleEvents(Protocol):
    """What the BLE side reports into the car (``carhub.engine.Engine`` implements it)."""

    def apple_may_bond(self) -> bool:
        """Whether a new bond may start now (the pairing window is open)."""
        ...

    def apple_pairing_requested(
        self,
        phone_id: str,
        phone_name: str,
        code: str,
        expires_at: float,
        decide: Callable[[bool], None],
    ) -> Callable[[], None]:
        """Show an LE SC numeric-comparison code as a pairing request (``method`` "le-sc").

        ``decide(accepted)`` is called once with the car user's answer (or at once in
        auto-confirm mode). Returns ``withdraw()``, to call if the pairing ends first.
        """
        ...

    def apple_pairing_failed(self, phone_id: str, reason: str) -> None:
        """Say on the dashboard's log why a bond did not happen (wrong code, window closed...)."""
        ...

    def apple_bonded(self, phone_id: str, phone_name: str) -> None:
        """Remember a newly bonded phone: ``GET /api/phones`` lists it from now on."""
        ...

    def apple_is_bonded(self, phone_id: str) -> bool:
        """Whether the car has this phone as a bonded Apple-profile phone."""
        ...

    def apple_connected(self, phone_id: str, handle: AppleHandle) -> None:
        """A bonded phone's encrypted link is up (or its profiles changed)."""
        ...

    def apple_disconnected(self, phone_id: str, handle: AppleHandle) -> None:
        """That link ended (the bond, notifications cache and now playing stay)."""
        ...

    def apple_now_playing(self, phone_id: str, np: NowPlaying, received_at_ms: int) -> None:
        """The phone's AMS now playing changed (media ``source`` "ams")."""
        ...

    def apple_notification(self, notification: Notification) -> None:
        """A notification was added or modified (its attributes fetched)."""
        ...

    def apple_notification_removed(self, phone_id: str, uid: int) -> None:
        """The phone removed a notification."""
        ...

    def apple_notifications_reset(self, phone_id: str) -> None:
        """Forget the phone's notifications (a reconnect re-reads them all)."""
        ...

    def on_unpair(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(phone_id)`` when a phone is unpaired, to erase its bond."""
        ...
