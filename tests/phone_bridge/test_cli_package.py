"""The command package: registration, the shared options, and ``connect_car``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from phone_bridge.cli import app
from phone_bridge.cli.options import CarOptions, TransportChoice, check_auto_confirm
from phone_bridge.cli.session import Opener, connect_car
from phone_bridge.connect import Target
from phone_bridge.errors import BridgeError, CarTimedOut, CarUnreachable, LinkClosed
from phone_bridge.state import PairedCar, PhoneState
from shell.errors import TransportError

ROOT = Path(__file__).resolve().parents[2]
CAR = PairedCar(id="ab" * 8, name="Car", public_key="11" * 32, endpoint="127.0.0.1:1")


def test_commands_are_registered_in_help_order() -> None:
    names = [c.name for c in app.registered_commands]
    assert names == ["discover", "pair", "sync", "run", "unpair", "status"]


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "phone_bridge.cli", "--state-dir", str(tmp_path), "status"],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("this phone: ")


# -- the shared options -----------------------------------------------------------------
def test_car_options_become_connect_options(tmp_path: Path) -> None:
    opts = CarOptions(TransportChoice.ble, "tcp-client:h:1", "10.0.0.2", 1.5, tmp_path / "c")
    c = opts.connect
    assert (c.transport, c.radio, c.mdns_interface, c.discover_timeout, c.btsnoop) == (
        "ble", "tcp-client:h:1", "10.0.0.2", 1.5, str(tmp_path / "c"),
    )  # fmt: skip
    assert CarOptions().connect.btsnoop is None


def test_phone_name_defaults_to_the_hostname() -> None:
    assert CarOptions().phone_name == f"phone-bridge on {socket.gethostname()}"
    assert CarOptions(name="Kim's phone").phone_name == "Kim's phone"


def test_auto_confirm_without_a_radio_stays_on_the_lan() -> None:
    assert check_auto_confirm(True, CarOptions()).transport is TransportChoice.lan
    assert check_auto_confirm(False, CarOptions()).transport is TransportChoice.auto
    emulated = CarOptions(radio="tcp-client:127.0.0.1:7000")
    assert check_auto_confirm(True, emulated) == emulated


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            CarOptions(radio="usb:0"),
            "--auto-confirm is for emulation only: refused with --radio usb:0",
        ),
        (
            CarOptions(transport=TransportChoice.ble),
            "--auto-confirm is for emulation only and is refused on real Bluetooth "
            "(use --radio with the emulated radio)",
        ),
    ],
)
def test_auto_confirm_is_refused_on_real_bluetooth(
    capsys: pytest.CaptureFixture[str], opts: CarOptions, message: str
) -> None:
    with pytest.raises(typer.Exit) as caught:
        check_auto_confirm(True, opts)
    assert caught.value.exit_code == 2
    assert capsys.readouterr().err == f"phone-bridge: error: {message}\n"
    assert check_auto_confirm(False, opts) == opts


# -- connect_car --------------------------------------------------------------------------
class FakeLink:
    """A link that only records how it was closed."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    async def aclose(self, reason: str = "") -> None:
        self.closed.append(reason)


def _opening(link: FakeLink) -> Opener:
    async def opener(target: Target) -> tuple[PairedCar, Any]:
        return CAR, link

    return opener


def _target() -> Target:
    return Target("Car", endpoint=CAR.endpoint, paired=CAR)


async def test_connect_car_yields_the_session_and_closes_with_the_reason(
    tmp_path: Path,
) -> None:
    link = FakeLink()
    async with connect_car(
        PhoneState(tmp_path),
        _target(),
        CarOptions(),
        closing="done",
        opener=_opening(link),
    ) as s:
        opened: object = s.link
        assert s.car is CAR and opened is link and s.target.query == "Car"
        assert link.closed == []
    assert link.closed == ["done"]


async def test_a_failure_inside_the_block_is_mapped_and_the_link_closed(
    tmp_path: Path,
) -> None:
    link = FakeLink()
    with pytest.raises(CarTimedOut) as caught:
        async with connect_car(
            PhoneState(tmp_path), _target(), CarOptions(), opener=_opening(link)
        ):
            raise TimeoutError
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert link.closed == [""]


async def test_the_phones_own_errors_leave_unchanged(tmp_path: Path) -> None:
    closed = LinkClosed("the car closed the session: bye")

    async def opener(target: Target) -> tuple[PairedCar, Any]:
        raise closed

    with pytest.raises(LinkClosed) as caught:
        async with connect_car(PhoneState(tmp_path), _target(), CarOptions(), opener=opener):
            pass
    assert caught.value is closed


async def test_an_unpaired_target_is_refused_before_dialling(tmp_path: Path) -> None:
    with pytest.raises(BridgeError) as caught:
        async with connect_car(PhoneState(tmp_path), Target("h:1", endpoint="h:1"), CarOptions()):
            pass
    assert caught.value.code == 5
    assert str(caught.value) == "not paired with h:1; run 'pair' first"


async def test_an_unreachable_car_exits_3(tmp_path: Path) -> None:
    with pytest.raises(CarUnreachable) as caught:
        opts = CarOptions(transport=TransportChoice.lan)
        async with connect_car(PhoneState(tmp_path), _target(), opts):
            pass
    assert caught.value.code == 3
    assert str(caught.value).startswith("cannot reach the car at 127.0.0.1:1")
    assert isinstance(caught.value.__cause__, TransportError)
