"""Tables a run adds to the catalog (a declarative pipeline's datasets, their quarantines),
kept in ``<data_root>/_catalog/tables.json`` so that later commands and sessions (``lakehouse
tables``, ``head``, ``sql``, notebooks, the next update) know them as catalog tables.

A table the conf files declare is never taken from here: YAML wins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from lakehouse.config.catalog import TableSpec
from lakehouse.config.project import Project
from lakehouse.core.errors import ConfigError

FILE = Path("_catalog") / "tables.json"


def runtime_tables_file(project: Project) -> Path:
    return project.data_root / FILE


def load_runtime_tables(project: Project) -> None:
    """Add the recorded tables the conf files do not declare to ``project``'s catalog."""
    path = runtime_tables_file(project)
    if not path.is_file():
        return
    hint = "delete it to forget the tables pipelines added (their data stays)"
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "", f"unreadable ({exc}); {hint}") from None
    if not isinstance(recorded, dict):
        raise ConfigError(str(path), "", f"expected a JSON object; {hint}")
    for name, spec in recorded.items():
        if name in project.tables:
            continue
        try:
            project.add_table(name, TableSpec.model_validate(spec))
        except ValidationError as exc:
            raise ConfigError(str(path), name, f"{exc.errors()[0]['msg']}; {hint}") from None


def save_runtime_tables(project: Project) -> None:
    """Record the tables added to ``project`` at run time (written atomically)."""
    if not project.added_tables:
        return
    path = runtime_tables_file(project)
    recorded: dict[str, object] = {}
    if path.is_file():
        try:
            recorded = dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            recorded = {}
    for name in project.added_tables:
        spec = project.tables[name].spec
        recorded[name] = spec.model_dump(mode="json", exclude_defaults=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
