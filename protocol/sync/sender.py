"""The phone's side of contacts sync: plan a change set against the car's state and send it."""

from __future__ import annotations

import operator
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate, compress, filterfalse

from protocol.contacts import Contact, Photo, bounds_refusals, encode_each, raw_digests
from protocol.errors import LocalProtocolError, Reason, SyncError
from protocol.messages import Message
from protocol.sync.guard import DeletesRefused, refuses_deletes
from protocol.sync.journal import JournalAcked, JournalBase, JournalSent, SnapshotEdit
from protocol.sync.wire import (
    _MAX_UID_BYTES,
    EMPTY_ANCHOR,
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    MAX_BATCH_PHOTOS,
    MAX_PHOTO_BYTES,
    ContactsAck,
    ContactsBatch,
    ContactsDone,
    ContactsState,
    InFlight,
    Manifest,
    ManifestRequest,
    SyncCompleted,
    SyncEvent,
    SyncProgress,
    SyncSnapshot,
    SyncSummary,
    _check_uid,
    apply_inflight,
    batch_digest,
    next_anchor,
)

__all__ = ["ContactsSender", "DigestCache"]

_UID = operator.attrgetter("uid")
_PHOTO = operator.attrgetter("photo")


@dataclass
class _Planned:
    upserts: list[Contact]
    deletes: list[str]
    photos: list[Photo]

    @property
    def items(self) -> int:
        return len(self.upserts) + len(self.deletes) + len(self.photos)


