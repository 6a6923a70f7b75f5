"""Contacts sync: a phone sender and a car receiver joined in memory, with cuts anywhere."""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.contacts import Contact, Phone, Photo, contact_digest, photo_hash
from protocol.errors import LocalProtocolError, MessageError, Reason, SyncError
from protocol.messages import Message, decode, encode
from protocol.sync import (
    EMPTY_ANCHOR,
    ApplyBatch,
    ContactsAck,
    ContactsBatch,
    ContactsDone,
    ContactsReceiver,
    ContactsSender,
    ContactsState,
    ContactsSynced,
    Manifest,
    ManifestRequest,
    MirrorState,
    SnapshotEdit,
    SyncCompleted,
    SyncProgress,
    SyncSnapshot,
    SyncSummary,
    batch_digest,
    next_anchor,
    replay_journal,
)


def make_contacts(n: int, *, start: int = 0, photo: bytes = b"") -> list[Contact]:
    return [
        Contact(
            uid=f"uid-{i:06d}",
            fn=f"Person {i}",
            n=(f"Family{i}", "Given"),
            phones=(Phone(f"+44 7700 {i:06d}", "cell"),),
            photo=photo,
        )
        for i in range(start, start + n)
    ]


def make_photo(seed: bytes) -> Photo:
    data = b"\xff\xd8" + seed * 100
    return Photo(hash=photo_hash(data), mime="image/jpeg", data=data)


@dataclass
class CarDb:
    """The car's store: a dict mirror committed one ApplyBatch at a time."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    photos: dict[bytes, Photo] = field(default_factory=dict)
    anchor: bytes = EMPTY_ANCHOR
    applied: list[ApplyBatch] = field(default_factory=list)

    def state(self) -> MirrorState:
        digests = {u: contact_digest(c) for u, c in self.contacts.items()}
        return MirrorState(self.anchor, digests, set(self.photos))

    def commit(self, ev: ApplyBatch) -> None:
        for c in ev.upserts:
            self.contacts[c.uid] = c
        for uid in ev.deletes:
            self.contacts.pop(uid, None)
        for p in ev.photos:
            self.photos[p.hash] = p
        self.anchor = ev.new_anchor
        self.applied.append(ev)


@dataclass
class PhoneStore:
    """The phone's persisted snapshot as the shell keeps it: an encoded journal of edits."""

    journal: list[bytes] = field(default_factory=list)

    def load(self) -> SyncSnapshot | None:
        if not self.journal:
            return None
        return replay_journal(None, [_edit_dec.decode(e) for e in self.journal])

    def record(self, edits: list[SnapshotEdit], expected: SyncSnapshot) -> None:
        self.journal += [msgspec.msgpack.encode(e) for e in edits]
        got = self.load()
        # The journal must rebuild exactly what the (copying) snapshot property says.
        assert got is not None or not expected.digests
        if got is not None:
            assert (got.anchor, got.digests, got.photos) == (
                expected.anchor,
                expected.digests,
                expected.photos,
            )
            assert [i.anchor for i in got.inflight] == [i.anchor for i in expected.inflight]


_edit_dec = msgspec.msgpack.Decoder(SnapshotEdit)


@dataclass
class Run:
    completed: bool
    frames: int = 0
    bytes_to_car: int = 0
    bytes_to_phone: int = 0
    sent: list[Message] = field(default_factory=list)
    summary: SyncSummary | None = None
    car_events: list[object] = field(default_factory=list)


