"""An idle ``carhub run`` with BLE off never imports the Bluetooth stack (issue 13).

Bumble alone is ~7 MB of an idle car's RSS (``bench/bench_lab.py`` and the README's lab
section have the table); it, and the other libraries only some paths need, are imported
inside the functions that use them. The car runs as a user runs it (``carhub.cli.main`` in
a subprocess, mDNS on loopback), its dashboard and API are used, and an audit hook records
every import the process ever makes, so a module-level import anywhere on the path fails.
With ``--no-mdns`` (the radio lab's cars) zeroconf, ~3 MB, is not imported either.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Never needed by a car without BLE, nor by its dashboard until a QR code is drawn.
LAZY = ("bumble", "bleak", "segno", "rich", "mutagen", "httpx")

_CHILD = """
import sys
imported = set()
def hook(event, args):
    if event == "import":
        imported.add(args[0].partition(".")[0])
sys.addaudithook(hook)
import atexit, json
record = sys.argv[1]
atexit.register(lambda: open(record, "w").write(json.dumps(sorted(imported))))
sys.argv = ["carhub", *sys.argv[2:]]
from carhub.cli import main
main()
"""


@pytest.mark.parametrize("mdns", [True, False], ids=["mdns", "no-mdns"])
def test_idle_car_without_ble_imports_no_bluetooth_stack(tmp_path: Path, mdns: bool) -> None:
    record = tmp_path / "imported.json"
    args = [
        "run", "--state-dir", str(tmp_path / "car"), "--listen", "127.0.0.1:0",
        "--ui", "127.0.0.1:0", "--pairing", "open", "--json",
        *(["--mdns-interface", "127.0.0.1"] if mdns else ["--no-mdns"]),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(record), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready" and ready["ble"] is None
        url = ready["dashboard"].rstrip("/")
        status = httpx.get(f"{url}/api/status", timeout=5).json()
        assert status["ble"] is None and status["pairing_open"] is True
        assert httpx.get(f"{url}/api/phones", timeout=5).json() == []
        assert httpx.get(f"{url}/", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err[-2000:]
    imported = set(json.loads(record.read_text()))
    assert "carhub" in imported and "fastapi" in imported  # the hook saw the car start
    assert sorted(imported.intersection(LAZY)) == []
    assert ("zeroconf" in imported) is mdns  # mDNS's library only when it announces
