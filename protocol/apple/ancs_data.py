"""ANCS Data Source: the phone's answers, their split at ATT MTU - 3, and their reassembly.

The car sends one Get command at a time and reads its answer with one ``ResponseReader``;
the answer is checked against that command (same command id, uid or app id, only the
attributes asked for, each once) and bounded by ``MAX_RESPONSE``. Layouts: section 11.2.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from protocol.apple import bad, cut_utf8, utf8
from protocol.apple._ancs_ids import (
    MAX_RESPONSE,
    AppAttributes,
    CommandId,
    GetAppAttributes,
    GetNotificationAttributes,
    NotificationAttributes,
    Response,
)

__all__ = ["ResponseReader", "encode_answer", "encode_response", "split"]


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


def encode_answer(
    command: GetNotificationAttributes | GetAppAttributes, values: Mapping[int, str]
) -> bytes:
    """Encode the phone's whole answer to ``command``, as an iPhone builds it.

    Attributes come in the command's order; each value is cut to the command's max length
    (in bytes, at a UTF-8 character boundary) and a value absent from ``values`` is sent
    empty.

    Raises:
        ValueError: as ``encode_response``.
    """
    cut: dict[int, str] = {}
    for a, max_len in command.attributes:
        raw = utf8(values.get(a, ""))
        cut[a] = cut_utf8(raw, max_len if max_len is not None else len(raw)).decode()
    order = [a for a, _ in command.attributes]
    if isinstance(command, GetAppAttributes):
        return encode_response(AppAttributes(command.app_id, cut), order)
    return encode_response(NotificationAttributes(command.uid, cut), order)


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

    Parsing is incremental (each byte is looked at once) and the buffer never grows past
    ``MAX_RESPONSE``, so a hostile phone costs at most 8 KiB and linear time per answer.

    Args:
        command: the Get command the car wrote (its uid or app id and attribute ids are
            what the answer must match).
    """

    def __init__(self, command: GetNotificationAttributes | GetAppAttributes) -> None:
        self._command = command
        self._wanted = frozenset(a for a, _ in command.attributes)
        self._buf = bytearray()
        self._pos: int | None = None  # start of the next attribute once the head checked
        self._values: dict[int, str] = {}
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
        try:
            if len(self._buf) + len(chunk) > MAX_RESPONSE:
                raise bad(f"data source answer over {MAX_RESPONSE} bytes")
            self._buf += chunk
            return self._advance()
        except Exception:
            self._failed = True
            raise

    def _head(self) -> int | None:
        """Check the command id and uid or app id; the offset of the attributes, or None."""
        buf, cmd = self._buf, self._command
        is_app = isinstance(cmd, GetAppAttributes)
        expected = CommandId.GET_APP_ATTRIBUTES if is_app else CommandId.GET_NOTIFICATION_ATTRIBUTES
        if not buf:
            return None
        if buf[0] != expected:
            raise bad(f"data source answer to command {buf[0]}, not {int(expected)}")
        if isinstance(cmd, GetAppAttributes):
            app = utf8(cmd.app_id) + b"\0"
            head = bytes(buf[1 : 1 + len(app)])
            if head != app[: len(head)]:  # refuse at the first byte that differs
                raise bad("data source answer for another app")
            return 1 + len(app) if len(head) == len(app) else None
        if len(buf) < 5:
            return None
        uid = int.from_bytes(buf[1:5], "little")
        if uid != cmd.uid:
            raise bad(f"data source answer for notification {uid}, not {cmd.uid}")
        return 5

    def _advance(self) -> Response | None:
        if self._pos is None:
            self._pos = self._head()
            if self._pos is None:
                return None
        buf, values = self._buf, self._values
        while self._pos + 3 <= len(buf):
            a, length = struct.unpack_from("<BH", buf, self._pos)
            if a not in self._wanted or a in values:
                raise bad(f"data source attribute {a} was not asked for or came twice")
            end = self._pos + 3 + length
            if end > MAX_RESPONSE:  # the length can never fit: refuse before its bytes
                raise bad(f"attribute {a} of {length} bytes overruns {MAX_RESPONSE}")
            if end > len(buf):
                return None
            values[a] = bytes(buf[self._pos + 3 : end]).decode("utf-8", errors="replace")
            self._pos = end
            if len(values) == len(self._wanted):
                if end != len(buf):
                    raise bad(f"{len(buf) - end} bytes after the data source answer")
                self._done = True
                cmd = self._command
                if isinstance(cmd, GetAppAttributes):
                    return AppAttributes(cmd.app_id, dict(values))
                return NotificationAttributes(cmd.uid, dict(values))
        return None
