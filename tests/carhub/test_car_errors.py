"""The car shell's error tree and ``carhub``'s one table from failures to exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import carhub.cli as carhub_cli
from carhub.engine import NoPhoneError
from carhub.errors import CarhubError, StartError, UsageError
from carhub.store import StoreError
from protocol.errors import LocalProtocolError, Reason
from radio import RadioUnavailableError
from shell.errors import KeyFileError, TransportError


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [(CarhubError, 1), (UsageError, 2), (StartError, 1), (StoreError, 1), (NoPhoneError, 1)],
)
def test_every_carhub_error_has_one_root_and_an_exit_code(
    error: type[CarhubError], exit_code: int
) -> None:
    assert issubclass(error, CarhubError)
    assert error.exit_code == exit_code


@pytest.mark.parametrize(
    ("exc", "error", "message"),
    [
        (KeyFileError("car.key is 12 bytes, not 32"), UsageError, "car.key is 12 bytes, not 32"),
        (
            StoreError("cannot open x.sqlite3: locked"),
            StoreError,
            "store: cannot open x.sqlite3: locked",
        ),
        (TransportError("link lost"), StartError, "cannot start: link lost"),
        (
            OSError(98, "Address already in use"),
            StartError,
            "cannot start: [Errno 98] Address already in use",
        ),
        (
            RadioUnavailableError("cannot open HCI transport 'usb:0': no device"),
            StartError,
            "cannot start: cannot open HCI transport 'usb:0': no device",
        ),
        (
            ValueError("bytes must be in range(0, 256)"),
            UsageError,
            "cannot start: bytes must be in range(0, 256)",
        ),
        (
            LocalProtocolError(Reason.STATE, "too long"),
            UsageError,
            f"cannot start: {LocalProtocolError(Reason.STATE, 'too long')}",
        ),
        (UsageError("--name must not be empty"), UsageError, "--name must not be empty"),
        (NoPhoneError("no phone is connected"), NoPhoneError, "no phone is connected"),
    ],
)
def test_the_table_maps_each_failure_to_its_carhub_error(
    exc: Exception, error: type[CarhubError], message: str
) -> None:
    found = carhub_cli.carhub_error(exc)
    assert type(found) is error
    assert str(found) == message


def test_an_error_the_table_does_not_know_is_left_alone() -> None:
    assert carhub_cli.carhub_error(RuntimeError("a bug")) is None
    assert carhub_cli.carhub_error(KeyError("x")) is None


def _run_raising(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> Result:
    async def boom(*_args: object) -> None:
        raise exc

    monkeypatch.setattr(carhub_cli, "_run", boom)
    return CliRunner().invoke(
        carhub_cli.app, ["run", "--state-dir", str(tmp_path / "car"), "--no-mdns"]
    )


@pytest.mark.parametrize(
    ("exc", "exit_code", "line"),
    [
        (
            OSError(98, "Address already in use"),
            1,
            "cannot start: [Errno 98] Address already in use",
        ),
        (StoreError("disk I/O error"), 1, "store: disk I/O error"),
        (KeyFileError("car.key is world-readable"), 2, "car.key is world-readable"),
        (
            RadioUnavailableError("tcp-client:127.0.0.1:9"),
            1,
            "cannot start: tcp-client:127.0.0.1:9",
        ),
    ],
)
def test_carhub_run_shows_one_line_and_exits_with_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: Exception, exit_code: int, line: str
) -> None:
    result = _run_raising(tmp_path, monkeypatch, exc)
    assert result.exit_code == exit_code
    assert result.output.strip().splitlines() == [f"carhub: error: {line}"]


def test_carhub_run_stops_cleanly_on_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_raising(tmp_path, monkeypatch, KeyboardInterrupt())
    assert result.exit_code == 0
    assert "error" not in result.output


def test_carhub_run_keeps_the_traceback_of_a_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run_raising(tmp_path, monkeypatch, RuntimeError("a bug"))
    assert isinstance(result.exception, RuntimeError)
    assert "carhub: error" not in result.output


def test_auto_confirm_with_a_real_radio_is_bad_usage(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        carhub_cli.app,
        ["run", "--state-dir", str(tmp_path / "car"), "--auto-confirm", "--hci", "usb:0"],
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "carhub: error: --auto-confirm is for emulation only: refused with --hci usb:0"
    ]
    assert not (tmp_path / "car").exists()  # refused before anything was created
