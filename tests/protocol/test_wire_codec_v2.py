"""Protocol version 2's application codec: a zstd stream per session direction.

What a user of the protocol would check: a version-2 pair sends fewer bytes per contact
(the issue-13 figure, <= 50 B with framing and AEAD), a peer that speaks only version 1
still syncs with a version-2 peer in both directions (and only version-1 codecs cross
the wire then), and bad or hostile stream pieces are the usual clean ``malformed``.
"""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Iterator

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.admission import PairingAdmission
from protocol.connection import (
    ApplyBatch,
    CarConnection,
    ConnectionFailed,
    ContactsSynced,
    PhoneConnection,
    State,
    SyncJournal,
)
from protocol.contacts import Contact
from protocol.errors import LocalProtocolError, MessageError, Reason
from protocol.framing import encode_frame
from protocol.identity import Identity
from protocol.messages import (
    MAX_DECOMPRESSED,
    SUPPORTED_VERSIONS,
    AppCodec,
    Hello,
    Ping,
    encode,
    parse_versions,
)
from protocol.session import SecureSession
from protocol.sync import ContactsSender, ContactsState

CAR = Identity.generate()
PHONE = Identity.generate()
BIG = Hello(versions=[1], role="phone", device_id="ab" * 8, name="n" * 128, model="m" * 128)


@functools.cache
def book(n: int) -> tuple[Contact, ...]:
    """The bench's realistic contacts (bench/bench_protocol.py ``make_contacts``)."""
    from phone_bridge.sample_data import generate_vcards
    from protocol.vcard import import_vcards

    return tuple(import_vcards(generate_vcards(n, seed=11)).contacts)


class Wire:
    """A paired phone and car in memory; records every session plaintext's codec byte."""

    def __init__(self, phone_versions: tuple[int, ...], car_versions: tuple[int, ...]) -> None:
        self.phone = PhoneConnection(
            PHONE, "Pixel", car_public_key=CAR.public_key, versions=phone_versions
        )
        self.car = CarConnection(
            CAR,
            "Car",
            lookup_peer={PHONE.device_id: PHONE.public_key}.get,
            admission=PairingAdmission(),
            versions=car_versions,
        )
        self.bytes_to_car = 0
        self.synced: list[ContactsSynced] = []
        self.stored: dict[str, Contact] = {}
        self.failed: list[ConnectionFailed] = []
        self.car_failed: list[ConnectionFailed] = []

    def pump(self) -> None:
        for _ in range(10_000):
            a, b = self.phone.data_to_send(), self.car.data_to_send()
            if a and self.car.state is not State.CLOSED:
                self.bytes_to_car += len(a)
                self.car.receive_data(a, 1.0)
            if b and self.phone.state is not State.CLOSED:
                self.phone.receive_data(b, 1.0)
            busy = self._drain()
            if not a and not b and not busy:
                return
        raise AssertionError("the link never went quiet")

    def _drain(self) -> bool:
        busy = False
        while (ev := self.car.next_event()) is not None:
            if isinstance(ev, ApplyBatch):  # the car's shell commits at once
                self.stored.update((c.uid, c) for c in ev.upserts)
                self.car.batch_stored(ev)
                busy = True
            elif isinstance(ev, ContactsSynced):
                self.synced.append(ev)
            elif isinstance(ev, ConnectionFailed):
                self.failed.append(ev)
                self.car_failed.append(ev)
        while (pev := self.phone.next_event()) is not None:
            if isinstance(pev, SyncJournal):  # the phone's shell records at once
                self.phone.journal_recorded()
                busy = True
            elif isinstance(pev, ConnectionFailed):
                self.failed.append(pev)
        return busy

    def sync(self, contacts: tuple[Contact, ...]) -> None:
        self.pump()
        assert self.phone.state is State.ESTABLISHED and self.car.state is State.ESTABLISHED
        self.bytes_to_car = 0
        self.phone.start_sync(ContactsSender(list(contacts), {}, None))
        self.pump()
        assert not self.failed, self.failed
        assert [s.total for s in self.synced] == [len(contacts)]
        assert self.stored == {c.uid: c for c in contacts}


