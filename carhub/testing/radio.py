"""``Radio``: one ``carhub-radio serve`` process, the emulated air cars and phones share."""

from __future__ import annotations

import subprocess
from pathlib import Path

from carhub.testing.processes import Daemon, Processes, console_script, free_port, wait_for

__all__ = ["Radio"]


class Radio(Daemon):
    """A ``carhub-radio serve`` subprocess on a fixed loopback port.

    Give it to ``carhub_car(radio=...)`` and ``carhub_phone(transport="ble", radio=...)``.

    Args:
        processes: where the process is tracked (and stopped at the end of the test).
        workdir: the folder for its log.
        btsnoop: also write a btsnoop capture of the whole air here.
    """

    def __init__(self, processes: Processes, workdir: Path, btsnoop: Path | None = None) -> None:
        self._processes = processes
        self.workdir = workdir
        self.port = free_port()
        self.btsnoop = btsnoop
        self.proc: subprocess.Popen[str] | None = None
        self._starts = 0

    @property
    def transport(self) -> str:
        """The Bumble transport that reaches this radio: ``tcp-client:127.0.0.1:PORT``."""
        return f"tcp-client:127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The radio's stderr (its log)."""
        return self.workdir / f"radio-{self.port}.log"

    def start(self, timeout: float = 15.0) -> Radio:
        """Start the radio and wait until it listens.

        Raises:
            RuntimeError: it exited instead.
            AssertionError: it did not listen within ``timeout`` seconds.
        """
        self._starts += 1
        extra = ["--btsnoop", str(self.btsnoop)] if self.btsnoop else []
        with self.log_path.open("a") as log:
            proc = self._processes.spawn(
                [console_script("carhub-radio"), "serve",
                 "--listen", f"127.0.0.1:{self.port}", *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        self.proc = proc

        def listening() -> bool:
            if self.log().count("listening on") >= self._starts:
                return True
            if proc.poll() is not None:
                raise RuntimeError(f"carhub-radio exited {proc.returncode}: {self.log()}")
            return False

        wait_for(listening, timeout, "carhub-radio to listen")
        return self

    def restart(self, timeout: float = 15.0) -> Radio:
        """Stop the radio and start it again on the same port (the same ``transport``)."""
        self.stop()
        return self.start(timeout)
