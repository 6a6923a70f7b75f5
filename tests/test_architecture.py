"""The house's shape, checked statically (docs/architecture.md draws it).

These read the source with ``ast``; nothing is imported or run. Each rule is one the
architecture relies on: protocol/ stays sans-I/O, the two shells never import each other,
there is one transport seam, the shells carry out decisions rather than make them, and
modules and functions stay small enough to read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = "protocol"
SHELLS = ("shell", "carhub", "phone_bridge", "radio", "capture")
PACKAGES = (CORE, *SHELLS)
MAX_MODULE_LINES = 450
MAX_SHELL_FUNCTION_LINES = 60
# What would make protocol/ do I/O: it must take bytes, events and `now`, never these.
IO_MODULES = {
    "asyncio", "socket", "selectors", "sqlite3", "subprocess", "threading",
    "zeroconf", "bleak", "bumble", "websockets", "fastapi", "starlette", "uvicorn",
    "httpx", "typer", "rich",
}  # fmt: skip


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int

    @property
    def package(self) -> str:
        return self.name.split(".")[0]

    def imports(self) -> Iterator[str]:
        """Every absolute module name imported anywhere in the file (lazy ones too)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                yield from (a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.module
                yield from (f"{node.module}.{a.name}" for a in node.names)


def _load() -> dict[str, Module]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            src = path.read_text(encoding="utf-8")
            name = ".".join(parts)
            mods[name] = Module(name, path, ast.parse(src), len(src.splitlines()))
    return mods


MODULES = _load()


def _graph() -> dict[str, set[str]]:
    return {
        m.name: {d for d in m.imports() if d in MODULES and d != m.name}
        for m in MODULES.values()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _shell_modules() -> list[Module]:
    return [m for m in MODULES.values() if m.package in SHELLS]


def _classes() -> Iterator[tuple[Module, ast.ClassDef]]:
    for m in MODULES.values():
        for node in ast.walk(m.tree):
            if isinstance(node, ast.ClassDef):
                yield m, node


def _base_names(cls: ast.ClassDef) -> set[str]:
    return {ast.unparse(b).rsplit(".", 1)[-1] for b in cls.bases}


def test_the_tree_has_every_package() -> None:
    for pkg in PACKAGES:
        assert (ROOT / pkg / "__init__.py").is_file(), pkg


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_protocol_is_sans_io_and_imports_no_shell() -> None:
    bad = sorted(
        (m.name, dep)
        for m in MODULES.values()
        if m.package == CORE
        for dep in m.imports()
        if dep.split(".")[0] in IO_MODULES or dep.split(".")[0] in SHELLS
    )
    assert bad == []


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("carhub", {"phone_bridge"}),
        ("phone_bridge", {"carhub"}),
        ("shell", {"carhub", "phone_bridge"}),
        ("radio", {"carhub", "phone_bridge"}),
        ("capture", {"carhub", "phone_bridge"}),
    ],
)
def test_shells_do_not_import_each_other(importer: str, forbidden: set[str]) -> None:
    bad = sorted(
        (m.name, dep)
        for m in MODULES.values()
        if m.package == importer
        for dep in m.imports()
        if dep.split(".")[0] in forbidden
    )
    assert bad == []


def test_modules_are_small() -> None:
    big = sorted(
        (m.lines, str(m.path.relative_to(ROOT)))
        for m in MODULES.values()
        if m.lines > MAX_MODULE_LINES
    )
    assert big == []


def test_shell_functions_are_short() -> None:
    long = sorted(
        (node.end_lineno - node.lineno + 1, f"{m.path.relative_to(ROOT)}:{node.lineno}")
        for m in _shell_modules()
        for node in ast.walk(m.tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_SHELL_FUNCTION_LINES
    )
    assert long == []


def test_exactly_one_transport_base_class() -> None:
    # An abstract class or Protocol that declares recv() is a transport seam.
    seams = sorted(
        f"{m.name}.{cls.name}"
        for m, cls in _classes()
        if _base_names(cls) & {"ABC", "Protocol"}
        and any(
            isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef) and n.name == "recv"
            for n in cls.body
        )
    )
    assert seams == ["shell.transport.BaseTransport"]


def test_every_link_is_a_base_transport() -> None:
    # Whatever moves stream bytes (send and recv) descends from the one seam.
    parents = {cls.name: _base_names(cls) for _, cls in _classes()}

    def descends(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "BaseTransport":
            return True
        return any(descends(b, seen | {name}) for b in parents.get(name, ()) if b not in seen)

    links = [
        (m.name, cls.name)
        for m, cls in _classes()
        if m.package in SHELLS
        and {"send", "recv"}
        <= {n.name for n in cls.body if isinstance(n, ast.AsyncFunctionDef)}
    ]
    assert links, "no transports found: the check would prove nothing"
    assert [(mod, name) for mod, name in links if not descends(name)] == []


def test_shells_hold_no_rate_limiter_and_no_secret_comparison() -> None:
    bad = []
    for m in _shell_modules():
        for dep in m.imports():
            if dep.startswith("protocol.ratelimit") or dep.endswith("RateLimiter"):
                bad.append((m.name, dep))
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Attribute | ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                if name == "compare_digest" or name.endswith("RateLimiter"):
                    bad.append((m.name, name))
    assert sorted(set(bad)) == []


def test_the_checks_see_the_code() -> None:
    # Guards the guards: an empty or misplaced tree would pass everything above.
    assert len(MODULES) > 40
    assert "protocol.connection" in MODULES
    assert any(m.package == "carhub" for m in MODULES.values())
