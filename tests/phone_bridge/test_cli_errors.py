"""User-facing errors of ``phone-bridge`` and ``carhub run``: one line, an exit code, no traceback.

The CLIs run as subprocesses, as a user or a CI script would run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import carhub.cli as carhub_cli
from protocol.errors import LocalProtocolError, Reason

ROOT = Path(__file__).resolve().parents[2]


def _cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", f"from {module} import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=env,
    )


def _phone(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _cli("phone_bridge.cli", *args, cwd=cwd)


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("as_json", [False, True])
def test_unusable_state_dir_is_one_line(tmp_path: Path, as_json: bool) -> None:
    flag = ["--json"] if as_json else []
    proc = _phone("--state-dir", "/proc/nope", "pair", "X", *flag, cwd=tmp_path)
    line = _one_line_error(proc, 1)
    assert "/proc/nope" in line
    if as_json:
        out = json.loads(proc.stdout)
        assert out["ok"] is False and out["exit_code"] == 1 and "/proc/nope" in out["error"]


def _cars(tmp_path: Path, content: object) -> Path:
    state = tmp_path / "phone"
    state.mkdir()
    (state / "cars.json").write_text(json.dumps(content))
    return state


GOOD = {"id": "ab" * 8, "name": "Car", "public_key": "11" * 32}


@pytest.mark.parametrize(
    "content",
    [
        [GOOD],  # a list, not an object
        {"ab" * 8: {**GOOD, "public_key": "zz"}},  # not hex
        {"ab" * 8: {**GOOD, "public_key": "11" * 31}},  # wrong length
        {"ab" * 8: {**GOOD, "name": 7}},
        {"ab" * 8: {**GOOD, "last_sync": "yesterday"}},
        {"ab" * 8: {**GOOD, "id": "cd" * 8}},  # key and id disagree
        {"ab" * 8: "car"},
        {"ab" * 8: {"id": "ab" * 8}},  # fields missing
        "just a string",
    ],
)
def test_malformed_cars_json_is_one_line(tmp_path: Path, content: object) -> None:
    state = _cars(tmp_path, content)
    proc = _phone("--state-dir", str(state), "status", cwd=tmp_path)
    line = _one_line_error(proc, 1)
    assert "cars.json" in line
    proc = _phone("--state-dir", str(state), "status", "--json", cwd=tmp_path)
    _one_line_error(proc, 1)
    out = json.loads(proc.stdout)
    assert out["ok"] is False and "cars.json" in out["error"]


def test_good_cars_json_still_loads(tmp_path: Path) -> None:
    state = _cars(tmp_path, {"ab" * 8: {**GOOD, "endpoint": "h:1", "last_sync": 5}})
    proc = _phone("--state-dir", str(state), "status", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cars = json.loads(proc.stdout)["cars"]
    assert [(c["id"], c["endpoint"], c["last_sync"]) for c in cars] == [("ab" * 8, "h:1", 5)]


def test_bad_contacts_file_with_json_prints_ok_false(tmp_path: Path) -> None:
    (tmp_path / "bad.vcf").write_text("this is not a vCard\n")
    proc = _phone(
        "--state-dir", str(tmp_path / "p"), "sync", "127.0.0.1:9", "--contacts", "bad.vcf",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    _one_line_error(proc, 2)
    assert json.loads(proc.stdout)["ok"] is False


# -- carhub run -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["x" * 300, "x" * 64, "é" * 32, "", "   ", "bad\nname", "tab\tname"],
)
def test_carhub_rejects_bad_names_up_front(tmp_path: Path, name: str) -> None:
    proc = _cli(
        "carhub.cli", "run", "--name", name, "--state-dir", str(tmp_path / "car"),
        "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0", "--no-mdns", cwd=tmp_path,
    )  # fmt: skip
    line = _one_line_error(proc, 2)
    assert "--name" in line
    assert not (tmp_path / "car").exists()  # nothing was started or created


def test_carhub_rejects_an_oversized_model(tmp_path: Path) -> None:
    proc = _cli(
        "carhub.cli", "run", "--model", "m" * 200, "--state-dir", str(tmp_path / "car"),
        "--no-mdns", cwd=tmp_path,
    )  # fmt: skip
    assert "--model" in _one_line_error(proc, 2)


@pytest.mark.parametrize("name", ["x" * 63, "é" * 31 + "a", "Test Car", "🚗 Car"])
def test_carhub_name_limits_accept_valid_names(name: str) -> None:
    assert carhub_cli.check_label("--name", name, 63) == name


@pytest.mark.parametrize(
    "exc",
    [ValueError("bytes must be in range(0, 256)"), LocalProtocolError(Reason.STATE, "too long")],
)
def test_carhub_startup_value_and_protocol_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    async def boom(*_args: object) -> None:
        raise exc

    monkeypatch.setattr(carhub_cli, "_run", boom)
    result = CliRunner().invoke(
        carhub_cli.app, ["run", "--state-dir", str(tmp_path / "car"), "--no-mdns"]
    )
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "carhub: error:" in result.output and str(exc.args[-1]) in result.output
