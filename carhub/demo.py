"""The demo: an emulated car and phone, paired and syncing, until Ctrl-C.

``python -m carhub.demo`` (the README's first command runs it) does what a user would do
by hand, with the real CLIs as separate processes:

1. generate a 2,000-contact vCard file (with a few photos) into ``.demo/``;
2. start ``carhub run`` with its pairing window open and mDNS on loopback;
3. run ``phone-bridge pair``: the code the phone prints is checked against the code on the
   car's dashboard API, then accepted on both sides, and the demo says so on screen;
4. start ``phone-bridge run`` with the contacts and the sample music, wait for the first
   sync, and print the dashboard URL. Ctrl-C stops both processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import typer
from rich.console import Console

from shell.sample_data import generate_vcards

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
console = Console()


def _fail(msg: str) -> None:
    console.print(f"[bold red]demo failed:[/] {msg}")
    raise typer.Exit(1)


def _read_json_line(stream: IO[str], want: str, timeout: float) -> dict[str, Any]:
    """Read stdout lines until a JSON object with ``event == want`` arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if obj.get("event") == want:
            return dict(obj)
    _fail(f"no '{want}' event within {timeout:g} s")
    raise AssertionError  # unreachable


def run(
    contacts: int = typer.Option(2000, help="How many sample contacts to generate."),
    ui: str = typer.Option("127.0.0.1:8080", help="Dashboard address (port 0: any free port)."),
    workdir: Path = typer.Option(ROOT / ".demo", help="State and sample data (wiped first)."),
) -> None:
    """Run the CarHub demo until Ctrl-C."""
    # SIGTERM stops the demo like Ctrl-C, so the car and phone are never left behind.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ui = _free_or_any(ui)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    vcf = workdir / "contacts.vcf"
    vcf.write_bytes(generate_vcards(contacts, seed=7, photos=20))
    console.print(f"[bold]CarHub demo[/]: generated {contacts:,} contacts in {vcf}")

    logs = (workdir / "car.log").open("w")
    car = subprocess.Popen(
        [str(BIN / "carhub"), "run", "--name", "CarHub Demo Car", "--state-dir",
         str(workdir / "car"), "--listen", "127.0.0.1:0", "--ui", ui, "--mdns-interface",
         "127.0.0.1", "--pairing", "open", "--json"],
        stdout=subprocess.PIPE, stderr=logs, text=True,
    )  # fmt: skip
    procs: list[subprocess.Popen[str]] = [car]
    try:
        _demo(car, procs, workdir, vcf)
        console.print("[dim]Ctrl-C to stop.[/]")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        _fail(f"a process exited; see the logs in {workdir}")
    except KeyboardInterrupt:
        console.print("\nstopping…")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def _demo(
    car: subprocess.Popen[str], procs: list[subprocess.Popen[str]], workdir: Path, vcf: Path
) -> None:
    assert car.stdout is not None
    ready = _read_json_line(car.stdout, "ready", 20)
    api = ready["dashboard"].rstrip("/")
    console.print(f"car [bold]{ready['name']}[/] is up (id {ready['id']}), advertising over mDNS")

    phone = [str(BIN / "phone-bridge"), "--state-dir", str(workdir / "phone")]
    where = ["--mdns-interface", "127.0.0.1"]
    pairing = subprocess.Popen(
        [*phone, "pair", ready["id"], *where, "--name", "Demo Phone", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert pairing.stdin and pairing.stderr and pairing.stdout
    phone_code = _read_code(pairing.stderr)
    car_code = _car_code(api)
    shown = f"{car_code['code'][:3]} {car_code['code'][3:]}"
    if car_code["code"] != phone_code:
        pairing.kill()
        _fail(f"codes differ: car {car_code['code']}, phone {phone_code}")
    console.print(
        f"pairing code [bold cyan]{shown}[/] is on both screens: "
        "[yellow]confirmed automatically by the demo[/] (car: Accept, phone: y)"
    )
    httpx.post(f"{api}/api/pairing/requests/{car_code['id']}/accept", timeout=5)
    out, err = pairing.communicate("y\n", timeout=30)
    if pairing.returncode != 0:
        _fail(f"pairing failed: {err.strip().splitlines()[-1] if err.strip() else out}")
    console.print(f"paired: {json.loads(out)['car']['fingerprint']} (car key fingerprint)")

    runner = subprocess.Popen(
        [*phone, "run", ready["id"], *where, "--name", "Demo Phone", "--contacts", str(vcf),
         "--media", str(ROOT / "samples" / "media"), "--json"],
        stdout=subprocess.PIPE, stderr=(workdir / "phone.log").open("w"), text=True,
    )  # fmt: skip
    procs.append(runner)
    assert runner.stdout is not None
    synced = _read_json_line(runner.stdout, "synced", 60)
    console.print(
        f"synced {synced['added']:,} contacts in {synced['seconds']:.2f} s; "
        "now playing the sample music"
    )
    console.print(f"\n[bold green]Dashboard:[/] {ready['dashboard']}\n")
    console.print(f"logs: {workdir}/car.log, {workdir}/phone.log")


def _free_or_any(ui: str) -> str:
    """Keep the requested dashboard address if it is free, else let the OS pick a port."""
    host, _, port = ui.rpartition(":")
    with socket.socket() as s:
        try:
            s.bind((host or "127.0.0.1", int(port)))
        except OSError:
            console.print(f"[yellow]{ui} is busy; using another port[/]")
            return f"{host or '127.0.0.1'}:0"
    return ui


def _read_code(stderr: IO[str]) -> str:
    """Read the phone's 'Pairing code: 123 456' prompt line."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = stderr.readline()
        if not line:
            break
        m = re.search(r"Pairing code: (\d{3}) (\d{3})", line)
        if m:
            return m.group(1) + m.group(2)
        if "error" in line:
            _fail(line.strip())
    _fail("the phone did not show a pairing code")
    raise AssertionError


def _car_code(api: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        reqs = httpx.get(f"{api}/api/pairing/requests", timeout=5).json()
        if reqs:
            return dict(reqs[0])
        time.sleep(0.05)
    _fail("the car did not show a pairing request")
    raise AssertionError


def main() -> None:
    """Entry point for ``python -m carhub.demo``."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    typer.run(run)


if __name__ == "__main__":
    main()
