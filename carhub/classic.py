"""What the engine and a Bluetooth Classic (PBAP) phone's link need of each other.

Any phone gives its phone book to a car over Bluetooth Classic with PBAP: OBEX over RFCOMM,
found through SDP. The car is the PBAP client (PCE). Its Classic side (the ``carhub.pbap``
package: SSP pairing, SDP, RFCOMM, the pull loop driving ``protocol.obex`` and
``protocol.pbap``) reports into the engine through ``ClassicEvents``; the engine starts
car-initiated connections through the ``ClassicConnector`` the Classic side attaches, and
ends a phone's link through its ``ClassicHandle``. Neither side imports the other: these
Protocols and dataclasses are the whole seam, as ``carhub.apple`` is for AMS/ANCS.

A Classic phone's id is its BD_ADDR as 12 lower-case hex digits with no colons
(``carhub.apple.apple_phone_id`` makes it), so one physical phone seen over LE (by its
identity address) and over Classic is one phone.

A pull, as the Classic side drives it (PROTOCOL.md section 12.2):

1. ``classic_book_state(phone_id)``: what the last *complete* pull stored, or None.
2. A probe (MaxListCount = 0). ``protocol.pbap.decide`` says "skip": the Classic side calls
   ``classic_pull_skipped`` and pulls only the call history. Else:
3. Text pages (no photos), in order: ``classic_page(phone_id, page)`` for each, with
   ``page.stage == "contacts"``. The engine stores each page atomically, writing only the
   contacts that differ from its mirror, and deletes nothing yet.
4. Photo pages (``stage == "photos"``): the cards that have a photo (all cards, when the
   phone cannot select by property), with their photos only; then the other contacts with
   an empty photo, so a photo removed on the phone goes on the car too.
5. ``classic_calls(phone_id, calls)``: the last 100 entries of ``telecom/cch.vcf``, best
   effort: a phone that refuses them (none kept, sharing off) keeps the last list, and the
   pull goes on.
6. ``classic_pull_done(phone_id, state, seen_uids)``: the book was read whole; the engine
   deletes the contacts not in ``seen_uids`` and stores ``state`` (None if the phone sent
   no counters: the next connection pulls again). A book that would delete more than half
   of the mirror and more than 20 contacts (``protocol.sync.guard``) is refused: the
   engine keeps the mirror, stores no state, and publishes ``sync`` stage "refused".

Any failure between 2 and 6 is ``classic_pull_failed(phone_id, reason)``: the engine keeps
every contact it had (pages already applied stay, each whole), stores no new state, and the
next connection pulls again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from protocol.contacts import Contact, Photo
from protocol.pbap import BookState

__all__ = [
    "CallEntry",
    "ClassicConnector",
    "ClassicEvents",
    "ClassicHandle",
    "ClassicLinkError",
    "PulledPage",
]

CallType = Literal["incoming", "outgoing", "missed"]
Stage = Literal["contacts", "photos"]


class ClassicLinkError(Exception):
    """A Classic link or pull failed (no answer, refused, malformed): a one-line reason."""


@dataclass(frozen=True)
class CallEntry:
    """One entry of the combined call history (``telecom/cch.vcf``), newest first.

    ``date`` is ISO 8601 local time as the phone wrote it (``2026-12-01T08:15:00``), or ""
    when the entry has none.
    """

    name: str
    number: str
    type: CallType
    date: str


@dataclass(frozen=True)
class PulledPage:
    """One imported page of ``telecom/pb.vcf``.

    Attributes:
        stage: "contacts" (cards without photos) or "photos" (the same cards, with photos).
        contacts: the page's contacts as ``protocol.vcard.import_vcards`` made them, the
            owner card (handle ``0.vcf``) left out. In the "photos" stage each carries its
            ``photo`` hash (empty when the card has no photo) and nothing else need be read.
        photos: the photo blobs the page's contacts refer to.
        owner: the owner card's name (FN) on the page that holds handle 0, else None.
        skipped: cards the importer could not read (each logged once by the Classic side).
        done: cards read so far in this stage (owner excluded), for the progress bar.
        total: the cards the phone announced (PhonebookSize, owner excluded).
    """

    stage: Stage
    contacts: list[Contact]
    photos: list[Photo] = field(default_factory=list)
    owner: str | None = None
    skipped: int = 0
    done: int = 0
    total: int = 0


class ClassicHandle(Protocol):
    """A connected Classic phone, as the engine sees it (``carhub.pbap``)."""

    transport_name: str  # always "classic"
    address: str  # "AA:BB:CC:DD:EE:FF"

    def close(self, reason: str) -> None:
        """Disconnect the phone (in the background)."""
        ...


# Start a connection to a phone by its BD_ADDR ("AA:BB:CC:DD:EE:FF"), pair if needed and
# pull; returns at once (the outcome arrives through ``ClassicEvents``).
ClassicConnector = Callable[[str], None]


class ClassicEvents(Protocol):
    """What the Classic side reports into the car (``carhub.engine.Engine`` implements it)."""

    def classic_attach(self, address: str, connect: ClassicConnector) -> None:
        """The car's controller is BR/EDR connectable at ``address``: ``GET /api/status``
        shows it as ``classic``, and ``POST /api/classic/connect`` calls ``connect``."""
        ...

    def classic_detach(self) -> None:
        """Classic is off now (the radio went away): status ``classic`` is null again."""
        ...

    def classic_may_bond(self) -> bool:
        """Whether a new bond may start now (the pairing window is open)."""
        ...

    def classic_pairing_requested(
        self,
        phone_id: str,
        phone_name: str,
        code: str,
        expires_at: float,
        decide: Callable[[bool], None],
    ) -> Callable[[], None]:
        """Show an SSP numeric-comparison code as a pairing request (``method`` "ssp").

        ``decide(accepted)`` is called once with the car user's answer (or at once in
        auto-confirm mode). Returns ``withdraw()``, to call if the pairing ends first.
        """
        ...

    def classic_pairing_failed(self, phone_id: str, reason: str) -> None:
        """Say on the dashboard's log why a bond did not happen."""
        ...

    def classic_bonded(self, phone_id: str, phone_name: str) -> None:
        """Remember a newly bonded phone: ``GET /api/phones`` lists it from now on."""
        ...

    def classic_is_bonded(self, phone_id: str) -> bool:
        """Whether the car has this phone as a bonded Classic phone."""
        ...

    def classic_connected(self, phone_id: str, handle: ClassicHandle) -> None:
        """A bonded phone's authenticated link is up (its pull starts now)."""
        ...

    def classic_disconnected(self, phone_id: str, handle: ClassicHandle) -> None:
        """That link ended (the bond and the mirror stay)."""
        ...

    def classic_book_state(self, phone_id: str) -> BookState | None:
        """What the last complete pull stored (None: never, or it did not finish)."""
        ...

    def classic_page(self, phone_id: str, page: PulledPage) -> None:
        """Store one page (atomically, only what changed) and publish ``sync`` progress.

        Raises:
            carhub.store.StoreError: nothing of the page was stored (the pull stops).
        """
        ...

    def classic_pull_skipped(self, phone_id: str, state: BookState) -> None:
        """The phone's counters say nothing changed: no card was downloaded."""
        ...

    def classic_calls(self, phone_id: str, calls: list[CallEntry]) -> None:
        """Replace the phone's recent calls (``GET /api/phones/{id}/calls``)."""
        ...

    def classic_pull_done(
        self, phone_id: str, state: BookState | None, seen_uids: frozenset[str]
    ) -> None:
        """The whole book was read: delete what it no longer has, keep ``state``.

        Raises:
            carhub.store.StoreError: nothing was deleted or stored.
        """
        ...

    def classic_pull_failed(self, phone_id: str, reason: str) -> None:
        """The pull stopped (one log line); what was stored stays, the next one retries."""
        ...

    def on_unpair(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(phone_id)`` when a phone is unpaired, to erase its link key."""
        ...
