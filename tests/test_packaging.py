"""The install split: `make run` installs only the base dependencies, so src/ must not need
the `dev` or `bench` extras, and every pin in pyproject.toml is the one in constraints.txt."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# what each extra's distributions are imported as (tools without an import: None)
IMPORT_NAMES = {
    "pytest": "pytest",
    "chispa": "chispa",
    "ruff": None,
    "mypy": "mypy",
    "types-pyyaml": None,
    "requests": "requests",
    "selenium": "selenium",
    "sqlalchemy": "sqlalchemy",
    "psycopg": "psycopg",
    "schemathesis": "schemathesis",
    "kubernetes-validate": "kubernetes_validate",
    "adbc-driver-postgresql": "adbc_driver_postgresql",
    "adbc-driver-manager": "adbc_driver_manager",
    "connectorx": "connectorx",
    "tpchgen-cli": None,
    "polars": "polars",
    "psutil": "psutil",
    "py-spy": None,
    "mkdocs": "mkdocs",
    "mkdocs-material": "material",
}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def _pins(requirements: list[str]) -> dict[str, str]:
    return {
        _name(r): r.split("==", 1)[1].strip() for r in requirements if "==" in r and ";" not in r
    }


def _extras() -> dict[str, list[str]]:
    extras: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
    return extras


def test_base_dependencies_hold_no_dev_or_bench_package() -> None:
    base = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extra = {_name(r) for reqs in _extras().values() for r in reqs}
    assert set(_extras()) == {"dev", "bench", "docs"}
    assert base & extra == set()
    assert extra == set(IMPORT_NAMES)  # a new extra package needs its import name here


def test_src_imports_no_package_of_an_extra() -> None:
    dev_only = {m for m in IMPORT_NAMES.values() if m}
    found = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in dev_only
            ]
    assert found == []


def test_every_pin_matches_constraints() -> None:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    constraints = _pins([line for line in lines if line and not line.startswith("#")])
    declared = _pins(PYPROJECT["project"]["dependencies"])
    for reqs in _extras().values():
        declared |= _pins(reqs)
    assert {n: constraints.get(n) for n in declared} == declared
    # the installer `make` bootstraps into the venv is pinned there too
    assert "uv" in constraints