@pytest.fixture
def codecs_sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The codec byte of every session plaintext sealed, in order, by either side."""
    seen: list[int] = []
    real = SecureSession.encrypt

    def spy(self: SecureSession, plaintext: bytes) -> bytes:
        seen.append(plaintext[0])
        return real(self, plaintext)

    monkeypatch.setattr(SecureSession, "encrypt", spy)
    yield seen


# -- negotiation and interop ------------------------------------------------------------
@pytest.mark.parametrize(
    ("phone", "car", "expected"),
    [((2, 1), (2, 1), 2), ((1,), (2, 1), 1), ((2, 1), (1,), 1), ((1,), (1,), 1)],
    ids=["v2-v2", "v1-phone-v2-car", "v2-phone-v1-car", "v1-v1"],
)
def test_each_pair_negotiates_the_best_common_version_and_syncs(
    phone: tuple[int, ...], car: tuple[int, ...], expected: int, codecs_sent: list[int]
) -> None:
    wire = Wire(phone, car)
    wire.sync(book(600))  # two batches, so the second continues the stream in v2
    assert wire.phone.version == wire.car.version == expected
    if expected == 1:
        assert set(codecs_sent) <= {0x00, 0x01}, "a v1 peer must never see a stream piece"
        assert 0x01 in codecs_sent
    else:
        assert codecs_sent.count(0x02) >= 2 and 0x01 not in codecs_sent
        assert codecs_sent.count(0x03) == 1  # ContactsDone ended the phone's frame


def test_a_second_sync_in_the_same_session_starts_a_new_frame(codecs_sent: list[int]) -> None:
    wire = Wire(SUPPORTED_VERSIONS, SUPPORTED_VERSIONS)
    wire.sync(book(300))
    assert wire.car._codec is not None and wire.car._codec._rx is None  # freed at the end
    # A later sync: no snapshot, so the car sends its manifest (its own stream, ended by
    # the last chunk), then the phone sends what changed in a new frame.
    (done,) = wire.synced
    wire.synced.clear()
    opening = ContactsState(done.anchor, done.total)
    wire.phone.start_sync(ContactsSender(list(book(600)[300:]), {}, None), opening)
    wire.pump()
    assert not wire.failed and [s.total for s in wire.synced] == [300]
    assert codecs_sent.count(0x03) == 3  # phone, car's manifest, phone again


def test_the_size_figure_v2_is_at_most_50_bytes_per_contact_v1_stays_as_it_was() -> None:
    contacts = book(10_000)
    sizes = {}
    for version in (1, 2):
        wire = Wire((version,), SUPPORTED_VERSIONS)
        wire.sync(contacts)
        sizes[version] = wire.bytes_to_car / len(contacts)
    assert sizes[2] <= 50.0, sizes
    assert sizes[1] > 55.0, sizes  # version 1 is still a frame per message
    assert sizes[2] < 0.9 * sizes[1]


def test_a_connection_refuses_to_offer_a_version_it_lacks() -> None:
    with pytest.raises(LocalProtocolError):
        PhoneConnection(PHONE, "Pixel", versions=(3,))
    with pytest.raises(LocalProtocolError):
        PhoneConnection(PHONE, "Pixel", versions=())


def test_parse_versions_reads_the_interop_variable() -> None:
    assert parse_versions("") == SUPPORTED_VERSIONS
    assert parse_versions("1") == (1,)
    assert parse_versions(" 2, 1 ") == (2, 1)
    for bad in ("x", "1,,2", "9"):
        with pytest.raises(LocalProtocolError):
            parse_versions(bad)


# -- the codec itself ---------------------------------------------------------------------
def test_stream_pieces_compress_against_earlier_messages() -> None:
    tx, rx = AppCodec(2), AppCodec(2)
    first, second = tx.encode(BIG), tx.encode(BIG)
    assert first[0] == second[0] == 0x02
    assert len(second) < len(first) // 2  # the second names the first's bytes
    assert rx.decode(first) == BIG and rx.decode(second) == BIG
    assert tx.encode(Ping(nonce=1)) == b"\x00" + encode(Ping(nonce=1))  # small: raw
    end = tx.encode(Ping(nonce=2), end=True)
    assert end[0] == 0x03 and rx.decode(end) == Ping(nonce=2)
    assert tx._tx is None and rx._rx is None  # both sides dropped the stream
    again = tx.encode(BIG)
    assert again[1:5] == b"\x28\xb5\x2f\xfd"  # a new frame: the zstd magic number
    assert rx.decode(again) == BIG


def test_version_2_still_accepts_the_version_1_codecs() -> None:
    rx = AppCodec(2)
    assert rx.decode(AppCodec(1).encode(BIG)) == BIG
    assert rx.decode(AppCodec(1).encode(Ping(nonce=3))) == Ping(nonce=3)


def _piece(data: bytes, **params: int) -> bytes:
    p = zstandard.ZstdCompressionParameters.from_level(3, **params)
    obj = zstandard.ZstdCompressor(compression_params=p).compressobj()
    return b"\x02" + obj.compress(data) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


@pytest.mark.parametrize(
    ("version", "payload"),
    [
        (1, AppCodec(2).encode(BIG)),  # a stream piece in a version-1 session
        (2, b""),
        (2, b"\x04" + encode(Ping(nonce=1))),
        (2, b"\x02not-zstd"),
        (2, b"\x02"),
        (2, b"\x03" + AppCodec(2).encode(BIG)[1:]),  # says it ends the frame; it does not
        (2, _piece(encode(BIG), window_log=20)),  # a window over 512 KiB
        (2, _piece(encode(BIG))[:40]),  # cut short: not a whole message
    ],
)
def test_bad_pieces_are_malformed(version: int, payload: bytes) -> None:
    with pytest.raises(MessageError) as info:
        AppCodec(version).decode(payload)
    assert info.value.reason is Reason.MALFORMED


def test_a_piece_after_the_frame_ended_without_codec_3_is_malformed() -> None:
    obj = zstandard.ZstdCompressor().compressobj()
    whole = obj.compress(encode(BIG)) + obj.flush()  # ends the frame under codec 2
    rx = AppCodec(2)
    with pytest.raises(MessageError):
        rx.decode(b"\x02" + whole)


def test_a_stream_bomb_is_refused_without_inflating_it() -> None:
    # 64 MiB of zeros is a ~2 KiB piece; the car stops a little past 8 MiB.
    bomb = _piece(b"\x00" * (64 << 20), window_log=19)
    assert len(bomb) < 64 << 10
    tracemalloc.start()
    try:
        with pytest.raises(MessageError) as info:
            AppCodec(2).decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "8 MiB" in info.value.detail
    assert peak < 2 * MAX_DECOMPRESSED + (1 << 20)


def test_a_bomb_fails_the_connection_cleanly() -> None:
    wire = Wire(SUPPORTED_VERSIONS, SUPPORTED_VERSIONS)
    wire.pump()
    session = wire.phone._session
    assert session is not None
    wire.car.receive_data(encode_frame(session.encrypt(_piece(b"\x00" * (32 << 20)))), 1.0)
    wire.pump()
    (failed,) = wire.car_failed
    assert failed.error.reason is Reason.MALFORMED and wire.car.state is State.CLOSED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4), st.sampled_from([2, 3]))
def test_garbage_pieces_decode_or_raise_message_error(chunks: list[bytes], codec: int) -> None:
    rx = AppCodec(2)
    valid = AppCodec(2).encode(BIG)
    for chunk in [valid[1:], *chunks]:
        try:
            rx.decode(bytes((codec,)) + chunk)
        except MessageError:
            return
