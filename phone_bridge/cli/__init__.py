"""``phone-bridge``, the phone's command line: one module per command on one typer app.

    app        the typer app, the root options (--state-dir, -v), failure reporting
    options    the options the commands share, declared once; ``CarOptions``
    session    ``connect_car``: resolve, open the transport and session, close
    inputs     the user's vCard file and media, read before connecting
    discover, pair, sync, run, unpair, status: the commands
    emulate    ``emulate ios``: an emulated iPhone (AMS/ANCS, PBAP with --contacts)
    emulate_android  ``emulate android``: a phone that offers only PBAP on Classic

The commands are registered here, in the order ``phone-bridge --help`` lists them.
"""

from __future__ import annotations

from phone_bridge.cli import discover, emulate, emulate_android, pair, run, status, sync, unpair
from phone_bridge.cli.app import app, main

__all__ = ["app", "main"]

app.command("discover")(discover.discover_cmd)
app.command("pair")(pair.pair_cmd)
app.command("sync")(sync.sync_cmd)
app.command("run")(run.run_cmd)
app.command("unpair")(unpair.unpair_cmd)
app.command("status")(status.status_cmd)
emulate.emulate_app.command("ios")(emulate.ios_cmd)
emulate.emulate_app.command("android")(emulate_android.android_cmd)
app.add_typer(emulate.emulate_app, name="emulate")
