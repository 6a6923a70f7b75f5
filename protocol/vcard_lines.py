"""Physical lines to logical lines: the part of the vCard front end that runs per line.

Theory of operation. Most lines of a real export are a whole property by themselves, so
``protocol.vcard_lex.iter_cards`` takes them as they are and sends only the others through
``logical_line``, which joins (on bytes, before any decoding) the RFC 6350 fold (the next
line starts with a space or tab, which is removed), the 2.1 QUOTED-PRINTABLE soft break (a
QP value ending in ``=`` swallows the next line as is) and the unindented base64
continuation lines of a 2.1 ``ENCODING=BASE64`` value, and skips blank and ``#`` comment
lines. ``slow_lines`` names the lines that need it with a few C-speed scans of the whole
file: testing each line in Python cost a third of an import of 10k cards.
"""

from __future__ import annotations

import re

__all__ = ["logical_line", "marker", "slow_lines"]

_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/=]+\s*")
# The first bytes that make a line more than a plain property (see ``slow_lines``).
_SLOW_FIRST = (b"#", b" ", b"\t", b"\r", b"\x0b", b"\x0c")
# A regex with a literal first byte scans fast; an alternation of these would not.
_LINE_START = re.compile(rb"\n(?=[# \t\r\x0b\x0c\n])")
_SOFT_BREAK = re.compile(rb"=\n")


def slow_lines(lines: list[bytes]) -> set[int]:
    """Return the 1-based numbers of the lines ``iter_cards`` must not take as plain.

    A plain line is a whole logical line by itself: not blank, no comment, not folded or
    followed by a fold, no ``=`` at its end (a quoted-printable soft break) and no base64
    word (continuation lines may follow). Scanning the joined file for the others costs a
    few milliseconds. It may name more lines than needed (``BASE64`` in a value), never
    fewer: ``logical_line`` reads any line exactly as a plain one is read.

    Args:
        lines: the file's physical lines (``front_end``'s: no LF inside one).

    Returns:
        Line numbers; every line when ``lines`` hold an LF (line numbers would not map).
    """
    text = b"\n".join(lines)
    if text.count(b"\n") != len(lines) - 1:  # not front_end's output: take nothing as plain
        return set(range(1, len(lines) + 1))
    # An LF then a blank, comment or indented line: that line and the one it may fold into.
    starts = [match.start() for match in _LINE_START.finditer(text)]
    found = [*starts, *(pos + 1 for pos in starts)]
    found.extend(match.start() for match in _SOFT_BREAK.finditer(text))
    upper = text.upper()
    found.extend(_find_all(upper, b"BASE64"))
    found.extend(_find_all(upper, b"ENCODING=B"))
    found.sort()
    slow: set[int] = set()
    index, prev = 0, 0
    for pos in found:  # a position's line number: the LFs before it, plus one
        index += text.count(b"\n", prev, pos)
        prev = pos
        slow.add(index + 1)
    # The first and the last line have no LF on one side: checked as they are.
    if lines and (not lines[0] or lines[0][:1] in _SLOW_FIRST):
        slow.add(1)
    if lines and (not lines[-1] or lines[-1][-1:] == b"="):
        slow.add(len(lines))
    return slow


def _find_all(text: bytes, needle: bytes) -> list[int]:
    """Return the position of every ``needle`` in ``text`` (overlapping ones too)."""
    found: list[int] = []
    pos = text.find(needle)
    while pos >= 0:
        found.append(pos)
        pos = text.find(needle, pos + 1)
    return found


def logical_line(lines: list[bytes], i: int) -> tuple[int, bytes | None]:
    """Read the logical line starting at ``lines[i]``: folds and soft breaks joined.

    Args:
        lines: the file's physical lines.
        i: the index of the logical line's first physical line.

    Returns:
        The index after it, and the line (None for a blank or comment line).
    """
    n = len(lines)
    line = lines[i]
    i += 1
    if not line or line[:1] == b"#" or line.isspace():
        return i, None
    # Parts are joined once at the end: repeated ``+=`` on a multi-megabyte photo
    # folded into thousands of lines would be quadratic.
    parts = [line]
    while i < n and lines[i][:1] in (b" ", b"\t"):
        parts.append(lines[i][1:])
        i += 1
    if len(parts) > 1:
        line = b"".join(parts)
    if line[-1:] == b"=" and _is_qp(line):
        i, line = _join_soft_breaks(lines, i, line)
    elif _is_base64(line):
        parts = [line]
        while i < n and _BASE64_LINE.fullmatch(lines[i]):
            parts.append(lines[i])
            i += 1
        line = b"".join(parts)
    return i, line


def _join_soft_breaks(lines: list[bytes], i: int, line: bytes) -> tuple[int, bytes]:
    """Join quoted-printable soft breaks (``=`` at line end) starting at ``lines[i]``."""
    parts = [line[:-1]]
    while i < len(lines) and not _is_marker_line(lines[i]):
        nxt = lines[i]
        i += 1
        if nxt[-1:] != b"=":
            parts.append(nxt)
            return i, b"".join(parts)
        parts.append(nxt[:-1])
    # Out of lines, or stopped at END:VCARD: keep the dangling "=" so the QP check reports it.
    return i, b"".join(parts) + b"="


def _is_qp(line: bytes) -> bool:
    """Tell whether a logical line's parameters say QUOTED-PRINTABLE."""
    head = line.split(b":", 1)[0].upper()
    return b"QUOTED-PRINTABLE" in head


def _is_base64(line: bytes) -> bool:
    """Tell whether a logical line carries a base64 value (2.1 continuation lines follow)."""
    head = line.split(b":", 1)[0].upper()
    return b"BASE64" in head or b"ENCODING=B" in head


def _is_marker_line(line: bytes) -> bool:
    """Tell whether a physical line is BEGIN:VCARD or END:VCARD (never swallowed by QP)."""
    return marker(line) != b""


def marker(line: bytes) -> bytes:
    """Return ``BEGIN:VCARD`` / ``END:VCARD`` when the line is one, else empty bytes.

    Args:
        line: a physical or logical line.

    Returns:
        The marker, upper-cased, or ``b""``.
    """
    if line[:1] not in (b"B", b"b", b"E", b"e"):
        return b""
    word = line.strip().upper()
    return word if word in (b"BEGIN:VCARD", b"END:VCARD") else b""
