"""Contacts sync benchmarks: each figure beside a baseline measured in the same run.

Run: ``.venv/bin/python bench/bench_protocol.py [--runs N]``

Figures (targets from the H3 brief):
- ``sync10k_ms``: 10k contacts, change set + encode + encrypt + decrypt + decode + apply in
  memory, the car taking each upsert's bytes as received as ``CarConnection`` does, median
  of N runs (target <= 80 ms, issue 13). Baseline: plain msgspec encode + decode of
  the same contact list.
- ``bytes_per_contact``: bytes on the wire phone -> car per contact, framing and AEAD
  included, no photos (target <= 50, issue 13). Baseline: plain msgspec size per contact.
- ``delta1_bytes_Nk``: bytes on the wire (both ways) for one changed contact among N
  (target: flat in N). Baseline: the changed contact alone, plain msgspec.

Encryption is the project's ``SecureSession`` (Noise KK, ChaCha20-Poly1305) when it
imports; otherwise ChaCha20-Poly1305 from ``cryptography`` with a counter nonce.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol.contacts import Contact, contact_digest
from protocol.messages import PROTOCOL_VERSION, AppCodec, Message, decode
from protocol.sync import (
    ApplyBatch,
    ContactsBatch,
    ContactsDone,
    ContactsReceiver,
    ContactsSender,
    MirrorState,
    SyncSnapshot,
    raw_upserts,
)


def make_contacts(n: int) -> list[Contact]:
    """Realistic contacts: the sample generator's vCards through the real importer.

    Synthetic, repetitive contacts would flatter the zstd-compressed wire size; these vary
    names (non-ASCII included), 1-3 phones, emails, orgs, addresses and notes.
    """
    from phone_bridge.sample_data import generate_vcards
    from protocol.vcard import import_vcards

    return list(import_vcards(generate_vcards(n, seed=11)).contacts)


class Cipher:
    """One direction's sealer/opener pair: SecureSession if available, else raw AEAD."""

    def __init__(self) -> None:
        try:
            self.encrypt, self.decrypt, self.name = _secure_session_pair()
        except ImportError:
            self.encrypt, self.decrypt, self.name = _raw_aead_pair()


def _secure_session_pair() -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes], str]:
    """Handshake a phone/car ``SecureSession`` pair and return phone.encrypt, car.decrypt."""
    from protocol.identity import Identity
    from protocol.session import SecureSession

    phone_id, car_id = Identity.generate(), Identity.generate()
    phone = SecureSession(phone_id, car_id.public_key, initiator=True, prologue=b"bench")
    car = SecureSession(car_id, phone_id.public_key, initiator=False, prologue=b"bench")
    car.start()
    (reply,) = car.receive_handshake(phone.start()[0])
    phone.receive_handshake(reply)
    return phone.encrypt, car.decrypt, "SecureSession (Noise KK)"


def _raw_aead_pair() -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes], str]:
    """ChaCha20-Poly1305 with an 8-byte counter nonce, as the session will do."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    aead = ChaCha20Poly1305(os.urandom(32))
    counter = [0]

    def seal(p: bytes) -> bytes:
        counter[0] += 1
        c = counter[0].to_bytes(8, "big")
        return c + aead.encrypt(b"\0\0\0\0" + c, p, c)

    def open_(p: bytes) -> bytes:
        return aead.decrypt(b"\0\0\0\0" + p[:8], p[8:], p[:8])

    return seal, open_, "ChaCha20Poly1305 (raw)"


def run_sync(
    contacts: list[Contact], snapshot: SyncSnapshot | None, mirror: MirrorState
) -> tuple[int, int, dict[str, Contact]]:
    """Sync over encrypted frames in memory; return (bytes to car, bytes to phone, db)."""
    up, down = Cipher(), Cipher()
    # Each side's codec for the session, as the connections make them (PROTOCOL.md §3).
    phone, car = AppCodec(PROTOCOL_VERSION), AppCodec(PROTOCOL_VERSION)
    db: dict[str, Contact] = {}
    sender = ContactsSender(contacts, {}, snapshot)
    receiver = ContactsReceiver(mirror)
    to_car, to_phone = 0, 0
    pending = receiver.hello()
    while pending:
        frames = [down.encrypt(car.encode(m)) for m in pending]
        to_phone += sum(len(f) + 4 for f in frames)  # + 4-byte frame header
        out: list[Message] = []
        for f in frames:
            out += sender.receive(phone.decode(down.decrypt(f)))
        frames = [up.encrypt(phone.encode(m, end=isinstance(m, ContactsDone))) for m in out]
        to_car += sum(len(f) + 4 for f in frames)
        pending = []
        for f in frames:
            # As protocol.connection.CarConnection does: the upserts' bytes as received too.
            body = car.body(up.decrypt(f))
            msg = decode(body)
            raw = raw_upserts(body) if isinstance(msg, ContactsBatch) else None
            pending += receiver.receive(msg, raw)
            while (ev := receiver.next_event()) is not None:
                if isinstance(ev, ApplyBatch):
                    db.update((c.uid, c) for c in ev.upserts)
                    pending += receiver.applied(ev)
    assert sender.done
    return to_car, to_phone, db


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn`` in ms."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def row(name: str, value: float, baseline: float, target: str) -> None:
    print(f"{name:<22}{value:>12.1f}{baseline:>12.1f}{value / baseline:>9.2f}   {target}")


def synced_state(contacts: list[Contact]) -> tuple[SyncSnapshot, MirrorState]:
    """A phone snapshot and a car mirror that agree on all of ``contacts``."""
    digests = {c.uid: contact_digest(c) for c in contacts}
    anchor = bytes(range(1, 17))
    return SyncSnapshot(anchor, dict(digests), set()), MirrorState(anchor, digests, set())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    runs = ap.parse_args().runs
    contacts = make_contacts(10_000)
    print(f"cipher: {Cipher().name}; python {sys.version.split()[0]}; runs {runs}")
    print(f"{'figure':<22}{'value':>12}{'baseline':>12}{'ratio':>9}   target")

    enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(list[Contact])
    base_ms = timed(lambda: dec.decode(enc.encode(contacts)), runs)
    sync_ms = timed(lambda: run_sync(contacts, None, MirrorState()), runs)
    row("sync10k_ms", sync_ms, base_ms, "<= 80 ms")

    to_car, _, db = run_sync(contacts, None, MirrorState())
    assert db == {c.uid: c for c in contacts}
    plain = len(enc.encode(contacts)) / len(contacts)
    row("bytes_per_contact", to_car / len(contacts), plain, "<= 50")

    for n in (1_000, 10_000, 100_000):
        many = make_contacts(n)
        snapshot, mirror = synced_state(many)
        changed = msgspec.structs.replace(many[n // 2], fn="Renamed Person")
        many[n // 2] = changed
        up, down, db = run_sync(many, snapshot, mirror)
        assert list(db.values()) == [changed]
        row(f"delta1_bytes_{n // 1000}k", up + down, len(enc.encode(changed)), "flat in N")


if __name__ == "__main__":
    main()
