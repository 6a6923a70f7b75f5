"""``--keylog`` files: a FIFO or device is refused at once, never waited on."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from shell.errors import KeyLogError
from shell.keylog import KeyLogFile


def test_a_fifo_as_key_log_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "keys"
    os.mkfifo(fifo, 0o600)
    outcome: list[object] = []

    def open_it() -> None:
        try:
            outcome.append(KeyLogFile(fifo))
        except KeyLogError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=open_it, daemon=True)
    worker.start()
    worker.join(3.0)
    if worker.is_alive():  # release the writer stuck in open()
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        worker.join(3.0)
        pytest.fail("opening the key log blocked on a FIFO (a car or phone that never starts)")
    assert len(outcome) == 1 and isinstance(outcome[0], KeyLogError), outcome
