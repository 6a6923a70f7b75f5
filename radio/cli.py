"""``carhub-radio``: the virtual Bluetooth radio shared by emulated cars and phones."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import typer

from radio.server import RadioServer

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, help="The CarHub virtual Bluetooth radio (LE and Classic).")


@app.callback()
def _root() -> None:
    """The CarHub virtual Bluetooth radio (LE and Classic)."""


@app.command()
def serve(
    listen: str = typer.Option(
        "127.0.0.1:7000", "--listen", help="HOST:PORT to accept HCI (H4 over TCP) clients on."
    ),
    btsnoop: Path | None = typer.Option(
        None, "--btsnoop", help="Write all HCI traffic to this btsnoop file (Wireshark, tshark)."
    ),
) -> None:
    """Serve one virtual air; each TCP client (tcp-client:HOST:PORT) gets its own controller."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        typer.echo(f"carhub-radio: --listen must be HOST:PORT, got {listen!r}", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(_serve(host, int(port_text), btsnoop))
    except OSError as exc:
        typer.echo(f"carhub-radio: cannot listen on {listen}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc


async def _serve(host: str, port: int, btsnoop: Path | None) -> None:
    """Run the radio until SIGINT or SIGTERM."""
    server = RadioServer(host, port, btsnoop)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
        server.say("stopped")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
