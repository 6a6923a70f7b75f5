"""The shapes the car shows: one pydantic model per REST API and ``/api/events`` shape.

Each model is the only definition of its shape. The engine builds them (``Engine.status``,
``Engine.phones``, ``Engine.media``, ``Engine.pairing_requests``), the routes in
``carhub.api`` return them, and ``carhub.events`` turns them into JSON for the dashboard's
live updates. This module needs pydantic only, so the engine may use it without FastAPI.

The models carry comments, not docstrings: pydantic would publish a docstring as the
schema's description, and ``/openapi.json`` stays as it is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from protocol.contacts import Contact

__all__ = [
    "CallItem",
    "ClassicConnectBody",
    "CommandResult",
    "ContactItem",
    "ContactPage",
    "ContactPhone",
    "Media",
    "MediaCommandBody",
    "Notification",
    "NotificationActionBody",
    "PairingRequest",
    "PairingUriBody",
    "Phone",
    "Status",
]


# The car: ``GET /api/status`` and the ``status`` event.
class Status(BaseModel):
    id: str
    name: str
    model: str
    fingerprint: str
    protocol_version: int
    pairing_open: bool
    pairing_uri_expires_at: float | None = None
    ble: dict[str, Any] | None
    lan: dict[str, Any] | None
    apple: bool = False  # AMS/ANCS support on (whenever BLE is on)
    classic: str | None = None  # the car's Classic (PBAP) address, null when Classic is off


# A pairing request awaiting the car user: ``GET /api/pairing/requests``, ``pairing``.
# ``method`` "carhub" is a CarHub phone's code; "le-sc" a Bluetooth LE Secure Connections
# numeric comparison (an Apple-profile phone), whose ``phone_fingerprint`` is its address;
# "ssp" a Bluetooth Classic Secure Simple Pairing numeric comparison (a PBAP phone), likewise.
class PairingRequest(BaseModel):
    id: str
    phone_id: str
    phone_name: str
    phone_fingerprint: str
    code: str
    expires_at: float
    method: Literal["carhub", "le-sc", "ssp"] = "carhub"


# A fresh one-time pairing URI: ``POST /api/pairing/uri``.
class PairingUriBody(BaseModel):
    uri: str
    expires_at: float


# A paired phone: ``GET /api/phones`` and the ``phones`` event. ``profiles`` is ["carhub"]
# for a CarHub phone, the subset of ["ams", "ancs"] an Apple-profile phone offers (the last
# known while it is away); an Apple-profile phone's ``fingerprint`` is its identity address.
# A Bluetooth Classic phone's ``profiles`` include "pbap" (its ``transport`` "classic" while
# connected); a phone seen over both LE and Classic is one entry, with both profiles.
# ``owner`` is the name on the phone's own card (PBAP's owner card), null when unknown.
class Phone(BaseModel):
    id: str
    name: str
    fingerprint: str
    connected: bool
    transport: str | None
    contacts: int
    last_sync: float | None
    profiles: list[str]
    owner: str | None = None


# One entry of a Classic phone's recent calls: ``GET /api/phones/{phone_id}/calls``, newest
# first; ``date`` is ISO 8601 local time as the phone wrote it, "" when it gave none.
class CallItem(BaseModel):
    name: str
    number: str
    type: Literal["incoming", "outgoing", "missed"]
    date: str


# A car-initiated Classic connection: ``POST /api/classic/connect`` (and its 202 answer);
# ``address`` is a BD_ADDR, ``AA:BB:CC:DD:EE:FF`` (the answer gives it in upper case).
class ClassicConnectBody(BaseModel):
    address: str


# One telephone number of a contact.
class ContactPhone(BaseModel):
    number: str
    type: str
    label: str = ""


# One contact as the dashboard lists it.
class ContactItem(BaseModel):
    uid: str
    name: str
    phones: list[ContactPhone]
    emails: list[str]
    org: str

    @classmethod
    def from_contact(cls, contact: Contact) -> ContactItem:
        """Show a stored contact.

        Args:
            contact: the contact as the store keeps it.

        Returns:
            Its name, numbers, email addresses and organisation.
        """
        return cls(
            uid=contact.uid,
            name=contact.fn,
            phones=[
                ContactPhone(number=p.number, type=p.type, label=p.label) for p in contact.phones
            ],
            emails=[e.address for e in contact.emails],
            org=contact.org,
        )


# One page of a phone's contacts: ``GET /api/phones/{phone_id}/contacts``.
class ContactPage(BaseModel):
    total: int
    items: list[ContactItem]


# The active phone's now-playing state: ``GET /api/media`` and the ``media`` event.
# ``source`` says whose player it is: "carhub" (a CarHub phone) or "ams" (an Apple-profile
# phone's AMS); null, like ``phone_id``, while no phone has reported a track.
class Media(BaseModel):
    phone_id: str | None
    title: str | None
    artists: list[str]
    album: str | None
    state: str
    position_ms: int
    duration_ms: int
    rate: float
    track_id: str | None
    artwork_url: str | None
    connected: bool
    source: Literal["carhub", "ams"] | None


# One notification of an Apple-profile phone (ANCS): ``GET /api/notifications`` and the
# ``notifications`` event. ``uid`` is the ANCS uid; ``date`` is ``YYYY-MM-DDTHH:MM:SS``;
# ``category`` the lower-case ANCS category name; the action labels are None when absent.
class Notification(BaseModel):
    phone_id: str
    uid: int
    app_id: str
    app_name: str
    title: str
    subtitle: str
    message: str
    date: str
    category: str
    positive_action: str | None
    negative_action: str | None


# A command for the phone's player: ``POST /api/media/command``.
class MediaCommandBody(BaseModel):
    action: Literal["play", "pause", "toggle", "next", "previous", "seek"]
    position_ms: int | None = Field(default=None, ge=0)


# A notification action: ``POST /api/notifications/{phone_id}/{uid}/action``.
class NotificationActionBody(BaseModel):
    action: Literal["positive", "negative"]


# Where a media command (or a notification action) went.
class CommandResult(BaseModel):
    ok: bool
    phone_id: str
