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
from typing import Any

from tests.e2e.ble_helpers import Radio
from tests.e2e.helpers import MEDIA, PHONE, ROOT, poll, spawn, stop

NOTIFICATIONS = ROOT / "samples" / "notifications.json"


@dataclass
class IPhoneProc:
    """One emulated iPhone: a state dir that survives restarts of its process."""

    state_dir: Path
    radio: Radio
    notifications: Path = NOTIFICATIONS
    auto_confirm: bool = True
    btsnoop: Path | None = None
    proc: subprocess.Popen[str] | None = None
    starts: int = 0
    extra: list[str] = field(default_factory=list)

    @property
    def events_path(self) -> Path:
        return self.state_dir.with_name(self.state_dir.name + "-events.jsonl")

    @property
    def log_path(self) -> Path:
        return self.state_dir.with_name(self.state_dir.name + ".log")

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

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every event printed so far (of ``kind`` if given), oldest first."""
        if not self.events_path.exists():
            return []
        out = [json.loads(line) for line in self.events_path.read_text().splitlines() if line]
        return [e for e in out if kind is None or e.get("event") == kind]

    def wait_event(self, kind: str, count: int = 1, timeout: float = 20) -> dict[str, Any]:
        """Wait until ``count`` events of ``kind`` were printed; return the last."""

        def seen() -> list[dict[str, Any]]:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the iPhone exited {self.proc.returncode}: {self.log()}")
            found = self.events(kind)
            return found if len(found) >= count else []

        return poll(seen, timeout=timeout, what=f"{count} iPhone {kind!r} event(s)")[-1]

    def identity(self) -> str:
        """The iPhone's identity address, as its bond file keeps it."""
        data = json.loads((self.state_dir / "ios-bonds.json").read_text())
        return str(data["identity"]["address"])

    def phone_id(self) -> str:
        """The id the car must know this iPhone by: the identity address, 12 hex digits."""
        return self.identity().replace(":", "").lower()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
