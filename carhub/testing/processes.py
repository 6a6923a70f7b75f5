"""Processes for the plugin: each in its own process group, every one stopped at the end.

Only the standard library: the fixtures in ``carhub.testing.plugin`` own a ``Processes``
and call ``stop_all`` in their finalizer, so a failing test leaves nothing running.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "CommandFailed",
    "Daemon",
    "Processes",
    "Result",
    "console_script",
    "free_port",
    "wait_for",
]

log = logging.getLogger("carhub.testing")
T = TypeVar("T")


class CommandFailed(AssertionError):
    """A console script exited with a code the caller did not accept.

    An ``AssertionError``, so pytest shows it as a test failure with the command's
    exit code and output.
    """

    def __init__(self, args: list[str], result: Result) -> None:
        self.result = result
        super().__init__(
            f"{' '.join(args)} exited {result.code}\n"
            f"stdout: {result.out.strip()[-2000:]}\nstderr: {result.err.strip()[-4000:]}"
        )


@dataclass
class Result:
    """What one console-script run gave: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        """The last line of stdout as JSON (``--json`` prints the result last)."""
        lines = self.out.strip().splitlines()
        if not lines:
            raise ValueError(f"no JSON on stdout (exit {self.code}): {self.err.strip()[-500:]}")
        return json.loads(lines[-1])


def console_script(name: str) -> str:
    """The path of console script ``name``: beside this interpreter first, else on PATH.

    Raises:
        FileNotFoundError: the script is not installed.
    """
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name!r} is not installed (pip install carhub)")
    return found


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy, and return that.

    Exceptions from ``check`` count as "not yet" (the last one is reported), except
    ``RuntimeError``, which means the wait cannot succeed (e.g. a process exited).

    Args:
        check: the condition.
        timeout: seconds before giving up.
        what: named in the failure.

    Returns:
        The first truthy value ``check`` returned.

    Raises:
        AssertionError: ``timeout`` passed.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
        except RuntimeError:
            raise
        except Exception as exc:  # HTTP errors while a car starts, a half-written file...
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(0.05)


class Processes:
    """Every process a test started, each the leader of its own process group."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[str]] = []

    def spawn(self, args: list[str], **kw: Any) -> subprocess.Popen[str]:
        """Start ``args`` in a new session (its own process group) and track it."""
        proc = subprocess.Popen(args, text=True, start_new_session=True, **kw)
        self.live.append(proc)
        return proc

    def run(
        self, args: list[str], *, input: str | None = None, timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> Result:  # fmt: skip
        """Run ``args`` to the end (killed after ``timeout`` seconds) and return its result."""
        proc = self.spawn(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, err = proc.communicate()
            err += f"\n[carhub.testing: killed after {timeout} s]"
        finally:
            self.stop(proc)
        return Result(proc.returncode, out, err)

    def stop(self, proc: subprocess.Popen[str], grace: float = 5.0) -> None:
        """SIGTERM the process's group, SIGKILL it after ``grace`` seconds, then reap it.

        The whole group, so whatever the process started goes too.
        """
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("pid %d ignored SIGTERM for %.0f s: SIGKILL", proc.pid, grace)
        self.kill(proc)

    def kill(self, proc: subprocess.Popen[str]) -> None:
        """SIGKILL the process's group at once (no goodbye), reap it and forget it."""
        # Also when the leader is gone: what it started may still be in its group. Only
        # once, though: a group already killed and forgotten may have had its id reused.
        if proc in self.live or proc.returncode is None:
            _signal_group(proc, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        if proc in self.live:
            self.live.remove(proc)

    def stop_all(self) -> None:
        """Stop every live process, newest first (phones, then cars, then radios)."""
        for proc in reversed(list(self.live)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                log.warning("could not stop pid %d: %s", proc.pid, exc)


class Daemon:
    """A long-running console script a test started (a car, a radio): its log, stop, kill.

    A subclass sets ``_processes`` and ``proc`` and says where ``log_path`` is.
    """

    _processes: Processes
    proc: subprocess.Popen[str] | None

    @property
    def log_path(self) -> Path:
        """Where the process's stderr (its log) goes, appended to across restarts."""
        raise NotImplementedError

    def log(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM the process (SIGKILL if it hangs); its state and log stay."""
        if self.proc is not None:
            self._processes.stop(self.proc)

    def kill(self) -> None:
        """SIGKILL the process: it dies with no goodbye to its peers."""
        if self.proc is not None:
            self._processes.kill(self.proc)


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Send ``sig`` to ``proc``'s process group (it leads one: ``start_new_session``)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
