"""``python_wheel_task``: call an entry point of a package, as Databricks does.

Where the entry point comes from, first match wins:

1. **The bundle's own package**: a ``pyproject.toml`` under the bundle root whose
   ``[project].name`` is ``package_name``. Its entry points are read from
   ``[project.scripts]`` / ``[project.entry-points.*]`` and its source folder (``src/`` or
   the project folder) is put first on ``sys.path``. Nothing is installed: the venv is not
   changed, no build backend or network is needed, and the code run is the code in the
   working tree (what ``databricks bundle deploy`` would build the wheel from).
2. **An installed distribution** named ``package_name``: its entry points, any group
   (``console_scripts`` first).
3. ``package_name.entry_point`` as a function (Databricks' fallback).

The function runs with ``sys.argv = [package_name, *parameters]`` (or ``--key=value`` for
``named_parameters``). ``SystemExit(0)``/``None`` and returning ``None``/``0`` are success.
``sys.argv`` is process-wide, so these tasks (and plain scripts) run one at a time.
"""

from __future__ import annotations

import importlib
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from lakehouse.core.errors import LakehouseError, TaskError

ARGV_LOCK = threading.RLock()
_SKIP_DIRS = {".venv", "venv", "node_modules", ".git", "data", "build", "dist", "__pycache__"}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _pyprojects(root: Path, depth: int = 3) -> Iterator[Path]:
    if (root / "pyproject.toml").is_file():
        yield root / "pyproject.toml"
    if depth == 0:
        return
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name not in _SKIP_DIRS and not child.name.startswith("."):
            yield from _pyprojects(child, depth - 1)


def own_package(root: Path, package_name: str) -> tuple[Path, dict[str, dict[str, str]]] | None:
    """``(import root, entry points by group)`` of the bundle's own package, if it is one."""
    for pyproject in _pyprojects(root):
        project = tomllib.loads(pyproject.read_text()).get("project") or {}
        if _normal(str(project.get("name", ""))) != _normal(package_name):
            continue
        groups: dict[str, dict[str, str]] = {"console_scripts": dict(project.get("scripts") or {})}
        for group, points in (project.get("entry-points") or {}).items():
            groups.setdefault(group, {}).update(points)
        folder = pyproject.parent
        return (folder / "src" if (folder / "src").is_dir() else folder), groups
    return None


def _load(spec: str) -> Callable[[], Any]:
    module, _, attr = spec.partition(":")
    target: Any = importlib.import_module(module.strip())
    for part in attr.strip().split(".") if attr.strip() else []:
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _pick(groups: dict[str, dict[str, str]], entry_point: str) -> str | None:
    for group in ("console_scripts", *sorted(g for g in groups if g != "console_scripts")):
        if entry_point in groups.get(group, {}):
            return groups[group][entry_point]
    return None


def entry_point_function(root: Path, package_name: str, entry_point: str) -> Callable[[], Any]:
    """The function ``entry_point`` of ``package_name`` names (see the module docstring)."""
    own = own_package(root, package_name)
    if own is not None:
        import_root, groups = own
        if str(import_root) not in sys.path:
            sys.path.insert(0, str(import_root))
            importlib.invalidate_caches()
        spec = _pick(groups, entry_point)
        if spec is not None:
            return _load(spec)
    else:
        try:
            points = distribution(package_name).entry_points
        except PackageNotFoundError:
            points = None
        if points is not None:
            installed: dict[str, dict[str, str]] = {}
            for ep in points:
                installed.setdefault(ep.group, {})[ep.name] = ep.value
            spec = _pick(installed, entry_point)
            if spec is not None:
                return _load(spec)
    try:
        return _load(f"{package_name.replace('-', '_')}:{entry_point}")
    except (ImportError, AttributeError):
        where = "the bundle's pyproject.toml" if own else "installed distributions"
        raise LakehouseError(
            f"python_wheel_task: no entry point {entry_point!r} of package {package_name!r} "
            f"(looked in {where} and for {package_name}.{entry_point})"
        ) from None


@contextmanager
def argv(args: list[str]) -> Iterator[None]:
    """``sys.argv`` set to ``args`` while the block runs (one such block at a time)."""
    with ARGV_LOCK:
        saved = sys.argv
        sys.argv = list(args)
        try:
            yield
        finally:
            sys.argv = saved


def call_entry_point(fn: Callable[[], Any], args: list[str], what: str) -> None:
    """Call ``fn`` with ``sys.argv = args``; a non-zero exit fails with one line."""
    with argv(args):
        try:
            result = fn()
        except SystemExit as exc:
            result = exc.code
    if result is None or result == 0:
        return
    if isinstance(result, int):
        raise TaskError(f"{what} exited with code {result}")
    if isinstance(result, str):
        raise TaskError(f"{what} exited: {result}")


def wheel_arguments(
    package_name: str, parameters: list[str], named_parameters: dict[str, str]
) -> list[str]:
    """``sys.argv`` of a wheel task: ``named_parameters`` as ``--k=v``, else ``parameters``."""
    if named_parameters:
        return [package_name, *(f"--{k}={v}" for k, v in named_parameters.items())]
    return [package_name, *parameters]
