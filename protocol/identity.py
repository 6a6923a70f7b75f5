"""Device identities: static X25519 key pairs, device ids, fingerprints and the pairing URI.

Every car and phone has one long-lived X25519 key pair. Everything a user or a peer sees
about a device is derived from its 32-byte public key ``pk``:

    device_id    = hex(H("carhub-id" || pk)[:8])        16 lower-hex chars (mDNS TXT ``id``)
    short_id     = first 4 bytes of the device id         BLE service data
    fingerprint  = 8 groups of 4 digits from H(pk)       read aloud or compared by eye
    fp hash      = H(pk)                                  in the QR pairing URI

The pairing URI (shown as a QR code by the car) carries the car's device id, its
fingerprint hash and a fresh one-time 16-byte secret, so a phone that scans it needs no
code comparison: see ``protocol.pairing``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from protocol.errors import InvalidPeerKeyError, PairingUriError, Reason

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

__all__ = [
    "KEY_SIZE",
    "SECRET_SIZE",
    "Identity",
    "InvalidPeerKeyError",
    "PairingUri",
    "PairingUriError",
    "cached_public_key",
    "device_id",
    "fingerprint",
    "fingerprint_hash",
    "public_key_record",
    "short_id",
]

KEY_SIZE = 32
SECRET_SIZE = 16  # 128 bits: far beyond online guessing within one pairing window
URI_SCHEME = "carhub"
URI_VERSION = "1"
_ID_LABEL = b"carhub-id"
_DEVICE_ID_RE = re.compile(r"[0-9a-f]{16}")
_MAX_HOST = 255


@dataclass(frozen=True, eq=False)
class Identity:
    """Our static X25519 key pair.

    Build one with ``generate`` or ``from_private_bytes``; never call the constructor with
    a key object you did not make yourself.
    """

    _private: X25519PrivateKey

    @classmethod
    def generate(cls) -> Identity:
        """Make a fresh random identity."""
        return cls(_x25519().X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Identity:
        """Load an identity from its raw 32-byte private key.

        Raises:
            ValueError: ``raw`` is not 32 bytes.
        """
        if len(raw) != KEY_SIZE:
            raise ValueError(f"an X25519 private key is {KEY_SIZE} bytes, got {len(raw)}")
        return cls(_x25519().X25519PrivateKey.from_private_bytes(bytes(raw)))

    def private_bytes(self) -> bytes:
        """Return the raw 32-byte private key (store it with mode 0600)."""
        return self._private.private_bytes_raw()

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return self._private.public_key().public_bytes_raw()

    @property
    def device_id(self) -> str:
        """This device's id: see ``device_id``."""
        return device_id(self.public_key)

    @property
    def fingerprint(self) -> str:
        """This device's readable fingerprint: see ``fingerprint``."""
        return fingerprint(self.public_key)

    def dh(self, peer_public_key: bytes) -> bytes:
        """X25519 with a peer's public key.

        Args:
            peer_public_key: the peer's raw 32-byte public key.

        Returns:
            The 32-byte shared secret.

        Raises:
            InvalidPeerKeyError: the key is not 32 bytes or is of low order (the shared
                secret would be all zeros, which an attacker could predict).
        """
        if len(peer_public_key) != KEY_SIZE:
            raise InvalidPeerKeyError(Reason.MALFORMED, f"peer key is {len(peer_public_key)} bytes")
        try:
            peer = _x25519().X25519PublicKey.from_public_bytes(bytes(peer_public_key))
            # cryptography (OpenSSL) refuses an all-zero result, i.e. a low-order point.
            return self._private.exchange(peer)
        except ValueError as exc:
            raise InvalidPeerKeyError(Reason.MALFORMED, "peer key is of low order") from exc

    def __repr__(self) -> str:
        # Never print the private key, even in a traceback.
        return f"Identity(device_id={self.device_id!r})"


def _x25519() -> Any:
    """cryptography's X25519, imported on first use.

    The ids and fingerprints below need only hashlib; cryptography costs ~7 MB and ~10 ms
    of start-up, which ``phone-bridge status`` (a cached public key) never pays. The raw
    byte methods are used, not ``serialization``, which would also load the SSH key code
    and bcrypt.
    """
    from cryptography.hazmat.primitives.asymmetric import x25519

    return x25519


_PUB_TAG_SIZE = 16
_PUB_TAG_PERSON = b"carhub-pub-of"


def public_key_record(private_key: bytes, public_key: bytes) -> bytes:
    """A record of ``public_key`` that only its ``private_key`` vouches for (48 bytes).

    BLAKE2b-128 over both keys, then the public key: ``cached_public_key`` trusts it only
    with the very private key it was made from, so a replaced key or a forged record is
    never taken for the device's own (the caller derives the key again then).
    """
    return _pub_tag(private_key, public_key) + public_key


def cached_public_key(private_key: bytes, record: bytes) -> bytes | None:
    """The public key in ``record`` if ``private_key`` made it (``public_key_record``)."""
    if len(private_key) != KEY_SIZE or len(record) != _PUB_TAG_SIZE + KEY_SIZE:
        return None
    public = record[_PUB_TAG_SIZE:]
    if not hmac.compare_digest(record[:_PUB_TAG_SIZE], _pub_tag(private_key, public)):
        return None
    return public


def _pub_tag(private_key: bytes, public_key: bytes) -> bytes:
    return hashlib.blake2b(private_key + public_key, digest_size=_PUB_TAG_SIZE,
                           person=_PUB_TAG_PERSON).digest()


