"""ANCS Data Source: the phone's answers, their split at ATT MTU - 3, and their reassembly.

The car sends one Get command at a time and reads its answer with one ``ResponseReader``;
the answer is checked against that command (same command id, uid or app id, only the
attributes asked for, each once) and bounded by ``MAX_RESPONSE``. Layouts: section 11.2.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from protocol.apple import bad, utf8
from protocol.apple._ancs_ids import (
    MAX_RESPONSE,
    AppAttributes,
    CommandId,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttributes,
    Response,
)

__all__ = ["ResponseReader", "encode_response", "split"]


def encode_response(resp: Response, order: Sequence[int]) -> bytes:
    """Encode a Data Source answer (phone side), attributes in ``order``.

    An id of ``order`` missing from ``resp.values`` is sent empty, as an iPhone sends an
    absent attribute. The phone truncates values to the command's max lengths beforehand.

    Raises:
        ValueError: a value over 65535 bytes, or a bad app id.
    """
    if isinstance(resp, NotificationAttributes):
        out = bytearray(struct.pack("<BI", CommandId.GET_NOTIFICATION_ATTRIBUTES, resp.uid))
    else:
        app = utf8(resp.app_id)
        if not app or b"\0" in app:
            raise ValueError("app id is empty or has NUL")
        out = bytearray((CommandId.GET_APP_ATTRIBUTES,)) + app + b"\0"
    for a in order:
        raw = utf8(resp.values.get(a, ""))
        if len(raw) > 0xFFFF:
            raise ValueError(f"attribute {a} of {len(raw)} bytes does not fit its length")
        out += struct.pack("<BH", a, len(raw)) + raw
    return bytes(out)


def split(data: bytes, mtu: int) -> list[bytes]:
    """Split a Data Source answer into notifications of at most ``mtu - 3`` bytes.

    Raises:
        ValueError: ``mtu`` below 23 (the ATT minimum).
    """
    if mtu < 23:
        raise ValueError(f"ATT MTU {mtu} is below the minimum 23")
    step = mtu - 3
    return [data[i : i + step] for i in range(0, len(data), step)]


class ResponseReader:
    """Reassemble the Data Source answer to one command, from any split.

    Args:
        command: the Get command the car wrote (its uid or app id and attribute ids are
            what the answer must match).
    """

    def __init__(self, command: GetNotificationAttributes | GetAppAttributes) -> None:
        self._command = command
        self._wanted = frozenset(a for a, _ in command.attributes)
        self._buf = bytearray()
        self._done = False
        self._failed = False

    def feed(self, chunk: bytes) -> Response | None:
        """Add one Data Source notification.

        Returns:
            The answer once every requested attribute arrived, else None.

        Raises:
            AppleDataError: the wrong command id, uid or app id; an attribute id not asked
                for (or twice); over ``MAX_RESPONSE`` bytes; bytes after the end; or any feed
                after the answer completed or failed.
        """
        if self._done or self._failed:
            raise bad("data source notification after the answer ended")
        self._buf += chunk
        try:
            return self._parse()
        except Exception:
            self._failed = True
            raise

    def _parse(self) -> Response | None:
        buf = bytes(self._buf)
        if len(buf) > MAX_RESPONSE:
            raise bad(f"data source answer over {MAX_RESPONSE} bytes")
        cmd = self._command
        expected_id = (
            CommandId.GET_APP_ATTRIBUTES
            if isinstance(cmd, GetAppAttributes)
            else CommandId.GET_NOTIFICATION_ATTRIBUTES
        )
        if not buf:
            return None
        if buf[0] != expected_id:
            raise bad(f"data source answer to command {buf[0]}, not {int(expected_id)}")
        if isinstance(cmd, GetAppAttributes):
            app = utf8(cmd.app_id) + b"\0"
            head = buf[1 : 1 + len(app)]
            if head != app[: len(head)]:
                raise bad("data source answer for another app")
            if len(head) < len(app):
                return None
            i = 1 + len(app)
        else:
            if len(buf) < 5:
                return None
            uid = int.from_bytes(buf[1:5], "little")
            if uid != cmd.uid:
                raise bad(f"data source answer for notification {uid}, not {cmd.uid}")
            i = 5
        values = self._attributes(buf, i)
        if values is None:
            return None
        self._done = True
        if isinstance(cmd, GetAppAttributes):
            return AppAttributes(cmd.app_id, values)
        return NotificationAttributes(cmd.uid, values)

    def _attributes(self, buf: bytes, i: int) -> dict[int, str] | None:
        values: dict[int, str] = {}
        while i + 3 <= len(buf):
            a, length = struct.unpack_from("<BH", buf, i)
            if a not in self._wanted or a in values:
                raise bad(f"data source attribute {a} was not asked for or came twice")
            if len(buf) - i - 3 < length and i + 3 + length > MAX_RESPONSE:
                # Refuse now: the declared length can never fit within the bound.
                raise bad(f"attribute {a} of {length} bytes overruns {MAX_RESPONSE}")
            if i + 3 + length > len(buf):
                return None
            values[a] = buf[i + 3 : i + 3 + length].decode("utf-8", errors="replace")
            i += 3 + length
            if len(values) == len(self._wanted):
                if i != len(buf):
                    raise bad(f"{len(buf) - i} bytes after the data source answer")
                return values
        return None
