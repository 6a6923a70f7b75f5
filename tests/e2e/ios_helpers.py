"""Drive ``phone-bridge emulate ios`` (the emulated iPhone) as a subprocess.

Its ``--json`` events go to a file that the test reads as it grows, so a test can wait for
"the iPhone printed its code" or "the iPhone logged the action" the way a user watches the
terminal. Processes go through ``tests.e2e.helpers.spawn``, so the fixtures' ``stop_all``
tears them down even when a test fails.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.ble_helpers import Radio
from tests.e2e.helpers import MEDIA, PHONE, ROOT, EventLines, spawn, stop

NOTIFICATIONS = ROOT / "samples" / "notifications.json"


@dataclass
class IPhoneProc(EventLines):
    """One emulated iPhone: a state dir that survives restarts of its process."""

    label = "iPhone"

    state_dir: Path
    radio: Radio
    notifications: Path = NOTIFICATIONS
    auto_confirm: bool = True
    btsnoop: Path | None = None
    proc: subprocess.Popen[str] | None = None
    starts: int = 0
    extra: list[str] = field(default_factory=list)

    def start(self) -> IPhoneProc:
        """Start (or restart) the iPhone; its events append to one file across restarts."""
        self.starts += 1
        args = [PHONE, "--state-dir", str(self.state_dir), "emulate", "ios",
                "--radio", self.radio.spec, "--media", str(MEDIA),
                "--notifications", str(self.notifications), "--json", *self.extra]  # fmt: skip
        args += ["--auto-confirm"] if self.auto_confirm else []
        args += ["--btsnoop", str(self.btsnoop)] if self.btsnoop else []
        with self.events_path.open("a") as out, self.log_path.open("a") as err:
            self.proc = spawn(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def identity(self) -> str:
        """The iPhone's identity address, as its bond file keeps it."""
        data = json.loads((self.state_dir / "ios-bonds.json").read_text())
        return str(data["identity"]["address"])

    def phone_id(self) -> str:
        """The id the car must know this iPhone by: the identity address, 12 hex digits."""
        return self.identity().replace(":", "").lower()
