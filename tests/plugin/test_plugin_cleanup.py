"""No process outlives its test, even when the test fails: an inner pytest run shows it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

INNER = textwrap.dedent(
    """
    import json, os, subprocess
    from pathlib import Path

    PIDS = Path(os.environ["PLUGIN_PIDS"])

    def record(**pids):
        PIDS.write_text(json.dumps({**json.loads(PIDS.read_text() or "{}"), **pids}))

    def test_everything_then_fails(carhub_radio, carhub_car, carhub_phone, carhub_lab):
        radio = carhub_radio()
        car = carhub_car(radio=radio)
        card = "BEGIN:VCARD\\r\\nVERSION:3.0\\r\\nFN:A\\r\\nEND:VCARD\\r\\n"
        phone = carhub_phone(contacts=[card])
        phone.pair(car)
        # Something a process started itself: only a process-group kill stops it.
        grandchild = Path(os.environ["PLUGIN_PIDS"] + ".grandchild")
        carhub_lab.processes.spawn(
            ["sh", "-c", f"sleep 300 & echo $! > {grandchild}; wait"],
        )
        while not grandchild.exists() or not grandchild.read_text().strip():
            pass
        record(radio=radio.proc.pid, car=car.proc.pid, grandchild=int(grandchild.read_text()))
        with phone.run(car) as session:
            record(phone=session.proc.pid)
            assert False, "the test fails inside the phone's run"

    def test_fails_while_a_car_starts(carhub_car):
        car = carhub_car()
        record(second_car=car.proc.pid)
        raise RuntimeError("boom")
    """
)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_failing_tests_leave_no_process(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    pids_file = pytester.path / "pids.json"
    pids_file.write_text("")
    monkeypatch.setenv("PLUGIN_PIDS", str(pids_file))
    pytester.makepyfile(test_inner=INNER)
    run = pytester.runpytest_inprocess if mode == "inprocess" else pytester.runpytest_subprocess
    result = run("-p", "carhub.testing.plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*the test fails inside the phone's run*", "*boom*"])
    import json

    pids = json.loads(pids_file.read_text())
    assert set(pids) == {"radio", "car", "grandchild", "phone", "second_car"}, pids
    left = {name: pid for name, pid in pids.items() if _alive(pid)}
    assert left == {}, f"left running after the failing tests: {left}"
    assert os.getpid() not in pids.values()