def device_id(public_key: bytes) -> str:
    """Return a device's id: 16 lower-hex chars of H("carhub-id" || pk).

    Args:
        public_key: the raw 32-byte X25519 public key.
    """
    return hashlib.sha256(_ID_LABEL + public_key).digest()[:8].hex()


def short_id(device_id: str) -> bytes:
    """Return the first 4 bytes of a device id, as carried in BLE service data.

    Raises:
        ValueError: ``device_id`` is not 16 lower-hex chars.
    """
    if not _DEVICE_ID_RE.fullmatch(device_id):
        raise ValueError(f"not a device id: {device_id!r}")
    return bytes.fromhex(device_id)[:4]


def fingerprint_hash(public_key: bytes) -> bytes:
    """Return H(pk), the 32-byte hash a pairing URI pins."""
    return hashlib.sha256(public_key).digest()


def fingerprint(public_key: bytes) -> str:
    """Return a fingerprint to read aloud: 8 groups of 4 digits, e.g. ``"4821 0937 ..."``.

    Group ``i`` is big-endian bytes ``4i..4i+3`` of H(pk), modulo 10000 (about 106 bits
    in all; the modulo bias of 2^32 mod 10^4 is negligible).
    """
    digest = fingerprint_hash(public_key)
    groups = (int.from_bytes(digest[i : i + 4], "big") % 10_000 for i in range(0, 32, 4))
    return " ".join(f"{g:04d}" for g in groups)


@dataclass(frozen=True)
class PairingUri:
    """What the car's QR code holds: ``carhub://pair?v=1&id=..&fp=..&s=..&host=h:p``.

    Attributes:
        device_id: the car's device id.
        fingerprint_hash: H(car public key), 32 bytes (``fp``, hex).
        secret: the one-time pairing secret, 16 bytes (``s``, unpadded base64url).
        host: optional ``host:port`` of the car's session endpoint.
    """

    device_id: str
    fingerprint_hash: bytes
    secret: bytes
    host: str = ""

    @classmethod
    def create(cls, identity: Identity, host: str = "") -> PairingUri:
        """Make a URI for ``identity`` with a fresh random secret."""
        return cls(identity.device_id, fingerprint_hash(identity.public_key),
                   os.urandom(SECRET_SIZE), host)

    def to_uri(self) -> str:
        """Return the URI text (what the QR code encodes)."""
        s = base64.urlsafe_b64encode(self.secret).rstrip(b"=").decode("ascii")
        uri = f"{URI_SCHEME}://pair?v={URI_VERSION}&id={self.device_id}"
        uri += f"&fp={self.fingerprint_hash.hex()}&s={s}"
        if self.host:
            uri += f"&host={quote(self.host, safe=':[]')}"
        return uri

    def matches(self, public_key: bytes) -> bool:
        """Return whether ``public_key`` is the key this URI pins."""
        return fingerprint_hash(public_key) == self.fingerprint_hash and (
            device_id(public_key) == self.device_id
        )

    @classmethod
    def parse(cls, uri: str) -> PairingUri:
        """Parse a scanned pairing URI. Unknown parameters are ignored.

        Raises:
            PairingUriError: wrong scheme or version, a missing, repeated or malformed field.
        """
        try:
            parts = urlsplit(uri.strip())
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
        except ValueError as exc:
            raise PairingUriError(Reason.MALFORMED, f"not a URI: {exc}") from exc
        if parts.scheme != URI_SCHEME or parts.netloc != "pair":
            raise PairingUriError(Reason.MALFORMED, "not a carhub://pair URI")
        if _one(query, "v") != URI_VERSION:
            raise PairingUriError(Reason.MALFORMED, "unsupported pairing URI version")
        return cls(
            _parse_id(_one(query, "id")),
            _parse_hex(_one(query, "fp"), KEY_SIZE, "fp"),
            _parse_secret(_one(query, "s")),
            _parse_host(_one(query, "host", required=False)),
        )


def _one(query: dict[str, list[str]], key: str, *, required: bool = True) -> str:
    """Return the single value of ``key``."""
    values = query.get(key, [])
    if len(values) > 1:
        raise PairingUriError(Reason.MALFORMED, f"{key!r} given {len(values)} times")
    if not values:
        if required:
            raise PairingUriError(Reason.MALFORMED, f"{key!r} is missing")
        return ""
    return values[0]


def _parse_id(value: str) -> str:
    if not _DEVICE_ID_RE.fullmatch(value):
        raise PairingUriError(Reason.MALFORMED, "id is not 16 lower-hex chars")
    return value


def _parse_hex(value: str, size: int, name: str) -> bytes:
    if not re.fullmatch(r"[0-9a-fA-F]*", value) or len(value) != 2 * size:
        raise PairingUriError(Reason.MALFORMED, f"{name} is not {size} hex bytes")
    return bytes.fromhex(value)


def _parse_secret(value: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise PairingUriError(Reason.MALFORMED, "s is not base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise PairingUriError(Reason.MALFORMED, "s is not base64url") from exc
    if len(raw) != SECRET_SIZE:
        raise PairingUriError(Reason.MALFORMED, f"s is {len(raw)} bytes, not {SECRET_SIZE}")
    return raw


def _parse_host(value: str) -> str:
    # A host is shown and dialled, so refuse anything with spaces or control characters.
    if len(value) > _MAX_HOST or any(c.isspace() or not c.isprintable() for c in value):
        raise PairingUriError(Reason.MALFORMED, "host is not a plain host:port")
    return value
