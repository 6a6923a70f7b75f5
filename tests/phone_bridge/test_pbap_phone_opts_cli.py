"""``emulate android`` / ``emulate ios`` --wait and --pbap-version as a user runs them
(real processes): --help lists them, a bad version is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SAMPLE = str(ROOT / "samples" / "calls.vcf")  # a valid .vcf file


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "phone_bridge.cli", "--state-dir", str(tmp_path / "s"),
         "emulate", *args], capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.mark.parametrize("command", ["android", "ios"])
def test_help_lists_wait_and_pbap_version(tmp_path: Path, command: str) -> None:
    out = run(tmp_path, command, "--help")
    assert out.returncode == 0, out.stderr
    assert "--wait" in out.stdout and "--pbap-version" in out.stdout
    assert "1.1|1.2" in out.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["android", "--radio", "tcp-client:127.0.0.1:9", "--contacts", SAMPLE,
      "--pbap-version", "1.3"], "--pbap-version must be 1.1 or 1.2, got '1.3'"),
    (["android", "--radio", "tcp-client:127.0.0.1:9", "--contacts", SAMPLE,
      "--pbap-version", "", "--wait"], "--pbap-version must be 1.1 or 1.2"),
    (["ios", "--radio", "tcp-client:127.0.0.1:9", "--contacts", SAMPLE,
      "--pbap-version", "2"], "--pbap-version must be 1.1 or 1.2, got '2'"),
    (["ios", "--radio", "tcp-client:127.0.0.1:9", "--wait"], "--wait needs --contacts"),
])  # fmt: skip
def test_bad_option_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    out = run(tmp_path, *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_good_options_get_as_far_as_the_radio(tmp_path: Path) -> None:
    out = run(tmp_path, "android", "--radio", "tcp-client:127.0.0.1:9", "--contacts", SAMPLE,
              "--wait", "--pbap-version", "1.1")
    assert out.returncode == 3 and "no emulated radio" in out.stderr
