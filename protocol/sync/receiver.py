"""The car's side of contacts sync: apply batches on top of the mirror's anchor, ack them."""

from __future__ import annotations

from itertools import filterfalse

import msgspec

from protocol.contacts import raw_digests
from protocol.errors import LocalProtocolError, Reason, SyncError
from protocol.messages import Message
from protocol.sync.wire import (
    MANIFEST_CHUNK,
    ApplyBatch,
    ContactsAck,
    ContactsBatch,
    ContactsDone,
    ContactsState,
    ContactsSynced,
    Manifest,
    ManifestRequest,
    MirrorState,
    SyncEvent,
    _check_batch,
    batch_digest,
    next_anchor,
)

__all__ = ["ContactsReceiver"]

_enc = msgspec.msgpack.Encoder()


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

    def receive(self, msg: Message, raw: list[bytes] | None = None) -> list[Message]:
        """Feed one message from the phone.

        Args:
            msg: a ``ManifestRequest``, ``ContactsBatch`` or ``ContactsDone``.
            raw: a batch's upserts as the msgpack bytes they arrived as
                (``protocol.sync.raw_upserts``); without it each is encoded once here.

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
            return [] if self._resync else self._on_batch(msg, raw)
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

    def _on_batch(self, b: ContactsBatch, raw: list[bytes] | None) -> list[Message]:
        """Validate a batch; apply it, ack a re-delivery, or ask the phone to resync."""
        if raw is None or len(raw) != len(b.upserts):
            raw = list(map(_enc.encode, b.upserts))
        uids = _check_batch(b, raw)
        # The digest is over the contact's msgpack bytes (PROTOCOL.md section 7): the ones
        # the phone sent, which the store keeps as they are.
        entries = list(zip(uids, raw_digests(raw), strict=True))
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
        added = frozenset(filterfalse(self._digests.__contains__, uids))
        self._digests.update(entries)
        for uid in b.deletes:
            self._digests.pop(uid, None)
        self._photos.update(p.hash for p in b.photos)
        self._head = new
        event = ApplyBatch(b.seq, b.upserts, b.deletes, b.photos, new, entries, added, raw)
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
