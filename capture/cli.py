"""``carhub-capture decode``: print every CarHub message of a capture.

Exit codes: 0 the whole capture was read; 1 the file is not a capture, or is cut short or
corrupt (what came before is still printed); 2 bad usage (a file that cannot be read).
Every error is one line on stderr (``carhub-capture: error: ...``), never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from protocol.capture.conversation import Decoded
from protocol.capture.decode import decode_capture
from protocol.capture.keylog import KeyLog, parse_keylog

__all__ = ["app", "main"]

app = typer.Typer(
    help="Decode CarHub captures: btsnoop files of BLE (the car's, the phone's or "
    "carhub-radio's) and pcap/pcapng files of the LAN WebSocket traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
EXIT_BAD_CAPTURE, EXIT_USAGE = 1, 2
# Text output shortens what would flood a terminal: --json prints every field in full.
_MAX_TEXT = 72
_MAX_ITEMS = 3
# Controls a capture's strings (names, contacts: the peer's choice) may hold: C0, DEL, C1
# (U+009B is a CSI to some terminals) and bidi overrides. Shown as \uXXXX, never obeyed;
# json.dumps leaves all but C0 raw. Inside JSON they only occur in strings, where the
# escape is the same JSON.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@app.callback()
def _root() -> None:
    """CarHub capture tools."""


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"carhub-capture: error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def decode(
    capture: Annotated[Path, typer.Argument(help="A btsnoop, pcap or pcapng file.")],
    keylog: Annotated[
        Path | None,
        typer.Option(
            "--keylog",
            help="The key log that `carhub run --keylog` / `phone-bridge ... --keylog` "
            "wrote: its sessions are decrypted.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One JSON object a line: {"time", "direction", "message", "fields"}.',
        ),
    ] = False,
) -> None:
    """Print every message with its time, direction and fields.

    Hello and pairing are plaintext and always shown; session messages are decrypted when
    the key log has their session, and shown as "encrypted" with counter and length
    otherwise.
    """
    data = _read(capture)
    keys = _keys(keylog) if keylog is not None else None
    result = decode_capture(data, keys)
    if as_json:
        for msg in result.messages:
            print(_json_line(msg))
    else:
        _print_text(result.messages, result.format, keys)
    if result.error is not None:
        raise _fail(f"{capture}: {result.error}", EXIT_BAD_CAPTURE)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None


def _keys(path: Path) -> KeyLog:
    """Read the key log; a line it cannot use is reported (one line) and skipped."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise _fail(f"cannot read the key log {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    keys = parse_keylog(text)
    if keys.bad_lines:
        lines = ", ".join(str(n) for n in keys.bad_lines[:10])
        typer.echo(f"carhub-capture: warning: {path}: lines {lines} are not key lines", err=True)
    return keys


def _defang(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _json_line(msg: Decoded) -> str:
    """One ``--json`` line: UTF-8 kept, every control escaped."""
    return _defang(json.dumps(_json(msg), ensure_ascii=False))


def _json(msg: Decoded) -> dict[str, Any]:
    return {"time": msg.time, "direction": msg.direction, "message": msg.message,
            "fields": msg.fields}  # fmt: skip


def _print_text(messages: list[Decoded], fmt: str, keys: KeyLog | None) -> None:
    """A line per message, under a heading per link; rich colours on a terminal."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    link = None
    for msg in messages:
        if msg.link != link:
            link = msg.link
            console.print(f"[bold]── {escape(link)}[/bold]")
        colour = "cyan" if msg.direction == "phone->car" else "magenta"
        counter = f"#{msg.counter}" if msg.counter is not None else ""
        style = "dim" if msg.message == "encrypted" else "bold"
        name = f"[{style}]{msg.message}[/{style}]"
        shown = {k: v for k, v in msg.fields.items() if not (counter and k == "counter")}
        fields = escape(_text_fields(shown))
        direction = f"[{colour}]{msg.direction}[/{colour}]"
        console.print(f"{msg.time:10.6f}  {direction} {counter:>5} {name} {fields}")
    sealed = sum(m.message == "encrypted" for m in messages)
    hint = "" if not sealed or keys else " (give --keylog to decrypt the session)"
    total = f"{len(messages)} messages in this {fmt or 'file'}, {sealed} encrypted{hint}"
    console.print(f"[dim]{total}[/dim]")


def _text_fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in fields.items())


def _short(value: Any) -> str:
    if isinstance(value, list) and (len(value) > _MAX_ITEMS or len(str(value)) > _MAX_TEXT):
        return f"[{len(value)} items]"
    plain = not isinstance(value, str | list | dict)
    text = _defang(str(value) if plain else json.dumps(value, ensure_ascii=False))
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
