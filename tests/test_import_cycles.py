"""The import graph of ``src/lakehouse`` has no cycles, and storage never imports governance.

Every import counts: module level, inside functions and under ``TYPE_CHECKING``. ``from x
import y`` is an edge to ``x.y`` when ``y`` is a submodule, else to ``x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "lakehouse"

# Cycles that exist today outside storage and governance, each to be broken by the slice
# that owns its modules (a cycle is listed by its sorted member modules).
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_names() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, with relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports, anywhere in its file."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, is_package, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return {_owning_module(name, modules) for name in found if name.startswith(PACKAGE)} - {module}


def _owning_module(name: str, modules: dict[str, Path]) -> str:
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each with one
    concrete cycle through its members."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = _pop_component(stack, on_stack, node)
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    """Pop the stack down to ``root``: the members of ``root``'s component."""
    component = []
    while True:
        top = stack.pop()
        on_stack.discard(top)
        component.append(top)
        if top == root:
            return component


def a_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One import path from the first member back to itself, inside the component."""
    inside = set(members)
    start = members[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & inside):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return members


def test_no_import_cycles() -> None:
    graph = import_graph()
    found = cycles(graph)
    new = [c for c in found if frozenset(c) not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(" -> ".join(a_cycle(graph, c)) for c in new)


def test_storage_imports_no_governance() -> None:
    graph = import_graph()
    io_modules = [m for m in graph if m == f"{PACKAGE}.io" or m.startswith(f"{PACKAGE}.io.")]
    assert io_modules
    forbidden = (f"{PACKAGE}.governance", f"{PACKAGE}.catalog")
    wrong = {
        m: sorted(i for i in graph[m] if i.startswith(forbidden))
        for m in io_modules
        if any(i.startswith(forbidden) for i in graph[m])
    }
    assert not wrong, f"lakehouse.io imports governance: {wrong}"
