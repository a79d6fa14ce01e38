"""The layers hold: the code's shape is checked, not only remembered."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lines_matching(folder: str, pattern: str, glob: str = "*.py") -> list[str]:
    """Every `path:line: text` under a folder whose text matches the pattern."""
    found = []
    for path in sorted((ROOT / folder).rglob(glob)):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py or in fixtures, so a test module can be read alone."""
    assert lines_matching("tests", r"^\s*from (tests\.(unit|web|browser)(\.\w+)*\.test_\w+|\.test_\w+) import") == []


def test_views_read_through_the_domain():
    """No `select(` in webapp/: views and the API ask feedback/ for what they show."""
    assert lines_matching("webapp", r"\bselect\(") == []


def test_the_domain_never_imports_flask_and_analytics_stays_pure():
    assert lines_matching("feedback", r"^\s*(from|import) (flask|webapp)\b") == []
    assert lines_matching("analytics", r"^\s*(from|import) (flask|webapp|feedback|sqlalchemy)\b") == []


def test_the_demo_sits_outside_the_domain():
    """The demo writes through the domain's services; the domain never reaches into the demo."""
    assert lines_matching("feedback", r"^\s*(from|import) demo\b") == []
    assert lines_matching("demo", r"^\s*(from|import) (flask|webapp)\b") == []


def test_the_demo_writes_only_through_services_and_their_bulk_paths():
    """No rows of its own: the demo never adds, inserts, updates or deletes except by calling the domain.

    What it may still do is date a row a service just wrote into the story's past (`created_at`).
    """
    assert lines_matching("demo", r"session\.(add|add_all|delete|merge)\(") == []
    writes = r"(?<![.\w])(insert|update|delete)\(|from sqlalchemy import .*\b(insert|update|delete)\b"
    assert lines_matching("demo", writes) == []
    assert lines_matching("demo", r"^\s*(from|import) feedback(\.| import )bulk\b") == []


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules a file imports, at any depth, leaving out imports only for type checking.

    `from package import module` depends on the module, not on the package's own `__init__`.
    """
    tree = ast.parse(path.read_text())
    skip = {
        id(node)
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test)
        for node in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found & modules


def test_no_import_cycles():
    """No module imports another that (through others) imports it back, counting imports inside functions."""
    modules = {}
    for folder in ("feedback", "analytics", "webapp", "demo"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: sorted(_imports(path, set(modules)) - {name}) for name, path in modules.items()}
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert cycles == []


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of a directed graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components
