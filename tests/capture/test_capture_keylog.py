"""The key log: what a session exposes, the line format, the file's safety, the CLIs' rules.

A key log lets anyone who reads it read the sessions it names, so beside the format the
checks are the ones a careful user relies on: the file is created 0600 and a wider one
is refused, every use warns on stderr, and a real radio needs ``--keylog-real-radio``.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.capture.keylog import KEYLOG_LABEL, format_line, parse_keylog
from protocol.identity import Identity
from protocol.session import SecureSession, SessionSecrets
from shell import keylog
from shell.errors import KeyLogError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VECTORS = dict(re.findall(r"^(session\.\w+|car\.private|phone\.private)\s+= (\w+)$",
                          (ROOT / "protocol" / "PROTOCOL.md").read_text(), re.M))  # fmt: skip
WARNING = "KEY LOG IS ON"


def _vector_sessions() -> tuple[SecureSession, SecureSession]:
    """The §10.3 handshake: fixed static and ephemeral keys, the vector prologue."""
    v = {k: bytes.fromhex(x) for k, x in VECTORS.items()}
    car_id, phone_id = (Identity.from_private_bytes(v[k]) for k in ("car.private", "phone.private"))
    phone = SecureSession(
        phone_id,
        car_id.public_key,
        initiator=True,
        prologue=v["session.prologue"],
        ephemeral_private=v["session.phone_e"],
    )
    car = SecureSession(
        car_id,
        phone_id.public_key,
        initiator=False,
        prologue=v["session.prologue"],
        ephemeral_private=v["session.car_e"],
    )
    (msg1,) = phone.start()
    car.start()
    (msg2,) = car.receive_handshake(msg1)
    phone.receive_handshake(msg2)
    return phone, car


def test_both_sides_expose_the_same_secrets_the_vectors_name() -> None:
    phone, car = _vector_sessions()
    s = phone.secrets()
    assert s == car.secrets()
    assert s.phone_ephemeral == bytes.fromhex(VECTORS["session.msg1"])[:32]
    assert s.handshake_hash.hex() == VECTORS["session.hash"]
    assert s.phone_to_car.hex() == VECTORS["session.k1"]
    assert s.car_to_phone.hex() == VECTORS["session.k2"]
    assert VECTORS["session.k1"] not in repr(s)  # an event logged by accident shows no key


def test_protocol_md_prints_the_line_of_the_vector_session() -> None:
    phone, _ = _vector_sessions()
    spec = (ROOT / "protocol" / "PROTOCOL.md").read_text()
    assert "    " + format_line(phone.secrets()) in spec


def test_the_line_format_round_trips_and_skips_what_it_does_not_know() -> None:
    phone, _ = _vector_sessions()
    line = format_line(phone.secrets())
    assert line.endswith("\n") and line.split()[0] == KEYLOG_LABEL
    assert [len(w) for w in line.split()[1:]] == [64] * 4
    text = "# comment\n\nCLIENT_RANDOM aa bb\n" + line + "CARHUB_SESSION zz\n" + line
    parsed = parse_keylog(text)
    assert list(parsed.sessions.values()) == [phone.secrets()]
    assert parsed.bad_lines == [5]
    assert parsed.find(phone.secrets().phone_ephemeral) == phone.secrets()


@pytest.fixture
def secrets() -> SessionSecrets:
    return SessionSecrets(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32)


def test_the_file_is_created_0600_even_under_a_lax_umask(tmp_path: Path, secrets: SessionSecrets
                                                         ) -> None:  # fmt: skip
    path = tmp_path / "keys.log"
    old = os.umask(0)
    try:
        log = keylog.KeyLogFile(path)
    finally:
        os.umask(old)
    log.write(secrets)
    log.write(secrets)
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == format_line(secrets) * 2  # appended, one line a session


def test_an_existing_file_is_appended_to(tmp_path: Path, secrets: SessionSecrets) -> None:
    path = tmp_path / "keys.log"
    path.write_text("# mine\n")
    path.chmod(0o600)
    log = keylog.KeyLogFile(path)
    log.write(secrets)
    log.close()
    assert path.read_text() == "# mine\n" + format_line(secrets)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o606, 0o666])
def test_a_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keys.log"
    path.write_text("")
    path.chmod(mode)
    with pytest.raises(KeyLogError, match=f"mode {mode:04o}"):
        keylog.KeyLogFile(path)
    assert path.read_text() == ""


def test_a_symlink_or_a_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    target.chmod(0o600)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(KeyLogError):
        keylog.KeyLogFile(tmp_path / "link")
    with pytest.raises(KeyLogError):
        keylog.KeyLogFile(tmp_path)


@pytest.mark.parametrize("radio", ["usb:0", "hci-socket:0", "serial:/dev/ttyUSB0", "vhci"])
def test_a_real_radio_needs_the_explicit_consent(radio: str) -> None:
    with pytest.raises(KeyLogError, match="--keylog-real-radio"):
        keylog.check_radio(radio, allow_real_radio=False)
    keylog.check_radio(radio, allow_real_radio=True)


@pytest.mark.parametrize("radio", [None, "tcp-client:127.0.0.1:7000"])
def test_no_radio_or_the_emulated_one_needs_none(radio: str | None) -> None:
    keylog.check_radio(radio, allow_real_radio=False)


def test_record_writes_only_once_enabled(tmp_path: Path, secrets: SessionSecrets) -> None:
    path = tmp_path / "keys.log"
    keylog.record(secrets)  # off: nothing happens
    keylog.enable(path)
    try:
        keylog.record(secrets)
        keylog.record(None)  # a session event without secrets (a fake connection)
    finally:
        keylog.disable()
    keylog.record(secrets)
    assert path.read_text() == format_line(secrets)


# -- the command lines ------------------------------------------------------------------
def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=full,
                          cwd=tmp_path)  # fmt: skip


def _vcf(tmp_path: Path) -> Path:
    path = tmp_path / "one.vcf"
    path.write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u1\r\nFN:One\r\nEND:VCARD\r\n")
    return path


def test_carhub_run_refuses_the_key_log_with_a_real_radio(tmp_path: Path) -> None:
    keys = tmp_path / "keys.log"
    args = [str(BIN / "carhub"), "run", "--state-dir", str(tmp_path / "car"), "--no-mdns",
            "--listen", "127.0.0.1:0", "--ui", "127.0.0.1:0", "--hci", "usb:0",
            "--keylog", str(keys)]  # fmt: skip
    r = _run(args, tmp_path)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--keylog-real-radio" in lines[0], r.stderr
    assert not keys.exists()


@pytest.mark.parametrize("where", [["--radio", "usb:0"], ["--transport", "ble"]])
def test_phone_bridge_refuses_the_key_log_on_real_bluetooth(tmp_path: Path, where: list[str]
                                                            ) -> None:  # fmt: skip
    keys = tmp_path / "keys.log"
    args = [str(BIN / "phone-bridge"), "--state-dir", str(tmp_path / "phone"), "sync", "car",
            "--contacts", str(_vcf(tmp_path)), "--keylog", str(keys), *where]  # fmt: skip
    r = _run(args, tmp_path)
    assert r.returncode == 2, r
    assert "--keylog-real-radio" in r.stderr and "Traceback" not in r.stderr
    assert not keys.exists()


@pytest.mark.parametrize("how", ["option", "env"])
def test_phone_bridge_warns_once_and_creates_the_file_0600(tmp_path: Path, how: str) -> None:
    keys = tmp_path / "keys.log"
    option = ["--keylog", str(keys)] if how == "option" else []
    env = {"CARHUB_KEYLOG": str(keys)} if how == "env" else {}
    args = [str(BIN / "phone-bridge"), "--state-dir", str(tmp_path / "phone"), "sync",
            "127.0.0.1:1", "--contacts", str(_vcf(tmp_path)), "--timeout", "0.2",
            *option]  # fmt: skip
    r = _run(args, tmp_path, **env)
    assert r.returncode != 0  # nobody listens on port 1; the key log was on all the same
    assert r.stderr.count(WARNING) == 1, r.stderr
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
