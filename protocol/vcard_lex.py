"""Byte-level front end of the vCard importer: from raw file bytes to raw cards.

Theory of operation. Real exports disagree about almost everything below the property
level, so this module fixes the bytes before anything interprets them:

1. ``front_end``: a UTF-16 file (BOM, or NUL bytes in every other position) is transcoded
   to UTF-8; a UTF-8 BOM is dropped; CRLF, lone CR and the CR CR LF of iPhone exports become
   LF. Line numbers stay those of the original file, because each original line ending
   becomes exactly one LF. (CR CR LF is one line end: read as CR + CRLF it would put a blank
   line inside a folded value and end the fold.)
2. ``iter_cards``: physical lines are joined into logical lines ON BYTES, so a fold that
   splits a multi-byte UTF-8 character is rejoined before any decoding. Three joins exist:
   the RFC 6350 fold (next line starts with a space or tab, which is removed), the 2.1
   QUOTED-PRINTABLE soft break (a QP value ending in ``=`` swallows the next line as is),
   and unindented base64 continuation lines of a 2.1 ``ENCODING=BASE64`` value. Blank
   lines and comment lines (``#`` in the first column, which some exporters write) are
   skipped. ``protocol.vcard_lines`` does this for the few lines that need it, found by
   scanning the whole file; every other line is a property as it stands.
3. Each logical line becomes a ``Prop`` (group, upper-case name, raw parameter text, raw
   value bytes); the part before the first ``:`` is split once per distinct text in a
   file. Parameters are parsed only for properties the importer reads (``parse_params``),
   and values are decoded only on request (``decode_text``, ``decode_binary``).
4. Cards nest: a ``BEGIN:VCARD`` inside an open card (old exporters' embedded cards) opens
   an inner card, and the outer one resumes after the inner ``END:VCARD``.

Errors are ``VCardError`` values yielded in place of a card the file never closes, or kept
in a card's ``warnings`` for a line that is no property; they are never raised out of
``iter_cards``. ``decode_text``/``decode_binary`` raise ``VCardError`` for the caller to
collect (as a warning: the card is kept without that property).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from protocol.errors import VCardError
from protocol.vcard_lines import logical_line, marker, slow_lines

__all__ = [
    "Params",
    "Prop",
    "RawCard",
    "Source",
    "decode_binary",
    "decode_text",
    "front_end",
    "iter_cards",
    "looks_like_vcard",
    "parse_params",
]

# Enough to see the first line of any real file, small enough to keep the check cheap.
_SNIFF_BYTES = 4096
_BAD_QP = re.compile(rb"=(?![0-9A-Fa-f]{2})")
_WS = re.compile(rb"\s+")
_QP_NAMES = frozenset({"QUOTED-PRINTABLE", "QP"})
_B64_NAMES = frozenset({"BASE64", "B"})


@dataclass(slots=True)
class Source:
    """The file after the byte front end: UTF-8 (or legacy 8-bit) lines, LF-separated."""

    lines: list[bytes]
    transcoded: bool  # came from UTF-16, so CHARSET= parameters no longer apply


@dataclass(slots=True)
class Params:
    """Parsed parameters of one property; names and bare values upper-cased."""

    types: list[str] = field(default_factory=list)  # TYPE values and 2.1 bare words, as written
    encoding: str = ""
    charset: str = ""
    value: str = ""
    mediatype: str = ""
    other: dict[str, str] = field(default_factory=dict)


class Prop(msgspec.Struct, gc=False):
    """One logical line: ``[group.]NAME[;params]:value`` with the value still in bytes.

    A ``msgspec.Struct`` (untracked by the garbage collector: it holds no containers)
    because a 10k-card book makes 80,000 of them: a dataclass cost 4x to build.
    """

    line: int
    group: str
    name: str
    param_text: bytes
    raw: bytes


class RawCard(msgspec.Struct):
    """The properties between one BEGIN:VCARD and its END:VCARD, and the lines skipped."""

    line: int
    props: list[Prop]
    warnings: list[VCardError] = msgspec.field(default_factory=list)  # lines that are no property


def front_end(data: bytes) -> Source:
    """Normalise encoding and line endings.

    Args:
        data: the file as read from disk.

    Returns:
        The file split into LF-free lines, UTF-16 transcoded to UTF-8.
    """
    text, transcoded = _transcode(data)
    if b"\r\r" in text:
        text = text.replace(b"\r\r\n", b"\n").replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return Source(text.split(b"\n"), transcoded)
    # The same split in one pass: bytes.splitlines ends lines at LF, CR and CRLF only. It
    # drops what follows the last line end, which split() keeps as an empty last line.
    lines = text.splitlines()
    if text[-1:] in (b"\n", b"\r", b""):
        lines.append(b"")
    return Source(lines, transcoded)


def looks_like_vcard(data: bytes) -> bool:
    """Tell whether ``data`` starts like a vCard file (after BOM, blanks and UTF-16).

    Args:
        data: the file, or at least its first few kilobytes.

    Returns:
        True when the first line that is neither blank nor a ``#`` comment is
        ``BEGIN:VCARD`` (any case).
    """
    head, _ = _transcode(data[:_SNIFF_BYTES])
    head = head.lstrip()
    while head[:1] == b"#":
        head = head.partition(b"\n")[2].lstrip()
    return head[:11].upper() == b"BEGIN:VCARD"


def iter_cards(lines: list[bytes], *, plain: bool = True) -> Iterator[RawCard | VCardError]:
    """Group logical lines into cards, yielding a ``VCardError`` for each card left open.

    A line that is not a property (no ``:``) costs that line only: it becomes one of the
    card's ``warnings``. A ``BEGIN:VCARD`` inside an open card starts a nested card (old
    exporters write them); the outer card goes on after the inner one's ``END:VCARD``, and
    both are yielded, in the order of their ``BEGIN:VCARD``.

    Args:
        lines: the output of ``front_end``.
        plain: take the lines ``slow_lines`` does not name as one-line properties
            without looking (the fast path). False reads every line the long way: the
            reference the fast path is tested against.

    Yields:
        A ``RawCard`` per closed card, a ``VCardError`` per card the file never closes and
        per run of text outside any card; the following cards are still read.
    """
    stack: list[RawCard] = []  # the open cards, innermost last
    closed: list[RawCard | VCardError] = []  # closed inside a still open outer card
    stray = False
    slow = slow_lines(lines) if plain else set(range(1, len(lines) + 1))
    heads: dict[bytes, tuple[str, str, bytes] | tuple[()]] = {}
    props: list[Prop] | None = None  # the innermost open card's
    numbered = enumerate(lines, 1)
    for lineno, line in numbered:
        if lineno in slow:
            end, logical = logical_line(lines, lineno - 1)
            for _ in range(end - lineno):  # the lines it joined
                next(numbered)
            if logical is None:
                continue
            line = logical
        elif props is not None:
            # The fast path: a plain one-line property, its head split once per file.
            head, colon, value = line.partition(b":")
            if colon and head:
                split = heads.get(head)
                if split is None:
                    split = heads[head] = _plain_head(head)
                if split:
                    props.append(Prop(lineno, *split, value))
                    continue
        kind = marker(line)
        if kind == b"BEGIN:VCARD":
            stack.append(RawCard(lineno, []))
            stray = False
        elif not stack:
            if not stray:
                yield VCardError(lineno, "text outside BEGIN:VCARD ... END:VCARD")
            stray = True
        elif kind == b"END:VCARD":
            if len(stack) == 1 and not closed:  # the usual card: nothing nested in it
                yield stack.pop()
            else:
                closed.append(stack.pop())
                if not stack:
                    yield from _in_file_order(closed)
                    closed = []
        else:
            prop = _split_prop(lineno, line)
            if isinstance(prop, VCardError):
                stack[-1].warnings.append(prop)
            else:
                stack[-1].props.append(prop)
        props = stack[-1].props if stack else None
    closed.extend(VCardError(card.line, "card has no END:VCARD") for card in stack)
    yield from _in_file_order(closed)


def parse_params(prop: Prop) -> Params:
    """Parse a property's parameters, accepting 2.1 bare words and 4.0 quoted values.

    Args:
        prop: the property.

    Returns:
        Its parameters.
    """
    params = Params()
    if not prop.param_text:
        return params
    for item in _split_unquoted(prop.param_text.decode("utf-8", "replace"), ";"):
        name, eq, value = item.partition("=")
        name = name.strip().upper()
        if not eq:
            _add_bare(params, name, item.strip())
            continue
        value = value.strip()
        if name == "TYPE":
            # 4.0 quotes the whole list (TYPE="work,voice"), 3.0 writes it bare.
            params.types.extend(t.strip() for t in value.replace('"', "").split(",") if t.strip())
        elif name == "ENCODING":
            params.encoding = value.strip('"').upper()
        elif name == "CHARSET":
            params.charset = value.strip('"').lower()
        elif name == "VALUE":
            params.value = value.strip('"').lower()
        elif name == "MEDIATYPE":
            params.mediatype = value.strip('"').lower()
        elif name:
            params.other[name] = value.strip('"')
    return params


def decode_text(prop: Prop, params: Params, transcoded: bool) -> str:
    """Decode a text value: QUOTED-PRINTABLE, then CHARSET (UTF-8 when absent).

    Args:
        prop: the property.
        params: its parsed parameters.
        transcoded: the file was UTF-16, so the bytes are UTF-8 whatever CHARSET says.

    Returns:
        The value, not yet unescaped.

    Raises:
        VCardError: the quoted-printable is malformed.
    """
    raw = prop.raw
    if params.encoding in _QP_NAMES:
        if _BAD_QP.search(raw):
            raise VCardError(prop.line, f"undecodable quoted-printable in {prop.name}")
        raw = binascii.a2b_qp(raw)
    if params.charset and not transcoded:
        try:
            return raw.decode(codecs.lookup(params.charset).name, "replace")
        except LookupError:
            return raw.decode("utf-8", "replace")  # unknown charset: best effort
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # 8-bit text with no CHARSET is what old Outlook writes: Windows-1252.
        return raw.decode("cp1252", "replace")


def decode_binary(prop: Prop) -> bytes:
    """Decode a base64 value (whitespace from folding ignored, missing padding tolerated).

    Args:
        prop: the property.

    Returns:
        The bytes.

    Raises:
        VCardError: the value is not base64.
    """
    raw = _WS.sub(b"", prop.raw)
    if raw[:5].lower() == b"data:":  # vCard 4.0 data URI
        _, _, raw = raw.partition(b",")
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VCardError(prop.line, f"bad base64 in {prop.name}") from exc


def _transcode(data: bytes) -> tuple[bytes, bool]:
    """Return UTF-8 (or 8-bit) bytes without BOM, and whether UTF-16 was transcoded."""
    if data[:3] == b"\xef\xbb\xbf":
        return data[3:], False
    codec = _utf16_codec(data)
    if codec is None:
        return data, False
    body = data[2:] if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data
    return body.decode(codec, "replace").encode("utf-8", "replace"), True


def _utf16_codec(data: bytes) -> str | None:
    """Detect UTF-16 by BOM, else by NULs in every other byte of the first 256."""
    if data[:2] == b"\xff\xfe":
        return "utf-16-le"
    if data[:2] == b"\xfe\xff":
        return "utf-16-be"
    head = data[:256]
    if len(head) < 8:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    # ASCII-heavy text in UTF-16 has a NUL in nearly every high byte.
    if odd >= 0.8 * (len(head) // 2) and even <= 0.1 * (len(head) // 2):
        return "utf-16-le"
    if even >= 0.8 * (len(head) // 2) and odd <= 0.1 * (len(head) // 2):
        return "utf-16-be"
    return None


def _in_file_order(cards: list[RawCard | VCardError]) -> list[RawCard | VCardError]:
    """Sort nested cards by the line of their BEGIN:VCARD (one card, the usual case, as is)."""
    if len(cards) > 1:
        cards.sort(key=lambda card: card.line)
    return cards


def _split_prop(lineno: int, line: bytes) -> Prop | VCardError:
    """Split ``[group.]NAME[;params]:value``; a line without ``:`` is an error."""
    colon = line.find(b":")
    quote = line.find(b'"')
    if 0 <= quote < colon:
        colon = _colon_outside_quotes(line)
    if colon <= 0:
        return VCardError(lineno, "line has no ':' separator")
    group, name, param_text = _split_head(line[:colon])
    return Prop(lineno, group, name, param_text, line[colon + 1 :])


def _plain_head(head: bytes) -> tuple[str, str, bytes] | tuple[()]:
    """Split a head for the fast path, or ``()`` when ``_split_prop`` must see the line.

    It must for a double quote (the first ``:`` may be inside a quoted value) and for
    ``BEGIN``/``END`` (the line may be a card marker).
    """
    if b'"' in head or head.upper() in (b"BEGIN", b"END"):
        return ()
    return _split_head(head)


def _split_head(head: bytes) -> tuple[str, str, bytes]:
    """Split ``[group.]NAME[;params]`` into group (lower case), name (upper) and params."""
    semi = head.find(b";")
    name_part, param_text = (head, b"") if semi < 0 else (head[:semi], head[semi + 1 :])
    group, _, name = name_part.rpartition(b".")
    return (
        group.decode("utf-8", "replace").lower(),
        name.strip().decode("utf-8", "replace").upper(),
        param_text,
    )


def _colon_outside_quotes(line: bytes) -> int:
    """Return the index of the first ``:`` not inside a double-quoted parameter value."""
    quoted = False
    for i, byte in enumerate(line):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x3A and not quoted:
            return i
    return -1


def _split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes."""
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _add_bare(params: Params, upper: str, written: str) -> None:
    """Record a 2.1 bare parameter: an encoding word or a type."""
    if upper in _QP_NAMES or upper in _B64_NAMES or upper in ("8BIT", "7BIT"):
        params.encoding = upper
    elif upper:
        params.types.append(written)
