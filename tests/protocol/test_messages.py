"""Message codec and version negotiation."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.contacts import Contact
from protocol.errors import MessageError, VersionError
from protocol.messages import (
    Error,
    Hello,
    Ping,
    check_selected,
    decode,
    decode_app,
    encode,
    encode_app,
    negotiate_version,
)
from protocol.sync import ContactsBatch


def test_hello_round_trip() -> None:
    h = Hello(
        versions=[1, 2], role="phone", device_id="ab12cd34ef567890", name="Pixel", intent="pair"
    )
    assert decode(encode(h)) == h


def test_wrong_field_type_is_malformed() -> None:
    bad = encode(Ping(nonce=1)).replace(b"\x01", b"\xa1x", 1)  # nonce becomes a string
    with pytest.raises(MessageError) as info:
        decode(bad[:1] + b"\x03" + bad[2:])
    assert info.value.reason.value == "malformed"


def test_unknown_tag_is_malformed() -> None:
    with pytest.raises(MessageError):
        decode(encode(Error(reason="x"))[:1] + b"\x7f" + encode(Error(reason="x"))[2:])


def test_negotiation_picks_highest_common() -> None:
    assert negotiate_version([1, 2, 3], [2, 3, 4]) == 3


def test_no_common_version() -> None:
    with pytest.raises(VersionError) as info:
        negotiate_version([1], [2])
    assert info.value.reason.value == "no-common-version"


def test_downgrade_refused() -> None:
    check_selected([1, 2], [1, 2], 2)
    with pytest.raises(VersionError) as info:
        check_selected([1, 2], [1, 2], 1)
    assert info.value.reason.value == "downgrade"


@given(st.binary(max_size=200))
def test_garbage_decodes_or_raises_message_error(data: bytes) -> None:
    try:
        decode(data)
    except MessageError:
        pass


def test_app_payload_small_is_raw_large_is_zstd() -> None:
    small = Ping(nonce=1)
    assert encode_app(small)[0] == 0 and decode_app(encode_app(small)) == small
    big = Hello(versions=[1], role="phone", device_id="ab" * 8, name="n" * 128, model="m" * 128)
    wire = encode_app(big)
    assert wire[0] == 1 and len(wire) < len(encode(big)) // 4
    assert decode_app(wire) == big


def test_app_payload_decompression_bomb_refused() -> None:
    import zstandard

    bomb = b"\x01" + zstandard.ZstdCompressor().compress(b"\x00" * (9 << 20))
    with pytest.raises(MessageError):
        decode_app(bomb)


def test_app_payload_without_content_size_refused() -> None:
    import io

    import zstandard

    buf = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(buf, closefd=False) as w:
        w.write(encode(Ping(nonce=1)) * 100)
    with pytest.raises(MessageError):
        decode_app(b"\x01" + buf.getvalue())


@pytest.mark.parametrize("payload", [b"", b"\x07abc", b"\x01not-zstd"])
def test_app_payload_garbage_is_message_error(payload: bytes) -> None:
    with pytest.raises(MessageError):
        decode_app(payload)


def test_invalid_utf8_in_a_string_field_is_malformed() -> None:
    # Found by Hypothesis: msgspec raises UnicodeDecodeError, not DecodeError, for this.
    with pytest.raises(MessageError) as info:
        decode(b"\x97 \x91\x92\xa3\x00\x00\x80")
    assert info.value.reason.value == "malformed"


@pytest.mark.parametrize(
    "field,value",
    [("device_id", "../../etc/x0000000"), ("device_id", "AB" * 8), ("name", "n" * 129)],
)
def test_hello_fields_are_bounded(field: str, value: str) -> None:
    hello = Hello(versions=[1], role="phone", device_id="ab" * 8, name="ok")
    bad = encode(Hello(**{**{f: getattr(hello, f) for f in hello.__struct_fields__}, field: value}))
    with pytest.raises(MessageError):
        decode(bad)


def _batch_with(upsert: list[object]) -> bytes:
    """A ContactsBatch (tag 33) carrying one upsert given as a raw msgpack array."""
    return msgspec.msgpack.encode([33, 0, bytes(16), [upsert], [], [], True])


def test_a_contact_with_elements_beyond_its_fields_is_malformed() -> None:
    # The car stores a contact as the bytes it received: nothing may ride along in them.
    plain = ["u1", "Ann", [], "", "", [], [], [], "", "", b""]
    assert decode(_batch_with(plain)) == ContactsBatch(
        0, bytes(16), [Contact("u1", "Ann")], [], [], True
    )
    with pytest.raises(MessageError):
        decode(_batch_with([*plain, b"x" * 100_000]))
    nested = ["u1", "Ann", [], "", "", [["+1 555", "cell", "", "smuggled"]], [], [], "", "", b""]
    with pytest.raises(MessageError):
        decode(_batch_with(nested))