def run_session(
    contacts: list[Contact],
    photos: dict[bytes, Photo],
    db: CarDb,
    store: PhoneStore,
    *,
    cut_after: int | None = None,
    drop_batch: int | None = None,
    window: int = 4,
    batch_size: int = 500,
) -> Run:
    """One connection: frames alternate direction one at a time until quiet or the cut."""
    sender = ContactsSender(contacts, photos, store.load(), batch_size=batch_size, window=window)
    receiver = ContactsReceiver(db.state())
    to_phone = deque(encode(m) for m in receiver.hello())
    to_car: deque[bytes] = deque()
    run = Run(completed=False)
    while to_phone or to_car:
        for queue in (to_car, to_phone):
            if not queue:
                continue
            if run.frames == cut_after:
                return run
            frame = queue.popleft()
            run.frames += 1
            if queue is to_car:
                run.bytes_to_car += len(frame)
                msg = decode(frame)
                run.sent.append(msg)
                batches = sum(isinstance(m, ContactsBatch) for m in run.sent)
                if isinstance(msg, ContactsBatch) and batches == drop_batch:
                    continue  # lost in transit on a link that stays up
                out = receiver.receive(msg)
                while (ev := receiver.next_event()) is not None:
                    run.car_events.append(ev)
                    if isinstance(ev, ApplyBatch):
                        db.commit(ev)
                        out += receiver.applied(ev)
                to_phone.extend(encode(m) for m in out)
            else:
                run.bytes_to_phone += len(frame)
                out = sender.receive(decode(frame))
                store.record(sender.journal(), sender.snapshot)  # persist before sending
                while (pev := sender.next_event()) is not None:
                    if isinstance(pev, SyncCompleted):
                        run.summary = pev.summary
                to_car.extend(encode(m) for m in out)
    run.completed = sender.done
    return run


def sync_until_done(contacts, photos, db, store, **kw) -> Run:  # type: ignore[no-untyped-def]
    run = run_session(contacts, photos, db, store, **kw)
    assert run.completed
    return run


def upserts_sent(run: Run) -> int:
    return sum(len(m.upserts) for m in run.sent if isinstance(m, ContactsBatch))


# --- the happy paths -----------------------------------------------------------------


def test_full_sync_mirrors_the_phone() -> None:
    contacts, db, store = make_contacts(1200), CarDb(), PhoneStore()
    run = sync_until_done(contacts, {}, db, store)
    assert db.contacts == {c.uid: c for c in contacts}
    assert run.summary == SyncSummary(added=1200, batches=3)
    assert [len(e.added) for e in db.applied] == [500, 500, 200]
    assert isinstance(run.car_events[-1], ContactsSynced)
    assert store.load().anchor == db.anchor  # type: ignore[union-attr]


def test_progress_events_count_up_to_total() -> None:
    sender = ContactsSender(make_contacts(30), {}, None, batch_size=10, window=1)
    receiver = ContactsReceiver(MirrorState())
    (batch,) = sender.receive(receiver.hello()[0])
    progress = []
    while not sender.done:
        receiver.receive(batch)
        ev = receiver.next_event()
        assert isinstance(ev, ApplyBatch)
        (ack,) = receiver.applied(ev)
        (batch,) = sender.receive(ack)
        progress.append(sender.next_event())
    assert progress == [SyncProgress(10, 30), SyncProgress(20, 30), SyncProgress(30, 30)]
    assert isinstance(batch, ContactsDone) and batch.total == 30


def test_delta_of_one_costs_a_few_hundred_bytes() -> None:
    contacts, db, store = make_contacts(1000), CarDb(), PhoneStore()
    full = sync_until_done(contacts, {}, db, store)
    contacts[500] = msgspec.structs.replace(contacts[500], fn="Renamed")
    delta = sync_until_done(contacts, {}, db, store)
    assert delta.summary == SyncSummary(changed=1, unchanged=999, batches=1)
    assert delta.bytes_to_car + delta.bytes_to_phone < 300
    assert full.bytes_to_car > 50_000
    assert db.contacts["uid-000500"].fn == "Renamed"


def test_unchanged_sync_sends_no_batch() -> None:
    contacts, db, store = make_contacts(100), CarDb(), PhoneStore()
    sync_until_done(contacts, {}, db, store)
    again = sync_until_done(contacts, {}, db, store)
    assert [type(m) for m in again.sent] == [ContactsDone]
    assert again.summary == SyncSummary(unchanged=100)


