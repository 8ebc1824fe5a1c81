"""Read a notebook task's notebook into cells: ``.ipynb`` or Databricks source format.

A Databricks source notebook is a ``.py`` file whose first line is
``# Databricks notebook source``; cells are separated by ``# COMMAND ----------`` and magic
cells are written as ``# MAGIC %sql`` lines. Magics (in both formats) become Python:

* ``%md`` cells are kept as markdown (not run); ``%python`` runs as Python;
* ``%sql`` runs each statement with ``spark.sql`` and displays the last result;
* ``%run ./other`` inlines the other notebook's cells (same namespace, as on Databricks);
* ``%pip`` / ``%conda`` are not run (install packages into the environment): a note says so;
* ``%sh`` runs the shell commands; ``%scala``, ``%r`` and other languages are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat as _nbformat

from lakehouse.core.errors import LakehouseError

nbformat: Any = _nbformat

SOURCE_HEADER = "# Databricks notebook source"
COMMAND = "# COMMAND ----------"
EXTENSIONS = (".ipynb", ".py")


@dataclass(frozen=True)
class Cell:
    kind: str  # code | markdown
    source: str
    origin: str  # "<file> cell <n>"


@dataclass
class NotebookCells:
    cells: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_notebook(path: Path) -> Path:
    """The notebook file of ``path``: as given, else with ``.ipynb`` or ``.py`` appended."""
    if path.is_file():
        return path
    for ext in EXTENSIONS:
        candidate = path.with_name(path.name + ext)
        if candidate.is_file():
            return candidate
    raise LakehouseError(f"notebook {path} not found (also tried {', '.join(EXTENSIONS)})")


def _raw_cells(path: Path) -> list[tuple[str, str]]:
    """``(kind, source)`` of each cell of the file, magics still in place."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return [(c.cell_type, c.source) for c in nb.cells if c.cell_type in ("code", "markdown")]
    text = path.read_text()
    lines = text.splitlines()
    if not lines or lines[0].strip() != SOURCE_HEADER:
        return [("code", text)]  # a plain Python file: one cell
    cells: list[tuple[str, str]] = []
    for chunk in "\n".join(lines[1:]).split(COMMAND):
        body = chunk.strip("\n")
        if not body.strip():
            continue
        chunk_lines = body.splitlines()
        magic = [ln for ln in chunk_lines if ln.strip()]
        if magic and all(ln.startswith("# MAGIC") for ln in magic):
            body = "\n".join(ln.removeprefix("# MAGIC").removeprefix(" ") for ln in chunk_lines)
        cells.append(("code", body))
    return cells


def read_cells(path: Path, *, _seen: tuple[Path, ...] = ()) -> NotebookCells:
    """The runnable cells of the notebook at ``path`` (``%run`` targets inlined)."""
    if path.resolve() in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path.resolve()))
        raise LakehouseError(f"%run cycle: {chain}")
    seen = (*_seen, path.resolve())
    out = NotebookCells()
    for n, (kind, source) in enumerate(_raw_cells(path), start=1):
        origin = f"cell {n}" if not _seen else f"cell {n} of {path.name} (%run)"
        if kind == "markdown":
            out.cells.append(Cell("markdown", source, origin))
            continue
        _convert(source, path, origin, seen, out)
    return out


def _convert(
    source: str, path: Path, origin: str, seen: tuple[Path, ...], out: NotebookCells
) -> None:
    """Append the cell(s) one code cell becomes once its magic is handled."""
    stripped = source.strip()
    first, _, rest = stripped.partition("\n")
    if not first.startswith("%"):
        out.cells.append(Cell("code", source, origin))
        return
    magic = first.split()[0]
    if magic in ("%md", "%md-sandbox"):
        out.cells.append(Cell("markdown", rest, origin))
    elif magic == "%python":
        out.cells.append(Cell("code", rest, origin))
    elif magic == "%sql":
        out.cells.append(Cell("code", f"_sqldf = _lakehouse_sql({rest!r})", origin))
    elif magic == "%sh":
        out.cells.append(Cell("code", f"_lakehouse_sh({rest!r})", origin))
    elif magic in ("%pip", "%conda"):
        note = f"{origin}: {first} not run locally (install packages into the environment)"
        out.notes.append(note)
        out.cells.append(Cell("code", f"print({note!r})", origin))
    elif magic == "%run":
        target = first[len("%run") :].strip().split()[0] if first[len("%run") :].strip() else ""
        if not target:
            raise LakehouseError(f"{origin}: %run needs a notebook path")
        other = find_notebook((path.parent / target).resolve())
        inlined = read_cells(other, _seen=seen)
        out.cells.extend(inlined.cells)
        out.notes.extend(inlined.notes)
    elif magic in ("%scala", "%r", "%fs", "%lsmagic"):
        raise LakehouseError(f"{origin}: {magic} cells cannot run locally (Python and SQL only)")
    else:  # an IPython line magic such as %time or %matplotlib
        out.cells.append(Cell("code", source, origin))