class DigestCache:
    """Digests and encoded sizes of contacts, remembered per uid.

    Contacts are frozen, so an identical (or equal) contact has the same digest; a changed
    one is measured again. Entries for uids no longer present are dropped. ``refused``
    maps the uids of the last ``measure`` that are out of bounds (``check_bounds``) to why.
    """

    def __init__(self) -> None:
        self._contacts: dict[str, Contact] = {}
        self._digests: dict[str, bytes] = {}
        self._sizes: dict[str, int] = {}
        self.refused: dict[str, str] = {}

    def measure(self, contacts: dict[str, Contact]) -> tuple[dict[str, bytes], dict[str, int]]:
        """Return ``(uid -> digest, uid -> size)``, encoding only contacts not seen before.

        Every per-contact step is a C loop (``map``): the delta of one in 10k costs ~1 ms.

        Raises:
            LocalProtocolError: a uid is empty or over 1024 bytes.
        """
        old = self._contacts
        # Equal structs compare field by field in C, and the very same object at once; so a
        # kept address book costs ~20 ns a contact and a re-imported, unchanged one ~0.4 us.
        same = map(operator.eq, map(old.get, contacts), contacts.values())
        fresh = list(compress(contacts, map(operator.not_, same)))
        # UTF-8 takes at most 4 bytes a character: uids of <= 256 characters need no encoding.
        if fresh and (not all(fresh) or max(map(len, fresh)) > _MAX_UID_BYTES // 4):
            for uid in fresh:
                _check_uid(uid, LocalProtocolError)
        if len(old) + len(fresh) - sum(map(old.__contains__, fresh)) != len(contacts):
            for uid in old.keys() - contacts.keys():
                del self._digests[uid], self._sizes[uid]
                self.refused.pop(uid, None)
        if fresh:
            changed = list(map(contacts.__getitem__, fresh))
            raws = encode_each(changed)  # one encoding gives the digest and the batch size
            sizes = list(map(len, raws))
            self._digests.update(zip(fresh, raw_digests(raws), strict=True))
            self._sizes.update(zip(fresh, sizes, strict=True))
            if self.refused:
                for uid in fresh:
                    self.refused.pop(uid, None)
            for i, why in bounds_refusals(changed, sizes).items():
                self.refused[fresh[i]] = why
        self._contacts = dict(contacts)  # the caller's dict is its own to change
        return dict(self._digests), dict(self._sizes)


class ContactsSender:
    """The phone's side of one contacts sync with one car.

    Args:
        contacts: the phone's contacts (the source of truth); a repeated uid keeps the last.
        photos: photo bytes by hash; a contact's ``photo`` names one of them.
        snapshot: what was persisted from the last sync with this car, or None.
        batch_size: most upserts + deletes per batch (1..500).
        window: most batches in flight before an ack.
        cache: a ``DigestCache`` the caller keeps between syncs, so unchanged contact
            objects are not encoded again (a delta of one in 10k then costs ~2 ms here).

    A contact out of the bounds of PROTOCOL.md section 7 (``check_bounds``), which the car
    would refuse with its whole batch, is left out of the sync as if the phone did not
    hold it, and listed in ``skipped`` as ``(uid, why)`` for the shell to warn about.

    ``allow_deletes=False`` arms the mass-deletion guard (``protocol.sync.guard``): a
    change set that would delete more than half of the car's mirror (and more than 20
    contacts, skipped ones included) makes ``receive`` raise ``DeletesRefused`` before any
    batch is sent.

    Raises:
        LocalProtocolError: a bad ``batch_size``/``window`` or a uid over 1024 bytes.
    """

    def __init__(
        self,
        contacts: list[Contact],
        photos: dict[bytes, Photo],
        snapshot: SyncSnapshot | None,
        *,
        batch_size: int = MAX_BATCH_ITEMS,
        window: int = 4,
        cache: DigestCache | None = None,
        allow_deletes: bool = True,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_ITEMS or window < 1:
            raise LocalProtocolError(Reason.STATE, f"batch_size {batch_size}, window {window}")
        self._contacts = {c.uid: c for c in contacts}
        cache = cache or DigestCache()
        self._digests, self._sizes = cache.measure(self._contacts)
        self.skipped = sorted(cache.refused.items())
        for uid in cache.refused:
            del self._contacts[uid], self._digests[uid], self._sizes[uid]
        self._photos = photos
        self._saved = snapshot or SyncSnapshot(EMPTY_ANCHOR, {}, set())
        # The caller's journal already rebuilds ``snapshot``: a sync starting right from it
        # need not write its base again (O(contacts) for a delta of one).
        self._persisted = snapshot is not None and not snapshot.inflight
        self._acked = SyncSnapshot(
            self._saved.anchor, dict(self._saved.digests), set(self._saved.photos)
        )
        self._batch_size, self._window = batch_size, window
        self._allow_deletes = allow_deletes
        self._state = "wait-state"
        self._plan: list[_Planned] = []
        self._inflight: list[tuple[int, InFlight, int]] = []
        self._events: list[SyncEvent] = []
        self._seq = 0
        self._head = self._acked.anchor
        self._car_anchor = EMPTY_ANCHOR
        self._manifest: tuple[dict[str, bytes], set[bytes]] = ({}, set())
        self._summary = SyncSummary()
        self._progress = (0, 0)
        self._journal: list[SnapshotEdit] = []
        self.done = False

    def journal(self) -> list[SnapshotEdit]:
        """Return (and forget) the snapshot edits made since the last call.

        Persist them after every ``receive`` and before sending what it returned; rebuild
        with ``replay_journal``. A ``JournalBase`` shares this sender's dictionaries:
        serialise it before the next ``receive``. A sync that starts from the ``snapshot``
        it was given (with nothing in flight) writes no ``JournalBase``: its edits append to
        the journal that rebuilt that snapshot.
        """
        out, self._journal = self._journal, []
        return out

    @property
    def snapshot(self) -> SyncSnapshot:
        """What to persist now: the last acked state plus the batches in flight.

        Persist it (or, cheaper, the ``journal``) after every ``receive`` and before sending
        what it returned, so a resume recognises the car's anchor even if the car applied a
        batch whose ack was lost. This property copies: O(contacts) per call.
        """
        if self._state == "wait-state":
            return self._saved
        inflight = [item for _, item, _ in self._inflight]
        a = self._acked
        return SyncSnapshot(a.anchor, dict(a.digests), set(a.photos), inflight)

    def receive(self, msg: Message) -> list[Message]:
        """Feed one message from the car.

        Args:
            msg: a ``ContactsState``, ``Manifest`` or ``ContactsAck``.

        Returns:
            Messages to send to the car, in order.

        Raises:
            SyncError: the message is unexpected now, or an ack does not match the batch.
            DeletesRefused: the guard is armed and the sync would delete too much.
        """
        if isinstance(msg, ContactsState) and self._state in ("wait-state", "sending"):
            return self._on_state(msg)
        if isinstance(msg, Manifest) and self._state == "wait-manifest":
            return self._on_manifest(msg)
        if isinstance(msg, ContactsAck) and self._state == "sending":
            return self._on_ack(msg)
        raise SyncError(Reason.UNEXPECTED_MESSAGE, f"{type(msg).__name__} in {self._state}")

    def next_event(self) -> SyncEvent | None:
        """Pop the oldest pending ``SyncProgress``/``SyncCompleted``, or None."""
        return self._events.pop(0) if self._events else None

    def _on_state(self, msg: ContactsState) -> list[Message]:
        """Resume from what we know of the car's anchor, or ask for its manifest."""
        base = None if self._state == "sending" else self._match(msg.anchor, msg.count)
        if self._state == "sending" and self._inflight:
            a = self._acked  # the car refused a batch: what is in flight is void
            self._journal.append(JournalBase(SyncSnapshot(a.anchor, a.digests, a.photos)))
        self._inflight.clear()
        if base is None:
            # The car rejected a batch or has an anchor we never saw: ask what it holds.
            self._state, self._car_anchor = "wait-manifest", msg.anchor
            self._manifest = ({}, set())
            return [ManifestRequest()]
        return self._start(base)

    def _match(self, anchor: bytes, count: int) -> SyncSnapshot | None:
        """Return the car's state if ``anchor`` is the saved one or a batch in flight."""
        if anchor == EMPTY_ANCHOR and count == 0:
            return SyncSnapshot(EMPTY_ANCHOR, {}, set())
        snap = self._acked
        for item in [None, *self._saved.inflight]:
            snap = snap if item is None else apply_inflight(snap, item)
            if snap.anchor == anchor:
                return snap if len(snap.digests) == count else None
        return None

    def _on_manifest(self, msg: Manifest) -> list[Message]:
        """Collect manifest chunks; on the last one, diff against it."""
        digests, photos = self._manifest
        digests.update(msg.entries)
        photos.update(msg.photos)
        if not msg.done:
            return []
        return self._start(SyncSnapshot(self._car_anchor, digests, photos))

    def _start(self, base: SyncSnapshot) -> list[Message]:
        """Plan the change set against ``base`` (the car's state) and open the window."""
        if not self._allow_deletes:
            deletes = sum(1 for uid in base.digests if uid not in self._contacts)
            if refuses_deletes(len(base.digests), deletes):
                # Before any state changes or journal entry: nothing is sent, nothing saved.
                raise DeletesRefused(len(base.digests), deletes, base.anchor)
        if not (self._persisted and base is self._acked):
            self._journal.append(JournalBase(SyncSnapshot(base.anchor, base.digests, base.photos)))
        self._acked, self._head = base, base.anchor
        self._plan = self._diff(base)
        self._progress = (0, sum(p.items for p in self._plan))
        self._state = "sending"
        return self._fill()

    def _diff(self, base: SyncSnapshot) -> list[_Planned]:
        """Split the differences from ``base`` into bounded batches, photos first.

        Upserts go in the book's order, deletes in the base's (tests/faults rely on it).
        """
        bd, mine = base.digests, self._contacts
        differs = map(operator.ne, map(bd.get, mine), map(self._digests.__getitem__, mine))
        changed = list(compress(mine, differs))
        upserts = list(map(mine.__getitem__, changed))
        deletes = list(filterfalse(mine.__contains__, bd))
        added = len(changed) - sum(map(bd.__contains__, changed))
        wanted = set(map(_PHOTO, mine.values())) - base.photos
        wanted.discard(b"")
        photos = [self._photos[h] for h in sorted(wanted) if h in self._photos]
        photos = [p for p in photos if len(p.data) <= MAX_PHOTO_BYTES]
        self._summary = SyncSummary(
            added=added, changed=len(upserts) - added, deleted=len(deletes),
            unchanged=len(mine) - len(upserts), photos_sent=len(photos),
        )  # fmt: skip
        sizes = [*map(self._sizes.__getitem__, changed), *(len(uid) + 3 for uid in deletes)]
        return _chunk_photos(photos) + self._chunk_contacts(upserts, deletes, sizes)

    def _chunk_contacts(
        self, upserts: list[Contact], deletes: list[str], sizes: list[int]
    ) -> list[_Planned]:
        """Cut upserts then deletes into batches of <= batch_size items and ~256 KiB.

        A batch takes items while it stays within both (at least one item): found with a
        bisection in the running sum of ``sizes`` (one per item), not a loop per item.
        """
        ends = list(accumulate(sizes, initial=0))
        plan: list[_Planned] = []
        n, nu, start = len(sizes), len(upserts), 0
        while start < n:
            fits = bisect_right(ends, ends[start] + MAX_BATCH_BYTES) - 1
            stop = max(start + 1, min(fits, start + self._batch_size))
            plan.append(
                _Planned(
                    upserts[start : min(stop, nu)],
                    deletes[max(start - nu, 0) : max(stop - nu, 0)],
                    [],
                )
            )
            start = stop
        return plan

    def _fill(self) -> list[Message]:
        """Send batches until the window is full; close the sync when all are acked."""
        out: list[Message] = []
        while self._plan and len(self._inflight) < self._window:
            out.append(self._send(self._plan.pop(0)))
        if not self._plan and not self._inflight:
            out.append(self._finish())
        return out

    def _send(self, p: _Planned) -> ContactsBatch:
        """Turn a planned batch into a message chained on the predicted head anchor."""
        self._seq += 1
        uids = list(map(_UID, p.upserts))
        entries = list(zip(uids, map(self._digests.__getitem__, uids), strict=True))
        hashes = [ph.hash for ph in p.photos]
        new = next_anchor(self._head, batch_digest(entries, p.deletes, hashes))
        batch = ContactsBatch(
            self._seq, self._head, p.upserts, p.deletes, p.photos, final=not self._plan
        )
        item = InFlight(new, entries, p.deletes, hashes)
        self._inflight.append((self._seq, item, p.items))
        self._journal.append(JournalSent(item))
        self._head = new
        return batch

    def _on_ack(self, ack: ContactsAck) -> list[Message]:
        """Fold the oldest in-flight batch into the acked state and send more."""
        if not self._inflight or ack.seq != self._inflight[0][0]:
            raise SyncError(Reason.BAD_BATCH, f"ack for seq {ack.seq} out of order")
        _, item, n = self._inflight.pop(0)
        if ack.anchor != item.anchor:
            raise SyncError(Reason.ANCHOR_MISMATCH, f"seq {ack.seq}: car anchor differs")
        # In place: copying 100k digests per ack would make a big sync quadratic.
        self._acked.digests.update(item.upserts)
        for uid in item.deletes:
            self._acked.digests.pop(uid, None)
        self._acked.photos.update(item.photos)
        self._acked.anchor = item.anchor
        self._journal.append(JournalAcked(item.anchor))
        self._progress = (self._progress[0] + n, self._progress[1])
        self._events.append(SyncProgress(*self._progress))
        return self._fill()

    def _finish(self) -> ContactsDone:
        """Close the sync: summary event, ``ContactsDone``."""
        self._state, self.done = "done", True
        s = self._summary
        self._summary = SyncSummary(
            s.added, s.changed, s.deleted, s.unchanged, s.photos_sent, self._seq
        )
        self._events.append(SyncCompleted(self._summary, self._head))
        return ContactsDone(self._head, len(self._contacts))


def _chunk_photos(photos: list[Photo]) -> list[_Planned]:
    """Put photos in their own small batches: <= 64 photos and ~256 KiB each."""
    plan: list[_Planned] = []
    size = 0
    for p in photos:
        if (
            not plan
            or len(plan[-1].photos) >= MAX_BATCH_PHOTOS
            or size + len(p.data) > MAX_BATCH_BYTES
        ):
            plan.append(_Planned([], [], []))
            size = 0
        plan[-1].photos.append(p)
        size += len(p.data)
    return plan
