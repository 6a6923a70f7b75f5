"""How carhub.testing is packaged: the pytest11 entry point, its imports, no double plugin."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "carhub" / "testing"
MODULE = "carhub.testing.plugin"
ALLOWED = {"httpx", "websockets", "carhub"}  # beyond the standard library


def test_pyproject_registers_the_plugin_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["pytest11"]
    assert list(entry_points.values()) == [MODULE]
    # Named after its module: `-p carhub.testing.plugin` or a conftest's pytest_plugins
    # then find it registered already instead of registering the module a second time.
    assert list(entry_points) == [MODULE]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert any(p == "carhub*" for p in packages["packages"]["find"]["include"])


def test_the_installed_distribution_has_the_entry_point() -> None:
    dist = metadata.distribution("carhub")
    url = dist.read_text("direct_url.json")
    installed_from = json.loads(url)["url"].removeprefix("file://") if url else ""
    if Path(installed_from).resolve() != ROOT:
        pytest.skip(f"carhub is installed from {installed_from or 'an index'}, not {ROOT}")
    found = [ep for ep in dist.entry_points if ep.group == "pytest11"]
    assert [(ep.name, ep.value) for ep in found] == [(MODULE, MODULE)]


def test_the_package_imports_only_stdlib_httpx_and_websockets() -> None:
    stdlib = sys.stdlib_module_names
    bad = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                # Not the car's own modules (nor phone_bridge): the plugin runs them as
                # processes. pytest in the plugin module only.
                car_module = top == "carhub" and not name.startswith("carhub.testing")
                pytest_elsewhere = top == "pytest" and path.name != "plugin.py"
                foreign = top not in stdlib and top not in ALLOWED and top != "pytest"
                if car_module or pytest_elsewhere or foreign:
                    bad.append((path.name, name))
    assert bad == []
    assert all(len(p.read_text().splitlines()) <= 450 for p in PACKAGE.glob("*.py"))


def test_importing_the_package_does_not_import_pytest_or_the_car() -> None:
    code = (
        "import sys, carhub.testing; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pytest', '_pytest', 'fastapi', 'uvicorn', 'phone_bridge', 'bumble')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def test_plugin_given_twice_is_registered_once(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(f"pytest_plugins = [{MODULE!r}]")
    pytester.makepyfile(
        test_twice="""
        import carhub.testing.plugin as plugin

        def test_one_plugin(request, carhub_phone):
            plugins = request.config.pluginmanager.get_plugins()
            assert sum(p is plugin for p in plugins) == 1
            assert carhub_phone("P").name == "P"
        """
    )
    result = pytester.runpytest_subprocess("-p", MODULE)
    result.assert_outcomes(passed=1)
    listed = pytester.runpytest_subprocess("-p", MODULE, "--fixtures")
    fixtures = [line.split()[0] for line in listed.stdout.lines if line.startswith("carhub_")]
    assert sorted(fixtures) == ["carhub_car", "carhub_lab", "carhub_phone", "carhub_radio"]
