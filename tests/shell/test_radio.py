"""shell.radio: only the virtual radio is emulated, so --auto-confirm stays off real radios."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shell.radio import is_emulated


@pytest.mark.parametrize("spec", ["tcp-client:127.0.0.1:7000", "tcp-client:radio:7000"])
def test_the_virtual_radio_is_emulated(spec: str) -> None:
    assert is_emulated(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "usb:0",
        "pyusb:0",
        "hci-socket:0",
        "serial:/dev/ttyUSB0",
        "vhci",
        "tcp-server:0.0.0.0:7000",  # a host could be listening for a real controller
        "android-netsim",
        "",
        "TCP-CLIENT:127.0.0.1:7000",  # Bumble's schemes are lower case; no guessing
        " tcp-client:127.0.0.1:7000",
        "tcp-clientx:127.0.0.1:7000",
    ],
)
def test_everything_else_is_a_real_radio(spec: str) -> None:
    assert not is_emulated(spec)


ROOT = Path(__file__).resolve().parents[2]


def _cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", f"from {module} import main; main()", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
    )  # fmt: skip


def test_both_clis_refuse_auto_confirm_on_a_real_radio(tmp_path: Path) -> None:
    car = _cli("carhub.cli", "run", "--auto-confirm", "--hci", "usb:0",
               "--state-dir", str(tmp_path / "car"), cwd=tmp_path)  # fmt: skip
    phone = _cli("phone_bridge.cli", "--state-dir", str(tmp_path / "phone"), "pair", "X",
                 "--auto-confirm", "--radio", "hci-socket:0", cwd=tmp_path)  # fmt: skip
    for proc, flag in ((car, "--hci usb:0"), (phone, "--radio hci-socket:0")):
        assert proc.returncode == 2, proc.stderr
        assert f"--auto-confirm is for emulation only: refused with {flag}" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_the_phone_accepts_auto_confirm_on_the_virtual_radio(tmp_path: Path) -> None:
    # Nothing listens on port 1, so the phone fails later, reaching the radio, not the guard.
    proc = _cli("phone_bridge.cli", "--state-dir", str(tmp_path), "pair", "X", "--auto-confirm",
                "--radio", "tcp-client:127.0.0.1:1", cwd=tmp_path)  # fmt: skip
    assert "AUTO-CONFIRM IS ON" in proc.stderr
    assert "emulation only: refused" not in proc.stderr
