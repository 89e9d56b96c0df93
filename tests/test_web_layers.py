"""The rooms of the house keep their shape: `partnerkpi.web` and `partnerkpi.cli` import each other in no
circle, routers never import the app, and CLI commands are registered by code, not by module names."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

SRC = Path(importlib.util.find_spec("partnerkpi.web").origin).parents[1]  # src/partnerkpi (a namespace package)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that a file imports (at its top or inside a function: both can make a circle)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package, one level up per extra dot
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def graph(*packages: str) -> dict[str, set[str]]:
    files = {module_name(p): p for package in packages for p in (SRC / package).rglob("*.py")}
    known = set(files)
    return {name: imports_of(path, known) - {name} for name, path in files.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph, as the modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_sees_the_imports_it_must_see():
    edges = graph("web", "cli")
    assert "partnerkpi.web.routes" in edges["partnerkpi.web.app"]
    assert "partnerkpi.web.deps" in edges["partnerkpi.web.routes.scorecard"]
    assert "partnerkpi.cli.common" in edges["partnerkpi.cli.kpis"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_web_and_cli_have_no_import_cycle():
    assert cycle(graph("web", "cli")) is None


def test_no_router_imports_the_app():
    edges = graph("web")
    routers = [name for name in edges if name.startswith("partnerkpi.web.routes.")]
    assert len(routers) >= 8
    assert [name for name in routers if "partnerkpi.web.app" in edges[name]] == []
    assert "partnerkpi.web.app" not in edges["partnerkpi.web.deps"]


def test_cli_commands_are_registered_by_code():
    for path in (SRC / "cli").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import_module" not in text and "__import__" not in text, path.name
