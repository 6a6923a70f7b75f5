"""carhub-radio's command line: help, and one-line errors for bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radio.cli", *args],
        capture_output=True, text=True, env=ENV, timeout=30, check=False,
    )


def test_help_lists_listen_and_btsnoop() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    assert "--listen" in result.stdout and "--btsnoop" in result.stdout


def test_bad_listen_is_a_one_line_error() -> None:
    result = run("serve", "--listen", "nonsense")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "carhub-radio: --listen must be HOST:PORT, got 'nonsense'"
    ]


def test_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
