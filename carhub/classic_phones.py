"""The engine's side of Bluetooth Classic (PBAP) phones: ``ClassicEvents``, as a mixin.

``carhub.engine.Engine`` inherits ``ClassicEventsMixin``, so the car's Classic side
(``carhub.pbap``) calls the engine itself, as the BLE side does through
``carhub.apple_phones``. What is kept here:

- bonded phones, their mirror of the phone book, its state and the recent calls, in the
  store (``carhub.store_classic``), listed by ``GET /api/phones`` (one entry with the Apple
  profiles when the same address is also a bonded Apple-profile phone);
- each connected phone's ``ClassicHandle``, and the car's Classic address and connector;
- SSP numeric-comparison codes as pairing requests (``method`` "ssp");
- each pulled page, planned by ``protocol.pbap.mirror`` so that unchanged contacts are not
  rewritten, stored atomically, and published as ``sync`` progress and ``contacts``;
- the mass-delete guard of CarHub phones (``protocol.sync.guard``): a pull that would delete
  more than half of the mirror and more than 20 contacts (a phone answering with an empty
  book before its user allowed contact sharing) is refused. The mirror stays, no state is
  kept (the next connection pulls again) and ``sync`` says stage "refused" with a reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from carhub import views
from carhub.apple_phones import ApplePhones, colon_address
from carhub.classic import CallEntry, ClassicConnector, ClassicHandle, ClassicLinkError, PulledPage
from carhub.events import EventHub
from carhub.pending import PendingPairing, drop_failed_pairing, request_bond_pairing
from carhub.store import Store, StoreError
from carhub.store_classic import MAX_CALLS, ClassicPhoneRecord, ClassicStore
from protocol.pbap import BookState
from protocol.pbap.mirror import plan_done, plan_page
from protocol.sync.guard import refuses_deletes

__all__ = ["ClassicEventsMixin", "ClassicNotReady", "ClassicPhones"]

log = logging.getLogger("carhub.classic")


class ClassicNotReady(ClassicLinkError):
    """Classic is off (no radio, or ``--no-classic``): ``POST /api/classic/connect``'s 409."""


@dataclass
class ClassicPhones:
    """The engine's Classic state: the store's tables and what lives in memory only."""

    store: ClassicStore
    handles: dict[str, ClassicHandle] = field(default_factory=dict)
    address: str | None = None  # the car's BD_ADDR while Classic is on
    connector: ClassicConnector | None = None
    progress: dict[str, tuple[int, int]] = field(default_factory=dict)  # last (done, total)