def test_deletes_reach_the_mirror() -> None:
    contacts, db, store = make_contacts(50), CarDb(), PhoneStore()
    sync_until_done(contacts, {}, db, store)
    run = sync_until_done(contacts[10:], {}, db, store)
    assert run.summary == SyncSummary(deleted=10, unchanged=40, batches=1)
    assert set(db.contacts) == {c.uid for c in contacts[10:]}


def test_shared_photo_sent_once_and_never_again() -> None:
    photo = make_photo(b"a")
    contacts = make_contacts(2, photo=photo.hash)
    db, store = CarDb(), PhoneStore()
    first = sync_until_done(contacts, {photo.hash: photo}, db, store)
    sent = [p for m in first.sent if isinstance(m, ContactsBatch) for p in m.photos]
    assert sent == [photo] and db.photos == {photo.hash: photo}
    assert first.summary is not None and first.summary.photos_sent == 1
    contacts.append(make_contacts(1, start=7, photo=photo.hash)[0])  # a third user of it
    second = sync_until_done(contacts, {photo.hash: photo}, db, store)
    assert not [p for m in second.sent if isinstance(m, ContactsBatch) for p in m.photos]
    assert second.bytes_to_car < 200


# --- resume after a cut at every frame boundary -----------------------------------------


def resume_scenario() -> tuple[list[Contact], dict[bytes, Photo], CarDb, PhoneStore]:
    """A car already holding 300 contacts; the phone edits 20, deletes 30, adds 700 + photos."""
    photos = {p.hash: p for p in (make_photo(b"x"), make_photo(b"y"))}
    old = make_contacts(300)
    db, store = CarDb(), PhoneStore()
    sync_until_done(old, {}, db, store)
    db.applied.clear()
    hashes = sorted(photos)
    new = [msgspec.structs.replace(c, note="edited") for c in old[:20]] + old[50:]
    new += make_contacts(700, start=1000, photo=hashes[0]) + make_contacts(
        1, start=2000, photo=hashes[1]
    )
    return new, photos, db, store


def _frames_uninterrupted() -> int:
    contacts, photos, db, store = resume_scenario()
    return sync_until_done(contacts, photos, db, store, batch_size=100).frames


@pytest.mark.parametrize("cut", range(_frames_uninterrupted()))
def test_resume_after_cut_at_every_frame(cut: int) -> None:
    contacts, photos, db, store = resume_scenario()
    first = run_session(contacts, photos, db, store, cut_after=cut, batch_size=100)
    assert not first.completed
    second = sync_until_done(contacts, photos, db, store, batch_size=100)
    assert db.contacts == {c.uid: c for c in contacts}
    assert set(db.photos) == set(photos)
    # Nothing applied twice: each changed contact entered the mirror exactly once.
    applied_uids = [c.uid for ev in db.applied for c in ev.upserts]
    assert len(applied_uids) == len(set(applied_uids)) == 721
    assert not any(isinstance(m, ManifestRequest) for m in first.sent + second.sent)


def test_redelivered_batch_is_acked_without_changes() -> None:
    sender = ContactsSender(make_contacts(5), {}, None)
    receiver = ContactsReceiver(MirrorState())
    (batch,) = sender.receive(receiver.hello()[0])
    assert isinstance(batch, ContactsBatch)
    assert receiver.receive(batch) == []
    ev = receiver.next_event()
    assert isinstance(ev, ApplyBatch)
    (ack,) = receiver.applied(ev)
    assert receiver.receive(batch) == [ack]  # the same batch again
    assert receiver.next_event() is None
    assert receiver.state.anchor == ack.anchor == ev.new_anchor


# --- fallbacks to the manifest ------------------------------------------------------------


