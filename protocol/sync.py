"""Contacts sync state machines: anchors, batches, acks and resume.

Theory of operation. The phone is the source of truth; the car keeps one mirror per phone.
The car's mirror is summarised by an *anchor*, 16 opaque bytes (all zero = empty), that
chains deterministically over every batch the car has applied::

    anchor' = SHA-256(ANCHOR_LABEL || anchor || batch_digest(batch))[:16]

so the phone can predict the anchor each batch it sends will produce. One sync runs:

    car   -> ContactsState(anchor, count)
    phone -> ManifestRequest()                 only if the phone does not know that anchor
    car   -> Manifest(entries, photos, done)*  the car's uid -> digest map, in chunks
    phone -> ContactsBatch(seq, base, ...)*    up to ``window`` in flight
    car   -> ContactsAck(seq, anchor)*         after the shell committed the batch
    phone -> ContactsDone(anchor, total)

A batch applies only on top of its ``base_anchor``; a batch whose predicted result already
*is* the car's anchor is a re-delivery and is acked again without changes. Anything else
makes the car send ``ContactsState`` again and ignore batches until the phone asks for the
manifest. The phone keeps a ``SyncSnapshot`` (last acked anchor and the car's digests, plus
the batches in flight), so after a cut at any point the next session either recognises the
car's anchor and sends only the remaining delta, or falls back to the manifest, which also
sends only differences. Both paths end with the mirror equal to the phone's contacts.

Transitions (anything else is ``SyncError(unexpected-message)``):

    sender    wait-state  --ContactsState-->  sending | wait-manifest | done
              wait-manifest --Manifest(done)--> sending | done
              sending --ContactsAck--> sending | done;  --ContactsState--> wait-manifest
    receiver  ready --ContactsBatch(bad base)--> resync --ManifestRequest--> ready
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import msgspec

from protocol.contacts import Contact, Photo, contact_digest, digest_and_size, photo_hash
from protocol.errors import LocalProtocolError, Reason, SyncError
from protocol.messages import Message, register

__all__ = [
    "ANCHOR_LABEL",
    "ANCHOR_SIZE",
    "EMPTY_ANCHOR",
    "MANIFEST_CHUNK",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ITEMS",
    "MAX_BATCH_PHOTOS",
    "MAX_PHOTO_BYTES",
    "ApplyBatch",
    "ContactsAck",
    "ContactsBatch",
    "ContactsDone",
    "ContactsState",
    "ContactsSynced",
    "InFlight",
    "JournalAcked",
    "JournalBase",
    "JournalSent",
    "Manifest",
    "ManifestRequest",
    "MirrorState",
    "SnapshotEdit",
    "SyncCompleted",
    "SyncEvent",
    "SyncProgress",
    "SyncSnapshot",
    "SyncSummary",
    "batch_digest",
    "next_anchor",
    "replay_journal",
]

ANCHOR_SIZE = 16
EMPTY_ANCHOR = bytes(ANCHOR_SIZE)
ANCHOR_LABEL = b"carhub-contacts-anchor-v1"
# 500 items and 256 KiB keep a batch far under the 1 MiB frame limit and small enough that
# the car commits it in one short SQLite transaction (~2 ms), so a cut loses little work.
MAX_BATCH_ITEMS = 500
MAX_BATCH_BYTES = 256 * 1024
MAX_BATCH_PHOTOS = 64
# A photo must fit a frame with room to spare; bigger ones are skipped by the phone.
MAX_PHOTO_BYTES = 512 * 1024
# 2000 entries of ~40 bytes is ~80 KiB per Manifest frame.
MANIFEST_CHUNK = 2000

Anchor = Annotated[bytes, msgspec.Meta(min_length=ANCHOR_SIZE, max_length=ANCHOR_SIZE)]
Digest = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Hash = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class ContactsState(Message, tag=30):
    """Car -> phone: the mirror's anchor and number of contacts."""

    anchor: Anchor
    count: Count


class ManifestRequest(Message, tag=31):
    """Phone -> car: send me your ``uid -> digest`` map; I do not know your anchor."""


