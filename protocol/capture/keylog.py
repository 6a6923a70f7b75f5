"""The key log's lines: one secure session's keys, as ``--keylog`` writes them.

Like ``SSLKEYLOGFILE``, a key log is a text file of one line per session (PROTOCOL.md
§6.3):

    CARHUB_SESSION <phone_ephemeral> <handshake_hash> <phone_to_car_key> <car_to_phone_key>

each field 64 lower-case hex digits (32 bytes). ``phone_ephemeral`` is the phone's Noise
ephemeral public key, the first 32 bytes of its ``NoiseHandshake`` payload: public, in
plain sight in every capture of the session, so a decoder finds a session's line by it.
Blank lines, ``#`` comments and lines of other labels are skipped (room for later kinds);
a ``CARHUB_SESSION`` line of the wrong shape is reported, not fatal. The car and the phone
both log a session they share, so the same line may appear twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.session import SessionSecrets

__all__ = ["KEYLOG_LABEL", "KeyLog", "format_line", "parse_keylog"]

KEYLOG_LABEL = "CARHUB_SESSION"
_FIELD_BYTES = 32


def format_line(secrets: SessionSecrets) -> str:
    """Return the key log line of one session, newline included."""
    parts = (secrets.phone_ephemeral, secrets.handshake_hash, secrets.phone_to_car,
             secrets.car_to_phone)  # fmt: skip
    return " ".join([KEYLOG_LABEL, *(p.hex() for p in parts)]) + "\n"


@dataclass
class KeyLog:
    """A parsed key log: sessions by the phone's ephemeral key, and the lines refused."""

    sessions: dict[bytes, SessionSecrets] = field(default_factory=dict)
    bad_lines: list[int] = field(default_factory=list)  # 1-based line numbers

    def find(self, phone_ephemeral: bytes) -> SessionSecrets | None:
        """Return the session whose phone ephemeral key is ``phone_ephemeral``, if logged."""
        return self.sessions.get(bytes(phone_ephemeral))


def parse_keylog(text: str) -> KeyLog:
    """Parse a key log's text.

    Args:
        text: the file's content.

    Returns:
        The sessions it names (the last line wins for a repeated session) and the numbers
        of the ``CARHUB_SESSION`` lines that could not be read.
    """
    log = KeyLog()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#") or words[0] != KEYLOG_LABEL:
            continue
        secrets = _secrets(words[1:])
        if secrets is None:
            log.bad_lines.append(number)
        else:
            log.sessions[secrets.phone_ephemeral] = secrets
    return log


def _secrets(words: list[str]) -> SessionSecrets | None:
    """The four 32-byte hex fields of a line, or None if they are not exactly that."""
    if len(words) != 4:
        return None
    try:
        values = [bytes.fromhex(w) for w in words]
    except ValueError:
        return None
    if any(len(v) != _FIELD_BYTES for v in values):
        return None
    return SessionSecrets(*values)
