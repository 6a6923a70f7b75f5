"""The sample test in docs/testing.md runs as written: copied out of the page into a
fresh folder and run by an inner pytest with the plugin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
SAMPLE = re.compile(r"<!-- sample: (\S+) -->\n```python\n(.*?)```", re.S)


def test_the_documented_sample_passes(pytester: pytest.Pytester) -> None:
    samples = SAMPLE.findall(DOC.read_text())
    assert [name for name, _ in samples] == ["test_carhub_sample.py"]
    name, code = samples[0]
    (pytester.path / name).write_text(code)
    result = pytester.runpytest_subprocess("-p", "carhub.testing.plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