class Manifest(Message, tag=32):
    """Car -> phone: one chunk of the mirror's digests and photo hashes."""

    entries: list[tuple[str, Digest]]
    photos: list[Hash]
    done: bool


class ContactsBatch(Message, tag=33):
    """Phone -> car: changes to apply on top of ``base_anchor``."""

    seq: Count
    base_anchor: Anchor
    upserts: list[Contact]
    deletes: list[str]
    photos: list[Photo]
    final: bool


class ContactsAck(Message, tag=34):
    """Car -> phone: batch ``seq`` is committed; the mirror is now at ``anchor``."""

    seq: Count
    anchor: Anchor


class ContactsDone(Message, tag=35):
    """Phone -> car: the sync is complete at ``anchor`` with ``total`` contacts."""

    anchor: Anchor
    total: Count


register(ContactsState, ManifestRequest, Manifest, ContactsBatch, ContactsAck, ContactsDone)


class InFlight(msgspec.Struct, array_like=True):
    """A batch the phone sent but has not seen acked: what it changes and where it leads."""

    anchor: bytes
    upserts: list[tuple[str, bytes]]
    deletes: list[str]
    photos: list[bytes]


class SyncSnapshot(msgspec.Struct):
    """What the phone knows of one car's mirror; the phone's shell persists it.

    ``anchor``/``digests``/``photos`` are the state at the last ack; ``inflight`` lists the
    batches sent after it, in order, so a resume can recognise a car that applied some.
    """

    anchor: bytes
    digests: dict[str, bytes]
    photos: set[bytes]
    inflight: list[InFlight] = []


class MirrorState(msgspec.Struct):
    """What the car holds for one phone; the car's shell loads it from its store."""

    anchor: bytes = EMPTY_ANCHOR
    digests: dict[str, bytes] = {}
    photos: set[bytes] = set()


class JournalBase(msgspec.Struct, tag="base"):
    """Journal: replace the whole snapshot (written once per sync, at its start)."""

    snapshot: SyncSnapshot


class JournalSent(msgspec.Struct, tag="sent"):
    """Journal: a batch went out; it is in flight until acked."""

    item: InFlight


class JournalAcked(msgspec.Struct, tag="acked"):
    """Journal: the car acked the oldest in-flight batch, whose result is ``anchor``."""

    anchor: bytes


SnapshotEdit = JournalBase | JournalSent | JournalAcked


def replay_journal(base: SyncSnapshot | None, edits: Iterable[SnapshotEdit]) -> SyncSnapshot:
    """Rebuild the phone's snapshot from a base and the journal written after it.

    Persisting edits instead of whole snapshots keeps each step O(batch), not O(contacts):
    a 100k-contact sync would otherwise rewrite 5 MB after every one of its 200 acks.

    Returns:
        A snapshot whose ``inflight`` lists the batches sent but not acked.
    """
    snap = base or SyncSnapshot(EMPTY_ANCHOR, {}, set())
    snap = SyncSnapshot(snap.anchor, dict(snap.digests), set(snap.photos), list(snap.inflight))
    for edit in edits:
        if isinstance(edit, JournalBase):
            b = edit.snapshot
            snap = SyncSnapshot(b.anchor, dict(b.digests), set(b.photos), list(b.inflight))
        elif isinstance(edit, JournalSent):
            snap.inflight.append(edit.item)
        else:
            while snap.inflight:
                item = snap.inflight.pop(0)
                snap.digests.update(item.upserts)
                for uid in item.deletes:
                    snap.digests.pop(uid, None)
                snap.photos.update(item.photos)
                snap.anchor = item.anchor
                if item.anchor == edit.anchor:
                    break
    return snap


@dataclass(frozen=True)
class SyncSummary:
    added: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    photos_sent: int = 0
    batches: int = 0


@dataclass(frozen=True)
class SyncProgress:
    """Phone: ``done`` of ``total`` changes (upserts + deletes + photos) are acked."""

    done: int
    total: int


@dataclass(frozen=True)
class SyncCompleted:
    summary: SyncSummary
    anchor: bytes