def test_unknown_anchor_uses_manifest_and_sends_only_differences() -> None:
    contacts, db, store = make_contacts(3000), CarDb(), PhoneStore()
    sync_until_done(contacts, {}, db, store)
    contacts[0] = msgspec.structs.replace(contacts[0], org="ACME")
    lost = PhoneStore()  # the phone lost its snapshot (reinstall)
    run = sync_until_done(contacts, {}, db, lost)
    assert sum(isinstance(m, Manifest) for m in run.sent) == 0  # manifests go car -> phone
    assert any(isinstance(m, ManifestRequest) for m in run.sent)
    assert upserts_sent(run) == 1 and run.summary == SyncSummary(
        changed=1, unchanged=2999, batches=1
    )
    assert run.bytes_to_phone > 3000 * 16  # the manifest came back, in chunks
    assert db.contacts == {c.uid: c for c in contacts}


def test_car_restored_from_backup_uses_manifest() -> None:
    contacts, db, store = make_contacts(100), CarDb(), PhoneStore()
    sync_until_done(contacts, {}, db, store)
    db.anchor = bytes(range(16))  # car state the phone never saw
    db.contacts.pop("uid-000001")
    run = sync_until_done(contacts, {}, db, store)
    assert upserts_sent(run) == 1 and db.contacts == {c.uid: c for c in contacts}


def test_batch_lost_mid_stream_falls_back_to_manifest() -> None:
    contacts, db, store = make_contacts(1000), CarDb(), PhoneStore()
    run = run_session(contacts, {}, db, store, drop_batch=2, batch_size=100)
    assert run.completed
    assert any(isinstance(m, ManifestRequest) for m in run.sent)
    assert db.contacts == {c.uid: c for c in contacts}


def test_receiver_refuses_wrong_base_then_waits_for_manifest_request() -> None:
    receiver = ContactsReceiver(MirrorState())
    receiver.hello()
    bad = ContactsBatch(1, bytes(range(16)), make_contacts(1), [], [], True)
    assert receiver.receive(bad) == [ContactsState(EMPTY_ANCHOR, 0)]
    assert receiver.receive(bad) == []  # ignored while resyncing
    (manifest,) = receiver.receive(ManifestRequest())
    assert manifest == Manifest([], [], True)
    assert receiver.next_event() is None


def test_manifest_is_chunked() -> None:
    digests = {c.uid: contact_digest(c) for c in make_contacts(4500)}
    receiver = ContactsReceiver(MirrorState(bytes(range(16)), digests, set()))
    receiver.hello()
    chunks = receiver.receive(ManifestRequest())
    assert [len(m.entries) for m in chunks] == [2000, 2000, 500]  # type: ignore[attr-defined]
    assert [m.done for m in chunks] == [False, False, True]  # type: ignore[attr-defined]
    assert all(len(encode(m)) < 100_000 for m in chunks)


# --- refusals -----------------------------------------------------------------------------


def _started_receiver() -> ContactsReceiver:
    r = ContactsReceiver(MirrorState())
    r.hello()
    return r


@pytest.mark.parametrize(
    "batch",
    [
        ContactsBatch(1, EMPTY_ANCHOR, make_contacts(501), [], [], True),
        ContactsBatch(1, EMPTY_ANCHOR, make_contacts(1), ["uid-000000"], [], True),
        ContactsBatch(1, EMPTY_ANCHOR, [Contact(uid="", fn="x")], [], [], True),
        ContactsBatch(1, EMPTY_ANCHOR, [], [], [Photo(b"\0" * 32, "image/png", b"x")], True),
    ],
    ids=["too-many", "upsert-and-delete", "empty-uid", "photo-hash-mismatch"],
)
def test_bad_batches_are_sync_errors(batch: ContactsBatch) -> None:
    with pytest.raises(SyncError) as info:
        _started_receiver().receive(batch)
    assert info.value.reason is Reason.BAD_BATCH


