"""Pairing's wire: messages (tags 10-15), events and the derivations (PROTOCOL.md section 5).

``protocol.pairing`` holds the two machines that use them and re-exports every name here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.errors import Reason
from protocol.messages import Message, register

__all__ = [
    "CODE_DIGITS",
    "LABEL_CODE",
    "LABEL_COMMIT",
    "LABEL_CONFIRM",
    "LABEL_MAC",
    "LABEL_TRANSCRIPT",
    "MAC_SIZE",
    "MAX_NAME",
    "METHODS",
    "NONCE_SIZE",
    "CodeReady",
    "PairCommit",
    "PairConfirm",
    "PairNonce",
    "PairRequest",
    "PairResult",
    "PairReveal",
    "Paired",
    "PairingEvent",
    "PairingFailed",
    "Rng",
    "commitment",
    "confirm_key",
    "confirm_mac",
    "numeric_code",
    "transcript_hash",
]

NONCE_SIZE = 16  # 128-bit nonces, as in LE Secure Connections
# Digits of the numeric code: a man in the middle wins with probability 10^-CODE_DIGITS.
# The machines take fewer only from tests that measure that rate (tests/faults/).
CODE_DIGITS = 6
MAC_SIZE = 32
MAX_NAME = 128  # characters; a name is shown on a car screen, not stored as a document
METHODS = {"numeric": b"\x01", "oob": b"\x02"}
LABEL_COMMIT = b"carhub/pair/v1/commit"
LABEL_TRANSCRIPT = b"carhub/pair/v1/transcript"
LABEL_CODE = b"carhub/pair/v1/code"
LABEL_CONFIRM = b"carhub/pair/v1/confirm"
LABEL_MAC = {"car": b"carhub/pair/v1/mac-car", "phone": b"carhub/pair/v1/mac-phone"}

Rng = Callable[[int], bytes]


# -- messages (tags 10-15) ------------------------------------------------------------------
class PairRequest(Message, tag=10):
    """Phone -> car: the phone's static key, its name and ``"numeric"`` or ``"oob"``."""

    public_key: bytes
    name: str
    method: str


class PairCommit(Message, tag=11):
    """Car -> phone: the car's static key and C = HMAC(Nc, commit label || Pc || Pp)."""

    public_key: bytes
    commitment: bytes


class PairNonce(Message, tag=12):
    """Phone -> car: Np."""

    nonce: bytes


class PairReveal(Message, tag=13):
    """Car -> phone: Nc, opening the commitment."""

    nonce: bytes


class PairConfirm(Message, tag=14):
    """Either way: the sender's confirmation MAC over the pairing transcript hash."""

    mac: bytes


class PairResult(Message, tag=15):
    """Car -> phone the final verdict; either way ``accepted=False`` aborts (``reason``)."""

    accepted: bool
    reason: str = ""


register(PairRequest, PairCommit, PairNonce, PairReveal, PairConfirm, PairResult)


# -- events ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeReady:
    """Show ``code`` to the user, then call ``confirm()`` with their decision."""

    code: str


@dataclass(frozen=True)
class Paired:
    """Pairing succeeded: pin ``peer_public_key``. The phone learns no name here ("")."""

    peer_public_key: bytes
    peer_name: str


@dataclass(frozen=True)
class PairingFailed:
    """Pairing ended without success."""

    reason: Reason
    detail: str


PairingEvent = CodeReady | Paired | PairingFailed


# -- the derivations (PROTOCOL.md section 5.2) ----------------------------------------------
def commitment(nc: bytes, pc: bytes, pp: bytes) -> bytes:
    """Return C = HMAC-SHA256(key=Nc, "carhub/pair/v1/commit" || Pc || Pp)."""
    return hmac.digest(nc, LABEL_COMMIT + pc + pp, "sha256")


def transcript_hash(
    transcript: bytes, method: str, name: str, pp: bytes, pc: bytes, c: bytes, np: bytes, nc: bytes
) -> bytes:
    """Return PT = H(label || H(transcript) || method || H(name) || Pp || Pc || C || Np || Nc)."""
    h = hashlib.sha256(LABEL_TRANSCRIPT)
    h.update(hashlib.sha256(transcript).digest())
    h.update(METHODS[method])
    h.update(hashlib.sha256(name.encode("utf-8")).digest())
    for part in (pp, pc, c, np, nc):
        h.update(part)
    return h.digest()


def numeric_code(pt: bytes, digits: int = CODE_DIGITS) -> str:
    """Return the code: BE32(H("carhub/pair/v1/code" || PT)[0:4]) mod 10^digits.

    Args:
        pt: the pairing transcript hash.
        digits: the code's length, zero-padded; 6 on the wire (PROTOCOL.md section 5.2).
            Fewer only in tests that measure a man in the middle's odds.

    Returns:
        The code as ``digits`` decimal digits.

    Raises:
        ValueError: ``digits`` is not between 1 and 6.
    """
    if not 1 <= digits <= CODE_DIGITS:
        raise ValueError(f"a code has 1 to {CODE_DIGITS} digits, not {digits}")
    value = int.from_bytes(hashlib.sha256(LABEL_CODE + pt).digest()[:4], "big")
    return f"{value % 10**digits:0{digits}d}"


def confirm_key(shared: bytes, np: bytes, nc: bytes, oob_secret: bytes = b"") -> bytes:
    """Return K = HKDF-SHA256(ikm=DH || oob_secret, salt=Np || Nc, info=label, 32 bytes)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=np + nc, info=LABEL_CONFIRM)
    return hkdf.derive(shared + oob_secret)


def confirm_mac(key: bytes, role: str, pt: bytes) -> bytes:
    """Return HMAC-SHA256(K, "carhub/pair/v1/mac-<role>" || PT); the role stops reflection."""
    return hmac.digest(key, LABEL_MAC[role] + pt, "sha256")