@dataclass(frozen=True)
class ApplyBatch:
    """Car: commit this batch atomically, then call ``ContactsReceiver.applied``.

    ``added`` lists the uids among ``upserts`` that are new to the mirror (the rest are
    changes); ``digests`` gives each upsert's digest so the store need not recompute it.
    """

    seq: int
    upserts: list[Contact]
    deletes: list[str]
    photos: list[Photo]
    new_anchor: bytes
    digests: list[tuple[str, bytes]]
    added: frozenset[str]


@dataclass(frozen=True)
class ContactsSynced:
    """Car: the phone closed the sync; the mirror holds ``total`` contacts at ``anchor``."""

    anchor: bytes
    total: int


SyncEvent = SyncProgress | SyncCompleted | ApplyBatch | ContactsSynced


def batch_digest(
    upserts: Iterable[tuple[str, bytes]], deletes: Iterable[str], photos: Iterable[bytes]
) -> bytes:
    """Digest a batch's effect: ``SHA-256`` over its tagged items in wire order.

    Args:
        upserts: ``(uid, contact_digest)`` pairs.
        deletes: deleted uids.
        photos: photo hashes.

    Returns:
        32 bytes. Items are ``b"U" || u16 len || uid || digest``, ``b"D" || u16 len ||
        uid`` and ``b"P" || hash``, concatenated upserts first, then deletes, then photos.
    """
    h = hashlib.sha256()
    for uid, digest in upserts:
        raw = uid.encode()
        h.update(b"U" + len(raw).to_bytes(2, "big") + raw + digest)
    for uid in deletes:
        raw = uid.encode()
        h.update(b"D" + len(raw).to_bytes(2, "big") + raw)
    for ph in photos:
        h.update(b"P" + ph)
    return h.digest()


def next_anchor(anchor: bytes, digest: bytes) -> bytes:
    """Return the anchor that applying a batch with ``digest`` on ``anchor`` produces."""
    return hashlib.sha256(ANCHOR_LABEL + anchor + digest).digest()[:ANCHOR_SIZE]


def apply_inflight(snap: SyncSnapshot, item: InFlight) -> SyncSnapshot:
    """Return ``snap`` advanced by one in-flight batch (a new object; ``snap`` is unchanged)."""
    digests = dict(snap.digests)
    digests.update(item.upserts)
    for uid in item.deletes:
        digests.pop(uid, None)
    return SyncSnapshot(item.anchor, digests, snap.photos | set(item.photos))


_MAX_UID_BYTES = 1024
_enc = msgspec.msgpack.Encoder()


@dataclass
class _Planned:
    upserts: list[Contact]
    deletes: list[str]
    photos: list[Photo]

    @property
    def items(self) -> int:
        return len(self.upserts) + len(self.deletes) + len(self.photos)