def test_the_uid_limit_is_in_bytes_and_the_refusal_says_bytes() -> None:
    # 600 characters, 1,200 bytes in UTF-8: over the 1,024-byte bound of PROTOCOL.md 7.
    for batch in (
        ContactsBatch(1, EMPTY_ANCHOR, [], ["é" * 600], [], True),
        ContactsBatch(1, EMPTY_ANCHOR, [Contact(uid="é" * 600, fn="x")], [], [], True),
    ):
        with pytest.raises(SyncError) as info:
            _started_receiver().receive(batch)
        assert info.value.reason is Reason.BAD_BATCH
        assert "1200 bytes" in info.value.detail and "1 to 1024" in info.value.detail
    # 1,024 bytes (512 characters) is still a uid: the batch goes to be committed.
    receiver = _started_receiver()
    receiver.receive(ContactsBatch(1, EMPTY_ANCHOR, [], ["é" * 512], [], True))
    assert isinstance(receiver.next_event(), ApplyBatch)


def test_receive_before_hello_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        ContactsReceiver(MirrorState()).receive(ManifestRequest())


def test_applied_out_of_order_is_a_local_error() -> None:
    fake = ApplyBatch(1, [], [], [], EMPTY_ANCHOR, [], frozenset())
    with pytest.raises(LocalProtocolError):
        _started_receiver().applied(fake)


def test_done_with_wrong_total_or_anchor_is_refused() -> None:
    with pytest.raises(SyncError) as info:
        _started_receiver().receive(ContactsDone(EMPTY_ANCHOR, 3))
    assert info.value.reason is Reason.BAD_BATCH
    with pytest.raises(SyncError) as info:
        _started_receiver().receive(ContactsDone(bytes(range(16)), 0))
    assert info.value.reason is Reason.ANCHOR_MISMATCH


def test_ack_with_wrong_seq_or_anchor_is_refused() -> None:
    sender = ContactsSender(make_contacts(3), {}, None)
    (batch,) = sender.receive(ContactsState(EMPTY_ANCHOR, 0))
    assert isinstance(batch, ContactsBatch)
    with pytest.raises(SyncError) as info:
        sender.receive(ContactsAck(batch.seq + 1, EMPTY_ANCHOR))
    assert info.value.reason is Reason.BAD_BATCH
    sender = ContactsSender(make_contacts(3), {}, None)
    sender.receive(ContactsState(EMPTY_ANCHOR, 0))
    with pytest.raises(SyncError) as info:
        sender.receive(ContactsAck(batch.seq, bytes(16)))
    assert info.value.reason is Reason.ANCHOR_MISMATCH


def _sender_in(state: str) -> ContactsSender:
    s = ContactsSender(make_contacts(3), {}, None)
    if state == "wait-manifest":
        s.receive(ContactsState(bytes(range(16)), 3))
    elif state == "sending":
        s.receive(ContactsState(EMPTY_ANCHOR, 0))
    elif state == "done":
        s = ContactsSender([], {}, None)
        s.receive(ContactsState(EMPTY_ANCHOR, 0))
    return s


ALL_MESSAGES: list[Message] = [
    ContactsState(EMPTY_ANCHOR, 0),
    ManifestRequest(),
    Manifest([], [], True),
    ContactsBatch(1, EMPTY_ANCHOR, [], [], [], True),
    ContactsAck(1, bytes(16)),
    ContactsDone(EMPTY_ANCHOR, 0),
]


