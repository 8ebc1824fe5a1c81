"""Size limits of ``src/lakehouse``: no function over 80 lines, no module over 800 lines.

Ruff checks complexity (C901, PLR0912, PLR0915) but has no line-count rule; this test is the
line-count rule and runs with ``make lint``. A function's span is from its ``def`` line to its
last line (decorators excluded, nested functions counted in their parent as well as alone).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "lakehouse"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 800

# Functions allowed over the limit, as "path/relative/to/src/lakehouse.py:qualified.name".
KNOWN_LONG_FUNCTIONS: set[str] = set()


def modules() -> list[Path]:
    """Every module file of the package."""
    return sorted((SRC / PACKAGE).rglob("*.py"))


def function_spans(tree: ast.Module) -> list[tuple[str, int]]:
    """(qualified name, line span) of every function and method, nested ones included."""
    spans: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                spans.append((name, (child.end_lineno or child.lineno) - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def long_functions() -> dict[str, int]:
    """``path:name`` -> line span of every function over the limit."""
    found: dict[str, int] = {}
    for path in modules():
        relative = path.relative_to(SRC / PACKAGE).as_posix()
        for name, span in function_spans(ast.parse(path.read_text(), str(path))):
            if span > MAX_FUNCTION_LINES:
                found[f"{relative}:{name}"] = span
    return found


def long_modules() -> dict[str, int]:
    """Path -> line count of every module over the limit."""
    found: dict[str, int] = {}
    for path in modules():
        count = len(path.read_text().splitlines())
        if count > MAX_MODULE_LINES:
            found[path.relative_to(SRC / PACKAGE).as_posix()] = count
    return found


def test_no_function_over_80_lines() -> None:
    found = long_functions()
    offenders = {name: span for name, span in found.items() if name not in KNOWN_LONG_FUNCTIONS}
    for name, span in sorted(offenders.items()):
        print(f"{name}: {span} lines (limit {MAX_FUNCTION_LINES})")
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines: {sorted(offenders)}"


def test_known_long_functions_are_still_long() -> None:
    stale = KNOWN_LONG_FUNCTIONS - set(long_functions())
    assert not stale, f"no longer over {MAX_FUNCTION_LINES} lines, drop from the list: {stale}"


def test_no_module_over_800_lines() -> None:
    offenders = long_modules()
    for name, count in sorted(offenders.items()):
        print(f"{name}: {count} lines (limit {MAX_MODULE_LINES})")
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines: {sorted(offenders)}"
