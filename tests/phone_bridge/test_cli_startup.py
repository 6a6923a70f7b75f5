"""``phone-bridge`` starts at once: a command imports only what it needs (issue 13).

Each test runs the CLI in a fresh interpreter, as a user does, and reads which modules it
imported: ``status`` and ``--help`` must not pay for Bumble, bleak, zeroconf, websockets,
pydantic (typer's default option coercion) or the sync engine, and every ``--help`` still
lists all of its options. Also here: option values are still checked, with typer's
messages, by the lean coercer (``phone_bridge.cli.coerce``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a command that talks to no car must never import.
HEAVY = ("bumble", "bleak", "zeroconf", "websockets", "pydantic", "noise", "uvicorn",
         "fastapi", "mutagen", "httpx")  # fmt: skip
RUN = """
import json, sys
sys.argv = ["phone-bridge", *json.loads(sys.argv[1])]
from phone_bridge.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(OUT, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", f"OUT = {str(out)!r}\n" + RUN, json.dumps(list(args))],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    return proc, json.loads(out.read_text())


def _heavy(report: dict[str, object]) -> list[str]:
    modules = report["modules"]
    assert isinstance(modules, list)
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})


def _pair_a_car(state: Path) -> None:
    state.mkdir()
    car = {"id": "ab" * 8, "name": "Kitchen Car", "public_key": "11" * 32,
           "endpoint": "127.0.0.1:7", "last_sync": None}  # fmt: skip
    (state / "cars.json").write_text(json.dumps({car["id"]: car}))


def test_status_imports_no_transport_no_radio_no_engine(tmp_path: Path) -> None:
    state = tmp_path / "phone"
    _pair_a_car(state)
    proc, report = _run(tmp_path, "--state-dir", str(state), "status")
    assert proc.returncode == 0 and report["code"] == 0, proc.stderr
    assert proc.stdout.startswith("this phone: ") and "Kitchen Car" in proc.stdout
    assert _heavy(report) == []
    modules = report["modules"]
    assert isinstance(modules, list)
    for engine in ("phone_bridge.engine", "phone_bridge.client", "phone_bridge.connect",
                   "protocol.connection", "protocol.sync", "asyncio", "msgspec"):
        assert engine not in modules, engine


def test_status_needs_no_x25519_once_the_key_exists(tmp_path: Path) -> None:
    state = tmp_path / "phone"
    first, _ = _run(tmp_path, "--state-dir", str(state), "status", "--json")
    proc, report = _run(tmp_path, "--state-dir", str(state), "status", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == json.loads(first.stdout)
    modules = report["modules"]
    assert isinstance(modules, list) and "cryptography" not in modules


def test_status_json_imports_no_rich(tmp_path: Path) -> None:
    proc, report = _run(tmp_path, "--state-dir", str(tmp_path / "s"), "status", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cars"] == []
    modules = report["modules"]
    assert isinstance(modules, list)
    assert _heavy(report) == [] and "rich" not in {m.split(".")[0] for m in modules}


# Every command's --help, with options that must still be listed (their full set is
# typer's; these would vanish if a command's signature were lost to a lazy import).
HELPS = [
    ((), ["--state-dir", "--verbose", "discover", "pair", "sync", "run", "unpair", "status",
          "emulate"]),
    (("discover",), ["--timeout", "--transport", "--radio", "--mdns-interface", "--json"]),
    (("pair",), ["--uri", "--confirm-code", "--auto-confirm", "--name", "--btsnoop"]),
    (("sync",), ["--contacts", "--media", "--allow-deletes", "--transport", "--timeout",
                 "--json"]),
    (("run",), ["--contacts", "--media", "--auto-confirm", "--allow-deletes", "--radio"]),
    (("unpair",), ["--name", "--transport", "--timeout", "--json"]),
    (("status",), ["--json"]),
    (("emulate", "ios"), ["--radio", "--ancs-off-after", "--contacts", "--pbap-version"]),
    (("emulate", "android"), ["--radio", "--contacts", "--calls", "--owner", "--wait"]),
]


@pytest.mark.parametrize(("command", "options"), HELPS, ids=lambda v: " ".join(v) or "root")
def test_every_help_lists_its_options_without_heavy_imports(
    tmp_path: Path, command: tuple[str, ...], options: list[str]
) -> None:
    proc, report = _run(tmp_path, *command, "--help")
    assert proc.returncode == 0 and report["code"] == 0, proc.stderr
    for option in options:
        assert option in proc.stdout, (option, proc.stdout)
    assert _heavy(report) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "soon"], "Invalid value for '--timeout': Input should be a valid "
                                "number, unable to parse string as a number"),
        (["--transport", "wifi"], "Invalid value for '--transport': Value error, 'wifi' is "
                                  "not one of 'auto', 'lan', 'ble'."),
    ],
)
def test_bad_option_values_are_refused_with_typers_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc, report = _run(tmp_path, "--state-dir", str(tmp_path / "s"), "sync", "car",
                        "--contacts", "book.vcf", *args)  # fmt: skip
    assert report["code"] == 2 and proc.returncode == 0
    assert message in " ".join(proc.stderr.split()), proc.stderr


def test_option_values_reach_the_command_typed(tmp_path: Path) -> None:
    # A float, an enum, a Path and a str through the lean coercer: the command sees them
    # typed (it reads the file, so a missing one is exit 2 with the path in the line).
    proc, report = _run(tmp_path, "--state-dir", str(tmp_path / "s"), "sync", "car",
                        "--contacts", "nope.vcf", "--timeout", "0.5", "--transport", "lan")
    assert report["code"] == 2, proc.stderr
    assert "cannot read nope.vcf" in proc.stderr
