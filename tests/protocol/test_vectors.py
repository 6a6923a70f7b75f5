"""The hex test vectors in PROTOCOL.md section 10, checked two ways.

1. The reference machines, driven with the fixed keys and nonces, must produce every
   message, code and key in the document.
2. The derivations are recomputed here straight from the primitives (hashlib, hmac,
   cryptography) following the text of sections 4-6, so the document, not the module's own
   helpers, is what the implementation is held to.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import msgspec
import pytest
import zstandard
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.contacts import Contact, check_bounds, contact_digest
from protocol.identity import Identity, PairingUri
from protocol.messages import AppCodec, Message, Ping, decode, decode_app, encode, encode_app
from protocol.pairing import CarPairing, PairConfirm, Paired, PhonePairing
from protocol.session import SecureSession
from protocol.sync import (
    EMPTY_ANCHOR,
    ApplyBatch,
    ContactsAck,
    ContactsBatch,
    ContactsDone,
    ContactsReceiver,
    ContactsState,
    MirrorState,
    batch_digest,
    next_anchor,
    raw_upserts,
)

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "PROTOCOL.md"
_LINE = re.compile(r"^([a-z0-9_.]+)\s+=\s+(\"[^\"]*\"|[0-9a-f]+)\s*$")


def _vectors() -> dict[str, bytes | str]:
    text = SPEC.read_text(encoding="utf-8")
    region = text[text.index("<!-- vectors:begin -->") : text.index("<!-- vectors:end -->")]
    out: dict[str, bytes | str] = {}
    for line in region.splitlines():
        if m := _LINE.match(line):
            key, value = m.groups()
            assert key not in out, f"duplicate vector {key}"
            out[key] = value[1:-1] if value.startswith('"') else bytes.fromhex(value)
    return out


V = _vectors()


def b(key: str) -> bytes:
    value = V[key]
    assert isinstance(value, bytes), key
    return value


def s(key: str) -> str:
    value = V[key]
    assert isinstance(value, str), key
    return value


def test_the_document_has_the_vectors() -> None:
    for key in ("car.private", "pair.code", "pair.mac_car", "oob.mac_phone", "session.msg1",
                "session.msg2", "session.frame_phone0", "session.frame_car1", "contact.encoded"):
        assert key in V


def test_identity_vectors() -> None:
    for who in ("car", "phone"):
        ident = Identity.from_private_bytes(b(f"{who}.private"))
        assert ident.public_key == b(f"{who}.public")
        assert ident.device_id == s(f"{who}.device_id")
        pk = b(f"{who}.public")
        assert hashlib.sha256(b"carhub-id" + pk).digest()[:8].hex() == s(f"{who}.device_id")
    car = Identity.from_private_bytes(b("car.private"))
    assert car.fingerprint == s("car.fingerprint")
    digest = hashlib.sha256(b("car.public")).digest()
    assert digest == b("car.fp_hash")
    groups = [int.from_bytes(digest[i : i + 4], "big") % 10000 for i in range(0, 32, 4)]
    assert " ".join(f"{g:04d}" for g in groups) == s("car.fingerprint")


def _run_pairing(prefix: str) -> tuple[CarPairing, PhonePairing, dict[str, Message]]:
    car = Identity.from_private_bytes(b("car.private"))
    phone = Identity.from_private_bytes(b("phone.private"))
    uri = PairingUri.parse(s("oob.uri")) if prefix == "oob" else None
    cp = CarPairing(car, transcript=b("pair.transcript"), now=0.0,
                    oob_secret=uri.secret if uri else None, rng=lambda n: b("pair.nc"))
    pp = PhonePairing(phone, s("pair.name"), transcript=b("pair.transcript"), now=0.0, oob=uri,
                      rng=lambda n: b("pair.np"))
    sent: dict[str, Message] = {}
    (sent["request"],) = pp.start()
    (sent["commit"],) = cp.receive(sent["request"], 1.0)
    (sent["nonce"],) = pp.receive(sent["commit"], 1.0)
    reveal = cp.receive(sent["nonce"], 1.0)
    sent["reveal"] = reveal[0]
    if prefix == "oob":
        sent["confirm_car"] = reveal[1]
        (sent["confirm_phone"],) = pp.receive(sent["reveal"], 1.0)
    else:
        assert pp.receive(sent["reveal"], 1.0) == []
        (sent["confirm_car"],) = cp.confirm(True, 2.0)
        (sent["confirm_phone"],) = pp.confirm(True, 2.0)
    assert pp.receive(sent["confirm_car"], 2.0) == []
    (sent["result"],) = cp.receive(sent["confirm_phone"], 2.0)
    assert pp.receive(sent["result"], 2.0) == []
    return cp, pp, sent


@pytest.mark.parametrize("prefix", ["pair", "oob"])
def test_pairing_machines_reproduce_every_message(prefix: str) -> None:
    cp, pp, sent = _run_pairing(prefix)
    for name, msg in sent.items():
        assert encode(msg) == b(f"{prefix}.msg.{name}"), name
        assert decode(b(f"{prefix}.msg.{name}")) == msg
    if prefix == "pair":
        assert cp.code == pp.code == s("pair.code")
    else:
        assert cp.code is None and pp.code is None
    events = [cp.next_event() for _ in range(3)]
    assert any(isinstance(e, Paired) for e in events)
    assert isinstance(sent["confirm_car"], PairConfirm)
    assert sent["confirm_car"].mac == b(f"{prefix}.mac_car")


@pytest.mark.parametrize("prefix", ["pair", "oob"])
def test_pairing_derivations_follow_the_text(prefix: str) -> None:
    pc, pp, nc, np_ = b("car.public"), b("phone.public"), b("pair.nc"), b("pair.np")
    car = Identity.from_private_bytes(b("car.private"))
    phone = Identity.from_private_bytes(b("phone.private"))
    dh = car.dh(pp)
    assert dh == phone.dh(pc) == b(f"{prefix}.dh")
    c = hmac.digest(nc, b"carhub/pair/v1/commit" + pc + pp, "sha256")
    assert c == b(f"{prefix}.commitment")
    method = b"\x01" if prefix == "pair" else b"\x02"
    name_hash = hashlib.sha256(s("pair.name").encode()).digest()
    pt = hashlib.sha256(b"carhub/pair/v1/transcript" + hashlib.sha256(b("pair.transcript"))
                        .digest() + method + name_hash + pp + pc + c + np_ + nc).digest()
    assert pt == b(f"{prefix}.pt")
    if prefix == "pair":
        code = int.from_bytes(hashlib.sha256(b"carhub/pair/v1/code" + pt).digest()[:4], "big")
        assert f"{code % 1_000_000:06d}" == s("pair.code")
    secret = b("oob.secret") if prefix == "oob" else b""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=np_ + nc,
               info=b"carhub/pair/v1/confirm").derive(dh + secret)
    assert key == b(f"{prefix}.confirm_key")
    for role in ("car", "phone"):
        mac = hmac.digest(key, b"carhub/pair/v1/mac-" + role.encode() + pt, "sha256")
        assert mac == b(f"{prefix}.mac_{role}")


def test_oob_uri_vector() -> None:
    uri = PairingUri.parse(s("oob.uri"))
    assert uri.secret == b("oob.secret")
    assert uri.fingerprint_hash == b("car.fp_hash")
    assert uri.device_id == s("car.device_id")
    assert uri.to_uri() == s("oob.uri")


def _sessions() -> tuple[SecureSession, SecureSession]:
    car = Identity.from_private_bytes(b("car.private"))
    phone = Identity.from_private_bytes(b("phone.private"))
    prologue = b("session.prologue")
    assert prologue == b"carhub/1 session\x00" + b("pair.transcript")
    ph = SecureSession(phone, car.public_key, initiator=True, prologue=prologue,
                       ephemeral_private=b("session.phone_e"))
    ca = SecureSession(car, phone.public_key, initiator=False, prologue=prologue,
                       ephemeral_private=b("session.car_e"))
    return ph, ca


def test_session_handshake_vectors() -> None:
    ph, ca = _sessions()
    (m1,) = ph.start()
    assert m1.payload == b("session.msg1")  # type: ignore[attr-defined]
    (m2,) = ca.receive_handshake(m1)
    assert m2.payload == b("session.msg2")  # type: ignore[attr-defined]
    assert ph.receive_handshake(m2) == []
    assert ph.handshake_hash == ca.handshake_hash == b("session.hash")
    assert ph.transport_keys() == (b("session.k1"), b("session.k2"))


# The frames of section 10.3, in the order they are sent: (side, counter, key).
FRAMES = [("car", 0, "k2"), ("phone", 0, "k1"), ("car", 1, "k2"), ("phone", 1, "k1"),
          ("phone", 2, "k1")]


def _frame_message(side: str, n: int) -> Message:
    contact = msgspec.msgpack.decode(b("contact.encoded"), type=Contact)
    anchor = b("contact.anchor")
    return {
        ("car", 0): ContactsState(EMPTY_ANCHOR, 0),
        ("phone", 0): ContactsBatch(1, EMPTY_ANCHOR, [contact], [], [], True),
        ("car", 1): ContactsAck(1, anchor),
        ("phone", 1): ContactsDone(anchor, 1),
        ("phone", 2): Ping(nonce=7),
    }[(side, n)]


def test_session_transport_vectors() -> None:
    ph, ca = _sessions()
    (m1,) = ph.start()
    (m2,) = ca.receive_handshake(m1)
    ph.receive_handshake(m2)
    for side, n, _ in FRAMES:
        plain, frame = b(f"session.plain_{side}{n}"), b(f"session.frame_{side}{n}")
        msg = _frame_message(side, n)
        assert plain[0] == 0x00 and encode_app(msg) == plain  # codec byte, then the message
        sender, receiver = (ph, ca) if side == "phone" else (ca, ph)
        assert sender.encrypt(plain) == frame
        assert receiver.decrypt(frame) == plain
        assert decode_app(plain) == msg


@pytest.mark.parametrize(("side", "n", "key"), FRAMES)
def test_transport_frames_follow_the_text(side: str, n: int, key: str) -> None:
    data = b(f"session.frame_{side}{n}")
    counter, sealed = data[:8], data[8:]
    assert counter == n.to_bytes(8, "big")
    aead = ChaCha20Poly1305(b(f"session.{key}"))
    plain = aead.decrypt(b"\x00\x00\x00\x00" + counter, sealed, counter)
    assert plain == b(f"session.plain_{side}{n}")


def test_a_zstd_application_payload_decodes_to_its_message() -> None:
    plain, body = b("session.plain_zstd"), b("session.body_zstd")
    assert plain[0] == 0x01 and len(body) >= 256
    assert zstandard.get_frame_parameters(plain[1:]).content_size == len(body)
    assert zstandard.ZstdDecompressor().decompress(plain[1:]) == body
    msg = decode_app(plain)
    assert isinstance(msg, ContactsBatch) and encode(msg) == body
    assert msg.base_anchor == b("contact.anchor") and msg.deletes == ["u-2"]
    assert decode_app(encode_app(msg)) == msg  # and the reference compresses it again


def test_contact_vectors() -> None:
    raw = b("contact.encoded")
    contact = msgspec.msgpack.decode(raw, type=Contact)
    assert contact.fn == "Zoë Ng" and contact.photo == hashlib.sha256(b"photo").digest()
    assert msgspec.msgpack.encode(contact) == raw and check_bounds(contact) is None
    assert contact_digest(contact) == b("contact.digest")
    assert hashlib.blake2b(raw, digest_size=16).digest() == b("contact.digest")
    assert hashlib.blake2b(raw).digest()[:16] != b("contact.digest")  # not a truncation
    digest = b("contact.digest")
    batch = b"U" + len(b"u-1").to_bytes(2, "big") + b"u-1" + digest
    anchor = hashlib.sha256(b"carhub-contacts-anchor-v1" + EMPTY_ANCHOR
                            + hashlib.sha256(batch).digest()).digest()[:16]
    assert anchor == b("contact.anchor")


def test_a_contact_without_its_trailing_defaults_is_digested_as_sent() -> None:
    full, short = b("contact.full"), b("contact.short")
    bob = Contact(uid="u-2", fn="Bob")
    assert msgspec.msgpack.encode(bob) == full
    assert msgspec.msgpack.decode(short, type=Contact) == bob
    for raw, key in ((full, "contact.full_digest"), (short, "contact.short_digest")):
        assert hashlib.blake2b(raw, digest_size=16).digest() == b(key)
        # The car digests the bytes it received: its anchor is the one the phone predicts.
        body = msgspec.msgpack.encode([33, 1, EMPTY_ANCHOR, [msgspec.Raw(raw)], [], [], True])
        receiver = ContactsReceiver(MirrorState())
        receiver.hello()
        receiver.receive(decode(body), raw_upserts(body))
        ev = receiver.next_event()
        assert isinstance(ev, ApplyBatch) and ev.upserts == [bob] and ev.encoded == [raw]
        expected = next_anchor(EMPTY_ANCHOR, batch_digest([("u-2", b(key))], [], []))
        assert receiver.applied(ev) == [ContactsAck(1, expected)]


# -- an independent Noise KK (Noise spec rev. 34 sections 5 and 7), primitives only --------
def _hkdf2(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = hmac.digest(ck, ikm, "sha256")
    out1 = hmac.digest(temp, b"\x01", "sha256")
    return out1, hmac.digest(temp, out1 + b"\x02", "sha256")


def _x25519(private: bytes, public: bytes) -> bytes:
    return Identity.from_private_bytes(private).dh(public)


def _pub(private: bytes) -> bytes:
    return Identity.from_private_bytes(private).public_key


def test_noise_kk_recomputed_from_primitives() -> None:
    """Checks the handshake vectors against the Noise spec, not against noiseprotocol."""
    si, sr = b("phone.private"), b("car.private")
    ei, er = b("session.phone_e"), b("session.car_e")
    h = ck = b"Noise_KK_25519_ChaChaPoly_SHA256"  # exactly HASHLEN bytes: used as is
    k = b""

    def mix_hash(data: bytes) -> None:
        nonlocal h
        h = hashlib.sha256(h + data).digest()

    def mix_key(ikm: bytes) -> None:
        nonlocal ck, k
        ck, k = _hkdf2(ck, ikm)

    def seal_empty() -> bytes:
        tag = ChaCha20Poly1305(k).encrypt(b"\x00" * 12, b"", h)  # n = 0 after each MixKey
        mix_hash(tag)
        return tag

    mix_hash(b("session.prologue"))
    mix_hash(_pub(si))
    mix_hash(_pub(sr))
    # -> e, es, ss
    mix_hash(_pub(ei))
    mix_key(_x25519(ei, _pub(sr)))
    mix_key(_x25519(si, _pub(sr)))
    assert _pub(ei) + seal_empty() == b("session.msg1")
    # <- e, ee, se
    mix_hash(_pub(er))
    mix_key(_x25519(er, _pub(ei)))
    mix_key(_x25519(er, _pub(si)))
    assert _pub(er) + seal_empty() == b("session.msg2")
    assert h == b("session.hash")
    assert _hkdf2(ck, b"") == (b("session.k1"), b("session.k2"))


def _ad(kind: int, value: bytes) -> bytes:
    return bytes([len(value) + 1, kind]) + value


def _uuid_le(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", ""))[::-1]


def test_ble_advertising_vectors_follow_the_text() -> None:
    """§1.2 rebuilt from its tables: both PDUs fit the 31 bytes of a legacy PDU."""
    service_data = bytes([1, 0x01]) + bytes.fromhex(s("ble.device_id"))[:4]
    adv_head = _ad(0x01, b"\x06") + _ad(0x15, _uuid_le("7905f431-b5ce-4e99-a40f-4b1e122d00d0"))
    name = s("ble.name").encode()
    assert len(name) > 31 - len(adv_head) - 2  # the vector exercises the shortened name
    assert b("ble.adv_data") == adv_head + _ad(0x08, name[: 31 - len(adv_head) - 2])
    assert b("ble.adv_short") == adv_head + _ad(0x09, s("ble.short_name").encode())
    assert b("ble.scan_response") == _ad(
        0x15, _uuid_le("89d3502b-0f36-433a-8ef4-c502ad55f8dc")
    ) + _ad(0x20, (0x8D3E0001).to_bytes(4, "little") + service_data)
    for key in ("ble.adv_data", "ble.adv_short", "ble.scan_response"):
        assert len(b(key)) <= 31, key


# -- 10.6: the version-2 stream ----------------------------------------------------------
STREAM = ("stream.plain1", "stream.plain2", "stream.plain3")
STREAM_BODIES = ("session.body_zstd", "stream.body2", "stream.body3")


def test_the_stream_vectors_decode_in_order_with_the_reference() -> None:
    rx = AppCodec(2)
    for plain, body in zip(STREAM, STREAM_BODIES, strict=True):
        assert rx.body(b(plain)) == b(body)
    assert [b(p)[0] for p in STREAM] == [0x02, 0x02, 0x03]
    assert len(b("stream.plain2")) < len(b("stream.body2")) // 8  # it refers to the first
    assert isinstance(decode(b("stream.body3")), ContactsDone)


def test_the_stream_vectors_are_one_plain_zstd_frame_as_the_text_says() -> None:
    # Straight from zstandard, not the reference codec: header, window, then one frame.
    pieces = [b(p)[1:] for p in STREAM]
    params = zstandard.get_frame_parameters(pieces[0])
    assert pieces[0][:6] == bytes.fromhex("28b52ffd0048")
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert params.window_size == 512 * 1024
    obj = zstandard.ZstdDecompressor().decompressobj()
    out = [obj.decompress(p) for p in pieces]
    assert out == [b(body) for body in STREAM_BODIES]
    assert obj.eof and not obj.unused_data  # plain3 ended the frame


def test_the_reference_makes_pieces_that_decode_the_same() -> None:
    tx, rx = AppCodec(2), AppCodec(2)
    msgs = [decode(b(body)) for body in STREAM_BODIES]
    pieces = [tx.encode(m, end=i == 2) for i, m in enumerate(msgs)]
    assert [p[0] for p in pieces] == [0x02, 0x02, 0x03]
    assert [rx.decode(p) for p in pieces] == msgs
