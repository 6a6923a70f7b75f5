"""Make real CarHub captures: a btsnoop of a BLE pairing and sync, a pcap of a LAN one.

Both run the real console scripts (``carhub-radio``, ``carhub run``, ``phone-bridge``) as
subprocesses, exactly as a user would, and stop every process they started before they
return, so the captures are flushed and closed. The decoder's tests
(``tests/capture/``) and the Wireshark dissector's tests (``tests/wireshark/``) share them:

    from tests.capture.make_captures import ble_captures, lan_capture
    ble = ble_captures(tmp_path, contacts=20, keylog=tmp_path / "keys.log")
    ble.car, ble.phone_pair, ble.phone_sync, ble.radio   # btsnoop files
    lan = lan_capture(tmp_path, contacts=20)
    lan.pcap, lan.port                                    # dumpcap's file, the car's port

Or from a shell: ``python -m tests.capture.make_captures OUTDIR [--keylog]``.

With ``keylog`` set, the car and the phone append their session keys to that file
(``--keylog``, PROTOCOL.md §6.3), so the session frames can be decrypted.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.ble_helpers import BlePhone, Radio, ble_car, free_port
from tests.e2e.helpers import Car, Phone, poll, sample_vcf, spawn, stop_all

__all__ = [
    "BleCaptures",
    "LanCapture",
    "ble_captures",
    "dumpcap_path",
    "lan_capture",
    "recording",
]


@dataclass(frozen=True)
class BleCaptures:
    """btsnoop files of one pairing then one sync of ``contacts`` contacts over BLE."""

    car: Path  # the car's HCI (carhub run --btsnoop): pairing and sync
    phone_pair: Path  # the phone's HCI during `phone-bridge pair --btsnoop`
    phone_sync: Path  # the phone's HCI during `phone-bridge sync --btsnoop`
    radio: Path  # every controller's HCI (carhub-radio --btsnoop): both sides, twice
    contacts: int
    keylog: Path | None


@dataclass(frozen=True)
class LanCapture:
    """A dumpcap file (pcapng) of the loopback while a phone paired and synced over the LAN."""

    pcap: Path
    port: int  # the car's WebSocket port (the capture filter)
    contacts: int
    keylog: Path | None


def _keylog_args(keylog: Path | None) -> list[str]:
    return ["--keylog", str(keylog)] if keylog is not None else []


def ble_captures(workdir: Path, contacts: int = 20, keylog: Path | None = None) -> BleCaptures:
    """Pair and sync a phone with a car over the emulated radio, capturing every side.

    Args:
        workdir: a folder for the state dirs, logs and captures (created if missing).
        contacts: how many generated contacts the phone syncs.
        keylog: if set, the key log both sides append to.

    Returns:
        The four btsnoop files, all closed.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    caps = BleCaptures(
        car=workdir / "car.btsnoop",
        phone_pair=workdir / "phone-pair.btsnoop",
        phone_sync=workdir / "phone-sync.btsnoop",
        radio=workdir / "radio.btsnoop",
        contacts=contacts,
        keylog=keylog,
    )
    vcf = sample_vcf(workdir / "contacts.vcf", contacts)
    try:
        radio = Radio(workdir, btsnoop=caps.radio).start()
        car = ble_car(workdir, radio, "Capture Car", btsnoop=caps.car)
        if keylog is not None:  # ble_car takes no extra options: restart with the key log
            car.stop()
            car = Car(car.state_dir, name=car.name, extra=[*car.extra, *_keylog_args(keylog)])
            car.start()
        phone = BlePhone(Phone(workdir / "phone"), radio)
        extra = [*_keylog_args(keylog), "--btsnoop"]
        phone.pair(car, *extra, str(caps.phone_pair))
        r = phone.sync(car, vcf, *extra, str(caps.phone_sync))
        assert r.code == 0, r
        car.stop()  # flushes the car's capture
    finally:
        stop_all()  # the phone, the car, then the radio (which flushes its capture)
    return caps


def lan_capture(workdir: Path, contacts: int = 20, keylog: Path | None = None) -> LanCapture:
    """Pair and sync a phone with a car over loopback WebSocket while dumpcap records it.

    Args:
        workdir: a folder for the state dirs, logs and the capture (created if missing).
        contacts: how many generated contacts the phone syncs.
        keylog: if set, the key log both sides append to.

    Returns:
        The capture (pcapng, as dumpcap writes it), closed.

    Raises:
        RuntimeError: dumpcap is not installed or did not start.
    """
    dumpcap = dumpcap_path()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cap = LanCapture(workdir / "lan.pcapng", port, contacts, keylog)
    vcf = sample_vcf(workdir / "contacts.vcf", contacts)
    try:
        with recording(dumpcap, port, cap.pcap, workdir / "dumpcap.log"):
            # The last --listen wins: the fixed port dumpcap filters on.
            extra = ["--auto-confirm", "--no-ble", "--listen", f"127.0.0.1:{port}"]
            car = Car(workdir / "car", name="Capture Car", extra=[*extra, *_keylog_args(keylog)])
            car.start()
            assert car.endpoint.endswith(f":{port}"), car.ready
            phone = Phone(workdir / "phone")
            r = phone.run("pair", f"127.0.0.1:{port}", "--auto-confirm", "--json",
                          *_keylog_args(keylog))  # fmt: skip
            assert r.code == 0, r
            r = phone.run("sync", f"127.0.0.1:{port}", "--contacts", str(vcf), "--json",
                          *_keylog_args(keylog))  # fmt: skip
            assert r.code == 0, r
            car.stop()
    finally:
        stop_all()
    return cap


def dumpcap_path() -> str:
    """Where dumpcap is.

    Raises:
        RuntimeError: dumpcap is not installed.
    """
    dumpcap = shutil.which("dumpcap")
    if dumpcap is None:
        raise RuntimeError("dumpcap is not installed (apt-get install tshark)")
    return dumpcap


@contextmanager
def recording(dumpcap: str, port: int, pcap: Path, log: Path) -> Iterator[None]:
    """Record loopback TCP ``port`` into ``pcap`` with dumpcap while the block runs.

    The capture is finished (SIGINT) and closed when the block ends normally; on an
    exception, dumpcap is left to the caller's ``stop_all``.

    Raises:
        RuntimeError: dumpcap did not start (its log is in the message).
    """
    with log.open("w") as err:
        proc = spawn(
            [dumpcap, "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    poll(lambda: pcap.exists() or proc.poll() is not None, 10, "dumpcap to start")
    if proc.poll() is not None:
        raise RuntimeError(f"dumpcap exited: {log.read_text()}")
    time.sleep(0.5)  # the capture filter is compiled and attached after the file opens
    yield
    time.sleep(0.5)  # let the last packets reach the capture
    proc.send_signal(signal.SIGINT)  # dumpcap finishes the file on SIGINT
    proc.wait(10)


def main(argv: list[str]) -> int:
    """``python -m tests.capture.make_captures OUTDIR [--keylog]``: make both, print paths."""
    if not argv:
        print("usage: python -m tests.capture.make_captures OUTDIR [--keylog]", file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    keylog = out / "keys.log" if "--keylog" in argv[1:] else None
    ble = ble_captures(out / "ble", keylog=keylog)
    lan = lan_capture(out / "lan", keylog=keylog)
    for path in (ble.car, ble.phone_pair, ble.phone_sync, ble.radio, lan.pcap):
        print(path)
    if keylog is not None:
        print(keylog)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
