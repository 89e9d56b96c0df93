"""The shape of the house, read from the source: no import cycles among modules, and only `store/` creates
tables.

Imports are read with `ast` at module level (including under a module-level `if`/`try`). Imports inside a
function are left out on purpose: the CLI and a few hub methods import lazily so that a command loads only
what it runs, and such an import cannot close a cycle at import time. `if TYPE_CHECKING:` blocks are left
out too (they never run). An import of `a.b.c` is an edge to `a.b.c` only, not to the packages `a` and
`a.b` that Python also runs: a package's `__init__` re-exporting its modules is not a cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "partnerkpi"
# Tables another database holds: PostgreSQL receives copies of the canonical tables (`partnerkpi load`).
OTHER_DATABASES = {"partnerkpi/backends.py"}
CREATES_TABLE = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|SEQUENCE)\b", re.IGNORECASE)


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def module_imports(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `path` imports when it is imported."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in known)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if target in known:
                        found.add(target)
                    elif node.module in known:
                        found.add(node.module)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports at module level."""
    found = modules(package)
    return {name: module_imports(path, set(found)) - {name} for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_the_cycle_finder_finds_a_cycle_and_ignores_what_does_not_run(tmp_path):
    pkg = tmp_path / "partnerkpi"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from partnerkpi.sub.a import A\n")
    (pkg / "sub" / "a.py").write_text("from partnerkpi.sub import b\nA = 1\n")
    (pkg / "sub" / "b.py").write_text("import partnerkpi.sub.c\n")
    (pkg / "sub" / "c.py").write_text("from partnerkpi.sub.a import A\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from partnerkpi import e\n"
                              "def f():\n    from partnerkpi import e\n")
    (pkg / "e.py").write_text("from partnerkpi.d import f\n")
    graph = import_graph(pkg)
    assert graph["partnerkpi.sub.a"] == {"partnerkpi.sub.b"}
    assert graph["partnerkpi.d"] == set()
    assert cycles(graph) == [["partnerkpi.sub.a", "partnerkpi.sub.b", "partnerkpi.sub.c"]]


def test_the_real_graph_is_read():
    graph = import_graph()
    assert "partnerkpi.store.alerts" in graph["partnerkpi.store.database"]
    assert "partnerkpi.insights.health.config" in graph["partnerkpi.insights.health.score"]


def test_no_module_imports_its_importers():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("package", ["insights.health", "insights.alerts", "store"])
def test_a_package_split_by_concept_has_no_module_importing_the_package_itself(package):
    name = f"partnerkpi.{package}"
    graph = import_graph()
    inside = [m for m in graph if m.startswith(name + ".")]
    assert inside
    assert [m for m in inside if name in graph[m]] == []


def test_only_the_store_creates_tables():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("partnerkpi/store/") or rel in OTHER_DATABASES:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if CREATES_TABLE.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_the_store_creates_every_table_it_owns(tmp_path):
    from partnerkpi.catalog.plan import load_plan
    from partnerkpi.store import Store

    store = Store.open(tmp_path / "s.duckdb", load_plan())
    try:
        assert store.tables() == {"partners", "users", "events", "rejected_rows", "imports", "principals",
                                  "credentials", "alerts", "alert_deliveries", "health_overrides", "subscriptions",
                                  "subscription_addresses", "subscription_domains", "subscription_deliveries",
                                  "collector_checkpoint"}
    finally:
        store.close()
