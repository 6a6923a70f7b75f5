"""The sample test in docs/testing.md runs as written: copied out of the page into a
fresh folder and run by an inner pytest with the plugin."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from carhub.testing import Car

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
SAMPLE = re.compile(r"<!-- sample: (\S+) -->\n```python\n(.*?)```", re.S)


def test_the_documented_sample_passes(pytester: pytest.Pytester) -> None:
    samples = SAMPLE.findall(DOC.read_text())
    assert [name for name, _ in samples] == ["test_carhub_sample.py"]
    name, code = samples[0]
    (pytester.path / name).write_text(code)
    result = pytester.runpytest_subprocess("-p", "carhub.testing.plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


README = DOC.parents[1] / "README.md"


def test_the_readme_snippet_passes(pytester: pytest.Pytester) -> None:
    section = README.read_text().split("### Testing with CarHub in your CI", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (pytester.path / "test_readme_snippet.py").write_text(code)
    result = pytester.runpytest_subprocess("-p", "carhub.testing.plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_readme_names_the_ready_lines_keys(carhub_car: Callable[..., Car]) -> None:
    found = re.search(r'`\{"event": "ready", ([^}]*)\}`', README.read_text())
    assert found is not None, "the README shows no ready line"
    documented = ["event", *(k.strip().strip('"') for k in found.group(1).split(","))]
    assert documented == list(carhub_car().ready)  # the keys, in the order printed
