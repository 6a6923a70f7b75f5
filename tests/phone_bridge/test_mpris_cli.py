"""``--media mpris:...`` at the command line: never a path, bad names refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def phone(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "phone_bridge.cli", "--state-dir", str(tmp_path / "p"), *args],
        capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "127.0.0.1:1", "--media", "mpris:two words"], "not an MPRIS player name"),
        (["run", "127.0.0.1:1", "--media", "mpris:a/b"], "not an MPRIS player name"),
        (["emulate", "ios", "--radio", "tcp-client:127.0.0.1:1", "--media", "mpris:"],
         "not mpris:"),
    ],
)  # fmt: skip
def test_bad_mpris_values_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    vcf = tmp_path / "b.vcf"
    vcf.write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n")
    extra = [] if args[0] == "emulate" else ["--contacts", str(vcf)]
    proc = phone(tmp_path, *args, *extra)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_an_mpris_value_is_not_read_as_a_path_even_if_such_a_file_exists(tmp_path: Path) -> None:
    (tmp_path / "mpris:vlc").mkdir()  # a folder by that name must not be taken for media
    vcf = tmp_path / "b.vcf"
    vcf.write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n")
    proc = phone(tmp_path, "sync", "127.0.0.1:1", "--contacts", str(vcf), "--media", "mpris:vlc",
                 "--timeout", "0.2")  # fmt: skip
    # Without a bus the player is simply absent: the sync goes on (to a car that is not there).
    assert "no D-Bus session bus" in proc.stderr
    assert "no such file" not in proc.stderr and "no audio files" not in proc.stderr
    assert proc.returncode == 5 and "not paired" in proc.stderr  # the sync's own outcome
    assert "Traceback" not in proc.stderr
