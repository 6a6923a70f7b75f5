"""``phone-bridge emulate ios``: an emulated iPhone (AMS and ANCS, no app) on the virtual radio.

It is emulation only: ``--radio`` must be the emulated radio (``tcp-client:HOST:PORT``).
It runs until Ctrl-C (exit 130) or SIGTERM (exit 0), reconnecting whenever the car drops,
and reopening the radio with backoff whenever the radio process restarts.

asyncio, Bumble and the radio are imported inside the functions: every ``phone-bridge``
command imports this module to register ``emulate``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from phone_bridge.cli.app import ROOT, fail, run_flow
from phone_bridge.cli.coerce import LeanGroup
from phone_bridge.cli.options import Btsnoop, Json
from phone_bridge.cli.pbap_options import (
    CallsOpt,
    ContactsOpt,
    OwnerOpt,
    PbapVersionOpt,
    read_optional_books,
)
from phone_bridge.errors import BadInput, BridgeError, CarUnreachable
from shell.radio import is_emulated

__all__ = ["emulate_app", "ios_cmd"]

log = logging.getLogger("phone_bridge")

emulate_app = typer.Typer(
    cls=LeanGroup,
    help="Emulated phones for labs and tests (EMULATION ONLY: on the virtual radio).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

AncsOffAfter = Annotated[
    float | None,
    typer.Option("--ancs-off-after", metavar="SECONDS",
                 help="Withdraw ANCS this long after the first connection (Share System "
                 "Notifications turned off), indicating Service Changed."),
]
AncsOnAfter = Annotated[
    float | None,
    typer.Option("--ancs-on-after", metavar="SECONDS",
                 help="Offer ANCS again this long after the first connection."),
]

AutoConfirm = Annotated[
    bool,
    typer.Option("--auto-confirm", help="EMULATION ONLY: accept the pairing code without asking."),
]
IosCar = Annotated[
    str | None, typer.Option("--car", help="Connect only to this car (name or id prefix).")
]
IosWait = Annotated[
    bool,
    typer.Option("--wait", help="With --contacts: do not open Classic to the car after the LE "
                 "bond; wait for the car to connect over Classic (POST /api/classic/connect), "
                 "answering its SSP pairing."),
]


def ios_cmd(
    radio: Annotated[
        str,
        typer.Option("--radio", help="The emulated radio, tcp-client:HOST:PORT (required)."),
    ],
    name: Annotated[str, typer.Option("--name", help="The phone's device name.")] = "iPhone",
    media: Annotated[
        Path | None,
        typer.Option("--media", help="A folder of audio files or an M3U playlist for AMS."),
    ] = None,
    notifications: Annotated[
        Path | None,
        typer.Option(
            "--notifications",
            help="A JSON list of notifications to post over ANCS: app_id, app_name, title, "
            "subtitle, message, category (lower-case ANCS name), actions {positive, "
            "negative}, delay (seconds after the car subscribes), remove_after.",
        ),
    ] = None,
    auto_confirm: AutoConfirm = False,
    car: IosCar = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir",
                     help="Where its identity and bonds persist (ios-bonds.json, mode 0600; "
                     "default: the root --state-dir)."),
    ] = None,
    ancs_off_after: AncsOffAfter = None,
    ancs_on_after: AncsOnAfter = None,
    contacts: ContactsOpt = None,
    calls: CallsOpt = None,
    owner: OwnerOpt = "Emulated Owner",
    wait: IosWait = False,
    pbap_version: PbapVersionOpt = "1.2",
    btsnoop: Btsnoop = None,
    as_json: Json = False,
) -> None:
    """Emulate an iPhone: find a car by its ANCS solicitation, bond, serve AMS and ANCS.

    With --json every event is one JSON line on stdout: pairing-code, bonded, connected,
    disconnected (reason "radio lost" when the radio restarts), scanning, remote-command,
    notification-posted, action, notification-removed, services-changed; with --contacts
    also pbap-connected, pulled, book-changed (it serves PBAP on Classic from the same
    controller, and its LE identity is then the public address, its BR/EDR address).
    """
    if not is_emulated(radio):
        msg = f"emulate ios is emulation only: --radio must be tcp-client:HOST:PORT, got {radio!r}"
        raise fail(BadInput(msg), as_json)
    if auto_confirm:
        log.warning("AUTO-CONFIRM IS ON: codes are accepted without a human (emulation only)")
    where = state_dir or ROOT.state_dir
    books = read_optional_books(contacts, calls, owner, where, as_json, wait=wait,
                                version=pbap_version)
    phone = _build(radio, name, media, notifications, auto_confirm, car, where, btsnoop,
                   as_json, books, (wait, pbap_version))
    pairs = ((ancs_off_after, False), (ancs_on_after, True))
    run_flow(_serve(phone, [(t, on) for t, on in pairs if t is not None]), as_json)


def _build(radio: str, name: str, media: Path | None, notifications: Path | None,
           auto_confirm: bool, car: str | None, state_dir: Path, btsnoop: Path | None,
           as_json: bool, books: Any = None, pbap: tuple[bool, str] = (False, "1.2")) -> Any:
    """Read the files and make the phone, or fail with one line (nothing started)."""
    from phone_bridge.cli.inputs import read_media
    from phone_bridge.ios import IPhone, IPhoneOptions, load_notifications

    if media is not None and str(media).startswith("mpris:"):
        # AMS serves the sample player's queue, which an MPRIS player does not expose.
        raise fail(BadInput("emulate ios: --media takes a folder or a playlist, not mpris:"),
                   as_json)  # fmt: skip
    player = read_media(media, as_json) if media else None
    try:
        specs = load_notifications(notifications) if notifications else []
        options = IPhoneOptions(
            state_dir=state_dir, name=name, player=player, notifications=specs,
            confirm=_ask, auto_confirm=auto_confirm, car=car, btsnoop=btsnoop,
            emit=_printer(as_json), books=books, pbap_wait=pbap[0], pbap_version=pbap[1],
        )
        return IPhone(radio, options)
    except BridgeError as exc:
        raise fail(exc, as_json) from None


def _printer(as_json: bool) -> Any:
    def emit(event: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(event), flush=True)
    return emit


async def _ask(code: str) -> bool:
    """Ask on stdin whether the car shows the same code (EOF or anything but y: no)."""
    print(f"Pairing code {code[:3]} {code[3:]}: does the car show the same code? [y/n] ",
          end="", file=sys.stderr, flush=True)
    import asyncio

    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def on_readable() -> None:
        if not answer.done():
            answer.set_result(sys.stdin.readline())

    try:
        loop.add_reader(sys.stdin.fileno(), on_readable)
    except (OSError, ValueError, NotImplementedError) as exc:
        log.warning("cannot read an answer from stdin (%s): pairing refused", exc)
        return False
    try:
        return (await answer).strip().lower() in ("y", "yes")
    finally:
        loop.remove_reader(sys.stdin.fileno())


async def _toggle_ancs(phone: Any, toggles: list[tuple[float, bool]]) -> None:
    """Withdraw or offer ANCS at the given seconds after the first connection."""
    import asyncio

    await phone.connected.wait()
    elapsed = 0.0
    for at, on in sorted(toggles):
        await asyncio.sleep(max(0.0, at - elapsed))
        elapsed = max(elapsed, at)
        await phone.set_services(ancs=on)


async def _serve(phone: Any, toggles: list[tuple[float, bool]] | None = None) -> None:
    """Run the phone; SIGTERM stops it cleanly (exit 0), as Ctrl-C does (exit 130)."""
    import asyncio

    from radio.hci import RadioUnavailableError

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(phone.run())
    toggler = asyncio.ensure_future(_toggle_ancs(phone, toggles)) if toggles else None
    stopped_by: signal.Signals | None = None

    def on_signal(sig: signal.Signals) -> None:
        nonlocal stopped_by
        stopped_by = sig
        task.cancel()

    # Both signals are handled here, not left to asyncio.run: Ctrl-C must stop the phone
    # even when this process was started with SIGINT ignored (asyncio.run then installs
    # no handler of its own, and the phone would run on).
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        await task
    except RadioUnavailableError as exc:
        raise CarUnreachable(f"no emulated radio: {exc}") from None
    except asyncio.CancelledError:
        if stopped_by is None:
            raise
        if stopped_by is signal.SIGINT:
            raise KeyboardInterrupt from None  # run_flow: exit 130
        log.info("stopped (SIGTERM)")
    finally:
        if toggler is not None:
            toggler.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
