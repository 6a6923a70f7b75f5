"""``phone-bridge emulate android`` / ``emulate ios --contacts`` as a user runs them:
--help, and bad input as one line with a non-zero exit code (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "phone_bridge.cli", "--state-dir", str(tmp_path / "s"),
         "emulate", *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def test_android_help_names_every_option(tmp_path: Path) -> None:
    out = run(tmp_path, "android", "--help")
    assert out.returncode == 0
    for option in ("--radio", "--contacts", "--calls", "--car", "--owner", "--auto-confirm",
                   "--json", "--btsnoop", "--state-dir", "--name"):
        assert option in out.stdout
    ios = run(tmp_path, "ios", "--help")
    assert "--contacts" in ios.stdout and "--calls" in ios.stdout and "--owner" in ios.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["android", "--radio", "tcp-client:127.0.0.1:9", "--contacts", "/no/such.vcf"],
     "cannot read contacts file /no/such.vcf"),
    (["android", "--radio", "tcp-client:127.0.0.1:9", "--contacts", "{bad}"],
     "is not a vCard file"),
    (["android", "--radio", "tcp-client:127.0.0.1:9", "--contacts", "{good}",
      "--calls", "{bad}"], "calls file"),
    (["android", "--radio", "tcp-client:127.0.0.1:9", "--contacts", "{good}", "--car", "x"],
     "--car must be a Classic address"),
    (["android", "--radio", "usb:0", "--contacts", "{good}"], "emulation only"),
    (["android", "--radio", "tcp-client:127.0.0.1:9"], "needs --contacts"),
    (["ios", "--radio", "tcp-client:127.0.0.1:9", "--contacts", "{bad}"], "not a vCard file"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.vcf").write_text("hello\n")
    (tmp_path / "good.vcf").write_bytes((ROOT / "samples" / "calls.vcf").read_bytes())
    args = [a.format(bad=tmp_path / "bad.vcf", good=tmp_path / "good.vcf") for a in args]
    out = run(tmp_path, *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_no_radio_is_one_line_and_exit_3(tmp_path: Path) -> None:
    out = run(tmp_path, "android", "--radio", "tcp-client:127.0.0.1:9", "--contacts",
              str(ROOT / "samples" / "calls.vcf"))
    assert out.returncode == 3 and "no emulated radio" in out.stderr
    assert "Traceback" not in out.stderr


def test_sample_calls_are_pbap_cch() -> None:
    from protocol.pbap import split_cards

    cards = split_cards((ROOT / "samples" / "calls.vcf").read_bytes())
    assert len(cards) == 20
    assert all(b"X-IRMC-CALL-DATETIME;TYPE=" in c for c in cards)
    kinds = {c.split(b"X-IRMC-CALL-DATETIME;TYPE=")[1].split(b":")[0] for c in cards}
    assert kinds == {b"RECEIVED", b"DIALED", b"MISSED"}
