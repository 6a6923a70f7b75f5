"""--carddav-password-file: the file checked is the file read, and it must be a plain file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from phone_bridge.carddav.options import carddav_config
from phone_bridge.errors import BadInput


def test_a_fifo_as_password_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pw"
    os.mkfifo(fifo, 0o600)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(carddav_config("https://dav.example/", "alice", fifo, None))
        except BadInput as exc:
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(3.0)
    if worker.is_alive():  # release the reader stuck in open()
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(3.0)
        pytest.fail("reading the password file blocked on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], BadInput)
    assert "regular file" in str(outcome[0])


def test_the_password_comes_from_a_0600_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    pw.chmod(0o644)
    with pytest.raises(BadInput, match="0600"):
        carddav_config("https://dav.example/", "alice", pw, None)
    pw.chmod(0o600)
    assert carddav_config("https://dav.example/", "alice", pw, None).login.password == "s3cret"
