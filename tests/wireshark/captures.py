"""A capture the shared maker (``tests.capture.make_captures``) does not make: a refusal.

A phone asks a car whose pairing window is closed to pair, over loopback WebSocket, while
dumpcap records it; the car answers its ``Hello`` with ``Error(pairing-closed)``, so the
dissector's tests see a plaintext ``Error`` as well as the pairing and session messages.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.ble_helpers import free_port
from tests.e2e.helpers import Car, Phone, poll, spawn, stop_all

__all__ = ["refused_pair_capture"]


def refused_pair_capture(workdir: Path) -> Path:
    """Record a pairing that the car refuses with ``pairing-closed``.

    Args:
        workdir: a folder for the state dirs, logs and the capture (created if missing).

    Returns:
        The capture (pcapng), closed.

    Raises:
        RuntimeError: dumpcap is not installed or did not start.
    """
    dumpcap = shutil.which("dumpcap")
    if dumpcap is None:
        raise RuntimeError("dumpcap is not installed (apt-get install tshark)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cap = workdir / "refused.pcapng"
    log = workdir / "dumpcap.log"
    try:
        with log.open("w") as err:
            proc = spawn(
                [dumpcap, "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(cap)],
                stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        poll(lambda: cap.exists() or proc.poll() is not None, 10, "dumpcap to start")
        if proc.poll() is not None:
            raise RuntimeError(f"dumpcap exited: {log.read_text()}")
        time.sleep(0.5)  # the capture filter is attached after the file opens
        extra = ["--no-ble", "--no-mdns", "--listen", f"127.0.0.1:{port}"]
        car = Car(workdir / "car", name="Closed Car", pairing="closed", extra=extra).start()
        r = Phone(workdir / "phone").run("pair", f"127.0.0.1:{port}", "--auto-confirm", "--json")
        assert r.code != 0, r  # refused
        car.stop()
        time.sleep(0.5)  # let the last packets reach the capture
        proc.send_signal(signal.SIGINT)  # dumpcap finishes the file on SIGINT
        proc.wait(10)
    finally:
        stop_all()
    return cap
