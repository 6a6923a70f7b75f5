"""``phone-bridge``, the phone's command line: one module per command on one typer app.

    app        the typer app, the root options (--state-dir, -v), failure reporting
    options    the options the commands share, declared once; ``CarOptions``
    session    ``connect_car``: resolve, open the transport and session, close
    inputs     the user's vCard file and media, read before connecting
    discover, pair, sync, run, unpair, status: the commands
    emulate    ``emulate ios``: an emulated iPhone (AMS/ANCS, PBAP with --contacts)
    emulate_android  ``emulate android``: a phone that offers only PBAP on Classic

The commands are registered here, in the order ``phone-bridge --help`` lists them.
Importing this package must stay cheap (every command, ``--help`` included, pays for it):
the command modules import only typer and the option aliases at their top, and the rest
(transports, discovery, the engine, rich) inside the functions; ``coerce`` keeps typer
from importing pydantic to parse the options.
"""

from __future__ import annotations

from phone_bridge.cli import discover, emulate, emulate_android, pair, run, status, sync, unpair
from phone_bridge.cli.app import app, main
from phone_bridge.cli.coerce import LeanCommand

__all__ = ["app", "main"]

app.command("discover", cls=LeanCommand)(discover.discover_cmd)
app.command("pair", cls=LeanCommand)(pair.pair_cmd)
app.command("sync", cls=LeanCommand)(sync.sync_cmd)
app.command("run", cls=LeanCommand)(run.run_cmd)
app.command("unpair", cls=LeanCommand)(unpair.unpair_cmd)
app.command("status", cls=LeanCommand)(status.status_cmd)
emulate.emulate_app.command("ios", cls=LeanCommand)(emulate.ios_cmd)
emulate.emulate_app.command("android", cls=LeanCommand)(emulate_android.android_cmd)
app.add_typer(emulate.emulate_app, name="emulate")
