"""Write a table's columns into the YAML file that declares it (``lakehouse catalog infer``).

The file is edited round-trip (ruamel.yaml): comments, key order, quoting and flow styles
are kept; the table entry gains a ``columns:`` list in the catalog's usual style
(``- {name: id, type: bigint}``). Keys may be written with variables
(``${var.catalog}``): they are matched after interpolation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.config.loader import included_files, interpolate
from lakehouse.config.project import Project, TableRef
from lakehouse.core.errors import ConfigError

_BEFORE = (
    "keys",
    "partition_by",
    "properties",
    "owner",
    "grants",
    "row_filters",
)  # columns go before these


@dataclass(frozen=True)
class PinnedColumns:
    """The edited file: where, its new text, and the ``columns:`` block as written."""

    path: Path
    relative: str
    text: str
    block: str


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _context(project: Project) -> dict[str, Any]:
    context: dict[str, Any] = {f"var.{k}": v for k, v in project.variables.items()}
    context["bundle.name"] = project.name
    context["bundle.target"] = project.target_name
    return context


def _entry(mapping: Any, wanted: str, context: dict[str, Any], display: str) -> Any:
    """The value under the key of ``mapping`` that interpolates to ``wanted`` (or None)."""
    if not hasattr(mapping, "items"):
        return None
    for key, value in mapping.items():
        if str(interpolate(str(key), context, display)) == wanted:
            return value
    return None


def _table_entry(doc: Any, table: TableRef, context: dict[str, Any], display: str) -> Any:
    catalog = _entry(doc, "catalog", context, display)
    schemas = _entry(catalog, "schemas", context, display)
    schema = _entry(schemas, table.schema, context, display)
    return _entry(_entry(schema, "tables", context, display), table.name, context, display)


def _columns_seq(columns: list[tuple[str, str]]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    seq = CommentedSeq()
    for name, type_ in columns:
        item = CommentedMap([("name", name), ("type", type_)])
        item.fa.set_flow_style()
        seq.append(item)
    return seq


def pin_columns(project: Project, table: TableRef, columns: list[tuple[str, str]]) -> PinnedColumns:
    """The text of the YAML file declaring ``table`` with ``columns`` written into its entry."""
    yaml = _yaml()
    context = _context(project)
    files = included_files(
        project.root, project.bundle.include, project.bundle_file, allow_empty=project.dab
    )
    for path, relative in files:
        text = path.read_text(encoding="utf-8")
        if table.name not in text:
            continue
        doc = yaml.load(text)
        entry = _table_entry(doc, table, context, relative)
        if entry is None:
            continue
        key = f"catalog.schemas.{table.schema}.tables.{table.name}.columns"
        if not hasattr(entry, "insert"):
            raise ConfigError(relative, key, "the table entry is not a mapping")
        if entry.get("columns"):
            raise ConfigError(relative, key, "already declared: remove them to infer again")
        entry.pop("columns", None)
        keys = list(entry.keys())
        position = min((keys.index(k) for k in _BEFORE if k in keys), default=len(keys))
        entry.insert(position, "columns", _columns_seq(columns))
        out = io.StringIO()
        yaml.dump(doc, out)
        block = io.StringIO()
        yaml.dump({"columns": _columns_seq(columns)}, block)
        return PinnedColumns(path, relative, out.getvalue(), block.getvalue())
    raise ConfigError("conf/", table.full_name, "no included YAML file declares this table's entry")
