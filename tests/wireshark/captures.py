"""A capture the shared maker (``tests.capture.make_captures``) does not make: a refusal.

A phone asks a car whose pairing window is closed to pair, over loopback WebSocket, while
dumpcap records it; the car answers its ``Hello`` with ``Error(pairing-closed)``, so the
dissector's tests see a plaintext ``Error`` as well as the pairing and session messages.
"""

from __future__ import annotations

from pathlib import Path

from tests.capture.make_captures import dumpcap_path, recording
from tests.e2e.ble_helpers import free_port
from tests.e2e.helpers import Car, Phone, stop_all

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
    dumpcap = dumpcap_path()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cap = workdir / "refused.pcapng"
    try:
        with recording(dumpcap, port, cap, workdir / "dumpcap.log"):
            extra = ["--no-ble", "--no-mdns", "--listen", f"127.0.0.1:{port}"]
            car = Car(workdir / "car", name="Closed Car", pairing="closed", extra=extra).start()
            r = Phone(workdir / "phone").run(
                "pair", f"127.0.0.1:{port}", "--auto-confirm", "--json"
            )
            assert r.code != 0, r  # refused
            car.stop()
    finally:
        stop_all()
    return cap
