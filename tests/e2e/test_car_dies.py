"""A car that dies mid-session: the phone says "connection lost" and exits 1, every time.

The car process is killed (SIGKILL) during a large sync at five different moments, from
just after the session opens to deep into the batches; each time the phone must exit 1
with one clear line, never 3 ("unreachable": it was reached) and never a traceback.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from shell.sample_data import generate_vcards
from tests.e2e.helpers import Car, Phone, poll

# Each round's book is the last one plus this many cards (the generator's output for n
# cards is a prefix of its output for more), so every round has that much left to send
# and deletes nothing.
STEP = 12_000
# When to kill: contacts the car must have stored in this round first (0: at once).
MOMENTS = (0, 1, 200, 1_000, 3_000)


def _due(car: Car, proc: subprocess.Popen[str], at_least: int) -> Callable[[], bool]:
    def due() -> bool:
        assert proc.poll() is None, "the sync ended before the car could be killed"
        rows = car.phones()
        return bool(rows and rows[0]["connected"] and rows[0]["contacts"] >= at_least)

    return due


def test_a_car_killed_mid_sync_is_exit_1_connection_lost(
    car: Car, phone: Phone, tmp_path: Path
) -> None:
    phone.pair(car)
    # Restart on the same session port, so the phone's HOST:PORT still names the car.
    car.extra += ["--listen", car.endpoint]
    held, seen = 0, []
    for round_, more in enumerate(MOMENTS):
        vcf = tmp_path / f"book{round_}.vcf"
        vcf.write_bytes(generate_vcards(STEP * (round_ + 1)))
        proc = phone.popen(
            "sync", car.endpoint, "--contacts", str(vcf),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        poll(_due(car, proc, held + more), timeout=60, what=f"round {round_}'s moment")
        assert car.proc is not None
        car.proc.send_signal(signal.SIGSTOP)  # freeze it here, so the sync cannot finish
        assert proc.poll() is None, "the sync ended before the car could be killed"
        car.kill()
        _, err = proc.communicate(timeout=30)
        errors = [line for line in err.splitlines() if line.startswith("phone-bridge: error:")]
        seen.append((round_, proc.returncode, errors))
        assert proc.returncode == 1, seen
        assert len(errors) == 1 and "connection to the car lost" in errors[0], seen
        assert "Traceback" not in err, err
        car.start()
        held = car.phones()[0]["contacts"]
