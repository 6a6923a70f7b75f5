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

from protocol.sync.guard import DeletesRefused, refuses_deletes
from protocol.sync.journal import (
    JournalAcked,
    JournalBase,
    JournalSent,
    SnapshotEdit,
    apply_edits,
    replay_journal,
)
from protocol.sync.receiver import ContactsReceiver
from protocol.sync.sender import ContactsSender, DigestCache
from protocol.sync.wire import (
    ANCHOR_LABEL,
    ANCHOR_SIZE,
    EMPTY_ANCHOR,
    MANIFEST_CHUNK,
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    MAX_BATCH_PHOTOS,
    MAX_PHOTO_BYTES,
    ApplyBatch,
    ContactsAck,
    ContactsBatch,
    ContactsDone,
    ContactsState,
    ContactsSynced,
    InFlight,
    Manifest,
    ManifestRequest,
    MirrorState,
    SyncCompleted,
    SyncEvent,
    SyncProgress,
    SyncSnapshot,
    SyncSummary,
    batch_digest,
    next_anchor,
    raw_upserts,
)

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
    "ContactsReceiver",
    "ContactsSender",
    "ContactsState",
    "ContactsSynced",
    "DeletesRefused",
    "DigestCache",
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
    "apply_edits",
    "batch_digest",
    "next_anchor",
    "raw_upserts",
    "refuses_deletes",
    "replay_journal",
]