class ClassicEventsMixin:
    """``carhub.classic.ClassicEvents`` for ``Engine`` (see the module docstring)."""

    if TYPE_CHECKING:  # what the mixin uses of Engine
        hub: EventHub
        store: Store
        pending: dict[str, PendingPairing]
        classic: ClassicPhones
        apple_phones: ApplePhones

        @property
        def pairing_open(self) -> bool: ...
        def add_pending(self, req: PendingPairing) -> None: ...
        def pairing_requests(self) -> list[views.PairingRequest]: ...
        def phones(self) -> list[views.Phone]: ...
        def status(self) -> views.Status: ...

    # -- the radio -------------------------------------------------------------------------
    def classic_attach(self, address: str, connect: ClassicConnector) -> None:
        """Classic is on at ``address``: status shows it, the connect route may call it."""
        self.classic.address, self.classic.connector = address.upper(), connect
        log.info("Bluetooth Classic on at %s", self.classic.address)
        self.hub.publish("status", self.status())

    def classic_detach(self) -> None:
        """Classic is off: status ``classic`` is null; links that were up are gone."""
        self.classic.address = self.classic.connector = None
        gone, self.classic.handles = self.classic.handles, {}
        self.hub.publish("status", self.status())
        if gone:
            self.hub.publish("phones", self.phones())

    def classic_connect(self, address: str) -> str:
        """Start a car-initiated connection to ``address`` (the outcome comes as events).

        Returns:
            The address, upper case.

        Raises:
            ClassicNotReady: Classic is off.
        """
        if self.classic.connector is None:
            raise ClassicNotReady("Bluetooth Classic is off on this car")
        address = address.upper()
        log.info("connecting to Classic phone %s", address)
        self.classic.connector(address)
        return address

    # -- bonding ---------------------------------------------------------------------------
    def classic_may_bond(self) -> bool:
        """Whether a new bond may start now (the pairing window is open)."""
        return self.pairing_open

    def classic_pairing_requested(
        self,
        phone_id: str,
        phone_name: str,
        code: str,
        expires_at: float,
        decide: Callable[[bool], None],
    ) -> Callable[[], None]:
        """Show an SSP code as a pairing request (``method`` "ssp"); return ``withdraw``."""
        return request_bond_pairing(
            self, "ssp", "SSP", phone_id, phone_name, code, expires_at, decide
        )

    def classic_pairing_failed(self, phone_id: str, reason: str) -> None:
        """Log why a bond did not happen, drop its request, and tell the dashboard."""
        drop_failed_pairing(self, "ssp", "SSP", phone_id, reason)

    def classic_bonded(self, phone_id: str, phone_name: str) -> None:
        """Remember a newly bonded phone (a re-bond keeps its mirror and calls)."""
        try:
            self.classic.store.add(phone_id, phone_name, colon_address(phone_id), time.time())
        except StoreError as exc:
            log.error("could not remember bonded Classic phone %s: %s", phone_id, exc)
            return
        log.info("bonded Classic phone %r (%s)", phone_name, colon_address(phone_id))
        self.hub.publish("phones", self.phones())

    def classic_is_bonded(self, phone_id: str) -> bool:
        """Whether the car has this phone as a bonded Classic phone."""
        return self.classic.store.is_bonded(phone_id)

    # -- links -----------------------------------------------------------------------------
    def classic_connected(self, phone_id: str, handle: ClassicHandle) -> None:
        """A bonded phone's authenticated link is up."""
        if not self.classic_is_bonded(phone_id):
            log.warning("ignoring a Classic link of %s: not bonded", colon_address(phone_id))
            return
        old = self.classic.handles.get(phone_id)
        self.classic.handles[phone_id] = handle
        if old is not None and old is not handle:
            old.close("replaced by a new connection")
        self.hub.publish("phones", self.phones())

    def classic_disconnected(self, phone_id: str, handle: ClassicHandle) -> None:
        """That link ended (the bond, mirror and calls stay)."""
        if self.classic.handles.get(phone_id) is handle:
            del self.classic.handles[phone_id]
            self.hub.publish("phones", self.phones())

    # -- the pull --------------------------------------------------------------------------
    def classic_book_state(self, phone_id: str) -> BookState | None:
        """What the last complete pull stored (None: never, or it did not finish)."""
        return self.classic.store.book_state(phone_id)

    def classic_page(self, phone_id: str, page: PulledPage) -> None:
        """Store one page (only what changed, atomically) and publish ``sync`` progress.

        Raises:
            StoreError: nothing of the page was stored (the pull stops).
        """
        if not self.classic_is_bonded(phone_id):
            log.warning("dropping a page of %s: not a bonded phone", phone_id)
            return
        cs = self.classic.store
        stored = cs.stored(phone_id, [c.uid for c in page.contacts])
        plan = plan_page(stored, page.stage, page.contacts)
        used = {c.photo for c, _ in plan.upserts}
        photos = [p for p in page.photos if p.hash in used]
        owner_changed = page.owner is not None and page.owner != self._classic_owner(phone_id)
        cs.write_page(phone_id, plan.upserts, photos, page.owner, time.time())
        log.debug(
            "%s: %s page, %d written, %d unchanged",
            phone_id, page.stage, len(plan.upserts), plan.unchanged,
        )  # fmt: skip
        self._publish_sync(phone_id, page.done, page.total, page.stage)
        if plan.upserts:
            self._publish_contacts(phone_id)
        elif owner_changed:
            self.hub.publish("phones", self.phones())

    def classic_pull_skipped(self, phone_id: str, state: BookState) -> None:
        """The phone's counters say nothing changed: no card was downloaded."""
        if not self.classic_is_bonded(phone_id):
            return
        try:
            self.classic.store.keep_state(phone_id, state, time.time())
        except StoreError as exc:  # costs only the "last sync" time shown
            log.warning("could not keep the pull time of %s: %s", phone_id, exc)
        log.info("%s: phone book unchanged, nothing downloaded", colon_address(phone_id))
        count = self._classic_count(phone_id)
        self._publish_sync(phone_id, count, count, "skipped")
        self.hub.publish("phones", self.phones())

    def classic_calls(self, phone_id: str, calls: list[CallEntry]) -> None:
        """Replace the phone's recent calls (``GET /api/phones/{id}/calls``)."""
        if not self.classic_is_bonded(phone_id):
            return
        try:
            self.classic.store.set_calls(phone_id, calls)
        except StoreError as exc:  # the calls are the phone's; the next pull brings them
            log.warning("could not keep the recent calls of %s: %s", phone_id, exc)
            return
        self.hub.publish("calls", {"phone_id": phone_id, "total": min(len(calls), MAX_CALLS)})

    def classic_pull_done(
        self, phone_id: str, state: BookState | None, seen_uids: frozenset[str]
    ) -> None:
        """The whole book was read: delete what it no longer has, keep ``state``; a pull
        that would delete too much (``refuses_deletes``) is refused instead.

        Raises:
            StoreError: nothing was deleted or stored.
        """
        if not self.classic_is_bonded(phone_id):
            return
        cs = self.classic.store
        stored = cs.uids(phone_id)
        deletes = plan_done(stored, seen_uids)
        if refuses_deletes(len(stored), len(deletes)):
            self._refuse_pull(phone_id, len(stored), len(deletes))
            return
        cs.finish(phone_id, deletes, state, time.time())
        count = self._classic_count(phone_id)
        log.info("%s: phone book pulled, %d contacts (%d deleted)", phone_id, count, len(deletes))
        self._publish_sync(phone_id, count, count, "done")
        self._publish_contacts(phone_id)

    def _refuse_pull(self, phone_id: str, mirror: int, deletes: int) -> None:
        """Keep the mirror; void the stored state so that the next connection pulls again."""
        reason = f"the phone's book would delete {deletes} of the car's {mirror} contacts"
        log.warning("pull from %s refused: %s; the car keeps them", colon_address(phone_id), reason)
        self.classic.store.void_state(phone_id)
        self._publish_sync(phone_id, mirror, mirror, "refused", reason)

    def classic_pull_failed(self, phone_id: str, reason: str) -> None:
        """The pull stopped: what was stored stays; the next connection pulls again."""
        log.warning("pull from %s failed: %s", colon_address(phone_id), reason)
        done, total = self.classic.progress.get(phone_id, (0, 0))
        self._publish_sync(phone_id, done, total, "failed", reason)

    def _close_classic_links(self, reason: str) -> None:
        for handle in list(self.classic.handles.values()):
            handle.close(reason)

    # -- unpair and views --------------------------------------------------------------------
    def _unpair_classic(self, phone_id: str) -> bool:
        """Erase a Classic phone (mirror, state, calls) and close its link; True if bonded.

        The link key is erased by ``Engine.unpair`` (the unpair listeners), once for both sides.
        """
        if not self.classic.store.delete(phone_id):
            return False
        self.classic.progress.pop(phone_id, None)
        handle = self.classic.handles.pop(phone_id, None)
        if handle is not None:
            handle.close("unpaired")
        return True

    def _with_classic_phones(self, apple: list[views.Phone]) -> list[views.Phone]:
        """Apple-profile phones with the Classic ones: one entry per address."""
        bonded = {p.id: p for p in self.classic.store.phones()}
        merged = [self._merge_classic(p, bonded.pop(p.id)) if p.id in bonded else p for p in apple]
        for record in bonded.values():
            handle = self.classic.handles.get(record.id)
            merged.append(
                views.Phone(
                    id=record.id,
                    name=record.name,
                    fingerprint=colon_address(record.id),
                    connected=handle is not None,
                    transport=handle.transport_name if handle is not None else None,
                    contacts=record.contacts,
                    last_sync=record.last_pull,
                    profiles=["pbap"],
                    owner=record.owner,
                )
            )
        return merged

    def _merge_classic(self, apple: views.Phone, record: ClassicPhoneRecord) -> views.Phone:
        handle = self.classic.handles.get(record.id)
        return apple.model_copy(
            update={
                "connected": apple.connected or handle is not None,
                "transport": apple.transport or (handle.transport_name if handle else None),
                "contacts": record.contacts,
                "last_sync": record.last_pull,
                "profiles": [*apple.profiles, "pbap"],
                "owner": record.owner,
            }
        )

    def _classic_owner(self, phone_id: str) -> str | None:
        return next((p.owner for p in self.classic.store.phones() if p.id == phone_id), None)

    def _classic_count(self, phone_id: str) -> int:
        total, _ = self.store.contacts(phone_id, limit=0)
        return total

    def _publish_sync(
        self, phone_id: str, done: int, total: int, stage: str, reason: str | None = None
    ) -> None:
        self.classic.progress[phone_id] = (done, total)
        event: dict[str, object] = {"phone_id": phone_id, "done": done, "total": total}
        event["stage"] = stage
        if reason is not None:  # "failed" and "refused" say why
            event["reason"] = reason
        self.hub.publish("sync", event)

    def _publish_contacts(self, phone_id: str) -> None:
        self.hub.publish("contacts", {"phone_id": phone_id, "total": self._classic_count(phone_id)})
        self.hub.publish("phones", self.phones())