class ContactsSender:
    """The phone's side of one contacts sync with one car.

    Args:
        contacts: the phone's contacts (the source of truth); a repeated uid keeps the last.
        photos: photo bytes by hash; a contact's ``photo`` names one of them.
        snapshot: what was persisted from the last sync with this car, or None.
        batch_size: most upserts + deletes per batch (1..500).
        window: most batches in flight before an ack.

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
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_ITEMS or window < 1:
            raise LocalProtocolError(Reason.STATE, f"batch_size {batch_size}, window {window}")
        self._contacts = {c.uid: c for c in contacts}
        for uid in self._contacts:
            _check_uid(uid, LocalProtocolError)
        # One encoding per contact gives both its digest and its size for batching.
        measured = {uid: digest_and_size(c) for uid, c in self._contacts.items()}
        self._digests = {uid: d for uid, (d, _) in measured.items()}
        self._sizes = {uid: n for uid, (_, n) in measured.items()}
        self._photos = photos
        self._saved = snapshot or SyncSnapshot(EMPTY_ANCHOR, {}, set())
        self._acked = SyncSnapshot(
            self._saved.anchor, dict(self._saved.digests), set(self._saved.photos)
        )
        self._batch_size, self._window = batch_size, window
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
        serialise it before the next ``receive``.
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
        self._acked, self._head = base, base.anchor
        self._journal.append(JournalBase(SyncSnapshot(base.anchor, base.digests, base.photos)))
        self._plan = self._diff(base)
        self._progress = (0, sum(p.items for p in self._plan))
        self._state = "sending"
        return self._fill()

    def _diff(self, base: SyncSnapshot) -> list[_Planned]:
        """Split the differences from ``base`` into bounded batches, photos first."""
        bd = base.digests
        upserts = [c for uid, c in self._contacts.items() if bd.get(uid) != self._digests[uid]]
        deletes = [uid for uid in bd if uid not in self._contacts]
        added = sum(1 for c in upserts if c.uid not in bd)
        wanted = {c.photo for c in self._contacts.values() if c.photo} - base.photos
        photos = [self._photos[h] for h in sorted(wanted) if h in self._photos]
        photos = [p for p in photos if len(p.data) <= MAX_PHOTO_BYTES]
        self._summary = SyncSummary(
            added=added, changed=len(upserts) - added, deleted=len(deletes),
            unchanged=len(self._contacts) - len(upserts), photos_sent=len(photos),
        )  # fmt: skip
        return _chunk_photos(photos) + self._chunk_contacts(upserts, deletes)

    def _chunk_contacts(self, upserts: list[Contact], deletes: list[str]) -> list[_Planned]:
        """Cut upserts then deletes into batches of <= batch_size items and ~256 KiB."""
        plan: list[_Planned] = []
        cur, size = _Planned([], [], []), 0
        items: list[Contact | str] = [*upserts, *deletes]
        for item in items:
            n = self._sizes[item.uid] if isinstance(item, Contact) else len(item) + 3
            if cur.items and (cur.items >= self._batch_size or size + n > MAX_BATCH_BYTES):
                plan.append(cur)
                cur, size = _Planned([], [], []), 0
            (cur.upserts if isinstance(item, Contact) else cur.deletes).append(item)  # type: ignore[arg-type]
            size += n
        return [*plan, cur] if cur.items else plan

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
        entries = [(c.uid, self._digests[c.uid]) for c in p.upserts]
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


class ContactsReceiver:
    """The car's side of contacts sync for one phone's mirror.

    Args:
        state: the mirror as loaded from the car's store.
    """

    def __init__(self, state: MirrorState) -> None:
        self._head = state.anchor
        self._digests = dict(state.digests)
        self._photos = set(state.photos)
        self._pending: list[ApplyBatch] = []
        self._events: list[SyncEvent] = []
        self._started = False
        self._resync = False  # a batch was refused: ignore batches until ManifestRequest
        self._state_owed = False  # send ContactsState once pending acks are out

    @property
    def state(self) -> MirrorState:
        """The mirror including batches handed to the shell but not yet ``applied``."""
        return MirrorState(self._head, dict(self._digests), set(self._photos))

    def hello(self) -> list[Message]:
        """Open a sync: returns ``[ContactsState]`` for the phone."""
        self._started = True
        return [ContactsState(self._head, len(self._digests))]

    def receive(self, msg: Message) -> list[Message]:
        """Feed one message from the phone.

        Args:
            msg: a ``ManifestRequest``, ``ContactsBatch`` or ``ContactsDone``.

        Returns:
            Messages to send to the phone (a batch yields an ``ApplyBatch`` event instead).

        Raises:
            LocalProtocolError: ``hello`` was not called first.
            SyncError: the message is unexpected or the batch is invalid.
        """
        if not self._started:
            raise LocalProtocolError(Reason.STATE, "call hello() first")
        if isinstance(msg, ManifestRequest):
            self._resync = False
            return self._manifest()
        if isinstance(msg, ContactsBatch):
            return [] if self._resync else self._on_batch(msg)
        if isinstance(msg, ContactsDone) and not self._resync:
            return self._on_done(msg)
        raise SyncError(Reason.UNEXPECTED_MESSAGE, type(msg).__name__)

    def next_event(self) -> SyncEvent | None:
        """Pop the oldest pending ``ApplyBatch``/``ContactsSynced``, or None."""
        return self._events.pop(0) if self._events else None

    def applied(self, event: ApplyBatch) -> list[Message]:
        """Tell the machine the shell committed ``event``; returns ``[ContactsAck, ...]``.

        Raises:
            LocalProtocolError: ``event`` is not the oldest uncommitted batch.
        """
        if not self._pending or self._pending[0] is not event:
            raise LocalProtocolError(Reason.STATE, "applied() out of order")
        self._pending.pop(0)
        out: list[Message] = [ContactsAck(event.seq, event.new_anchor)]
        if self._state_owed and not self._pending:
            self._state_owed = False
            out.append(ContactsState(self._head, len(self._digests)))
        return out

    def _manifest(self) -> list[Message]:
        """Stream the mirror's digests and photo hashes in bounded chunks."""
        entries = list(self._digests.items())
        photos = sorted(self._photos)
        n = max(1, -(-max(len(entries), len(photos)) // MANIFEST_CHUNK))
        c = MANIFEST_CHUNK
        return [
            Manifest(entries[i * c : (i + 1) * c], photos[i * c : (i + 1) * c], i == n - 1)
            for i in range(n)
        ]

    def _on_batch(self, b: ContactsBatch) -> list[Message]:
        """Validate a batch; apply it, ack a re-delivery, or ask the phone to resync."""
        _check_batch(b)
        entries = [(c.uid, contact_digest(c)) for c in b.upserts]
        new = next_anchor(
            b.base_anchor, batch_digest(entries, b.deletes, [p.hash for p in b.photos])
        )
        if new == self._head:  # re-delivery: already applied, ack again, change nothing
            return [] if self._pending else [ContactsAck(b.seq, new)]
        if b.base_anchor != self._head:
            self._resync = True
            if self._pending:
                self._state_owed = True
                return []
            return [ContactsState(self._head, len(self._digests))]
        added = frozenset(uid for uid, _ in entries if uid not in self._digests)
        self._digests.update(entries)
        for uid in b.deletes:
            self._digests.pop(uid, None)
        self._photos.update(p.hash for p in b.photos)
        self._head = new
        event = ApplyBatch(b.seq, b.upserts, b.deletes, b.photos, new, entries, added)
        self._pending.append(event)
        self._events.append(event)
        return []

    def _on_done(self, msg: ContactsDone) -> list[Message]:
        """Check the phone's view of the end state matches the mirror."""
        if msg.anchor != self._head:
            raise SyncError(Reason.ANCHOR_MISMATCH, "ContactsDone names another anchor")
        if msg.total != len(self._digests):
            raise SyncError(Reason.BAD_BATCH, f"phone has {msg.total}, mirror {len(self._digests)}")
        self._events.append(ContactsSynced(self._head, msg.total))
        return []


def _check_uid(uid: str, exc: type[LocalProtocolError] | type[SyncError]) -> None:
    """Refuse an empty uid or one too long for the anchor encoding's u16 length."""
    if not uid or len(uid.encode()) > _MAX_UID_BYTES:
        raise exc(Reason.BAD_BATCH, f"uid of {len(uid)} characters")


def _check_batch(b: ContactsBatch) -> None:
    """Raise ``SyncError(bad-batch)`` unless the batch is within bounds and consistent."""
    if len(b.upserts) + len(b.deletes) > MAX_BATCH_ITEMS or len(b.photos) > MAX_BATCH_PHOTOS:
        raise SyncError(Reason.BAD_BATCH, "batch over the size limits")
    uids = [c.uid for c in b.upserts] + b.deletes
    for uid in uids:
        _check_uid(uid, SyncError)
    if len(set(uids)) != len(uids):
        raise SyncError(Reason.BAD_BATCH, "a uid appears twice in one batch")
    for p in b.photos:
        if len(p.data) > MAX_PHOTO_BYTES or photo_hash(p.data) != p.hash:
            raise SyncError(Reason.BAD_BATCH, "photo bytes do not match their hash")


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