@pytest.mark.parametrize("state", ["wait-state", "wait-manifest", "sending", "done"])
@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_sender_state_meets_every_message(state: str, msg: Message) -> None:
    sender = _sender_in(state)
    allowed = {
        "wait-state": ContactsState,
        "wait-manifest": Manifest,
        "sending": (ContactsState, ContactsAck),
    }.get(state, ())
    if isinstance(msg, allowed):  # type: ignore[arg-type]
        try:
            assert all(isinstance(m, Message) for m in sender.receive(msg))
        except SyncError as exc:  # a valid type with wrong content (ack for an unknown anchor)
            assert exc.reason in (Reason.ANCHOR_MISMATCH, Reason.BAD_BATCH)
    else:
        with pytest.raises(SyncError) as info:
            sender.receive(msg)
        assert info.value.reason is Reason.UNEXPECTED_MESSAGE


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_receiver_meets_every_message(msg: Message) -> None:
    receiver = _started_receiver()
    if isinstance(msg, ManifestRequest | ContactsBatch | ContactsDone):
        assert all(isinstance(m, Message) for m in receiver.receive(msg))
    else:
        with pytest.raises(SyncError):
            receiver.receive(msg)


def test_short_anchor_on_the_wire_is_malformed() -> None:
    raw = bytearray(encode(ContactsState(EMPTY_ANCHOR, 0)))
    raw[2] = 15  # bin8 length 16 -> 15
    with pytest.raises(MessageError):
        decode(bytes(raw[:-1]))


@given(st.binary(max_size=120))
def test_garbage_after_a_sync_tag_is_a_message_error(tail: bytes) -> None:
    for tag in range(30, 36):
        try:
            decode(bytes([0x97, tag]) + tail)
        except MessageError:
            pass


def test_anchor_chain_vector() -> None:
    """The PROTOCOL.md vector, rebuilt from the spec's byte layout."""
    digest = batch_digest([("a", bytes(16))], ["b"], [bytes(32)])
    layout = b"U\x00\x01a" + bytes(16) + b"D\x00\x01b" + b"P" + bytes(32)
    assert digest == hashlib.sha256(layout).digest()
    assert digest.hex() == "9ca10051a11838367bd676cac5f1a67d25437317ad825954fbb65999f7c0da83"
    anchor = next_anchor(EMPTY_ANCHOR, digest)
    assert anchor == hashlib.sha256(b"carhub-contacts-anchor-v1" + bytes(16) + digest).digest()[:16]
    assert anchor.hex() == "578f3cd4fbd87a13496b23c0259190ea"


# --- convergence under random edits and cuts --------------------------------------------

names = st.integers(min_value=0, max_value=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.sets(names, max_size=40),
    second=st.dictionaries(names, st.sampled_from(["", "x", "y"]), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=3),
    lose_snapshot=st.booleans(),
)
def test_random_edits_and_cuts_converge(
    first: set[int], second: dict[int, str], cuts: list[int], lose_snapshot: bool
) -> None:
    photo = make_photo(b"p")
    photos = {photo.hash: photo}

    def build(spec: dict[int, str]) -> list[Contact]:
        return [
            Contact(uid=f"u{i}", fn=f"N{i}", note=note, photo=photo.hash if i % 7 == 0 else b"")
            for i, note in sorted(spec.items())
        ]

    db, store = CarDb(), PhoneStore()
    for spec in ({i: "" for i in first}, second):
        contacts = build(spec)
        for cut in cuts:
            run_session(contacts, photos, db, store, cut_after=cut, batch_size=7, window=3)
        if lose_snapshot:
            store = PhoneStore()
        sync_until_done(contacts, photos, db, store, batch_size=7, window=3)
        assert db.contacts == {c.uid: c for c in contacts}


def test_digest_cache_remeasures_only_changed_contacts() -> None:
    from protocol.sync import DigestCache

    contacts = make_contacts(50)
    cache = DigestCache()
    first, _ = cache.measure({c.uid: c for c in contacts})
    changed = msgspec.structs.replace(contacts[7], fn="Renamed")
    contacts[7] = changed
    again, sizes = cache.measure({c.uid: c for c in contacts})
    fresh, fresh_sizes = DigestCache().measure({c.uid: c for c in contacts})
    assert again == fresh and sizes == fresh_sizes  # the cache never changes the answer
    assert again[changed.uid] != first[changed.uid]
    assert sum(again[u] != first[u] for u in first) == 1
