"""Where configured paths may point: one location per table, nothing outside the project.

Table locations (and the catalog's ``storage_root``) lie inside the data root, landing
folders (and the schema locations of inferred sources) inside the project or the data root, ``python_file`` scripts inside the project,
unless a path is under one of ``allowed_external_paths`` in ``bundle.yml`` (the opt-in). No
two tables share a location, or nest one inside another, once paths are resolved (relative
to the bundle root, ``..`` and symlinks followed). Errors name the file and key.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from lakehouse.config.project import Project, TableRef
from lakehouse.config.sources import FileSource
from lakehouse.core.errors import ConfigError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
OPT_IN_HINT = "list it (or a parent) under allowed_external_paths in bundle.yml to allow it"


def normal_location(project: Project, path: str) -> str:
    """``path`` resolved against the bundle root: a local path with ``..`` and symlinks
    resolved, or a URI with its scheme and host lower-cased and its path normalised."""
    resolved = project.resolve_path(path)
    if resolved.startswith("file:"):
        resolved = unquote(urlsplit(resolved).path)
    elif _URI.match(resolved):
        parts = urlsplit(resolved)
        tail = posixpath.normpath(parts.path or "/")
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}{tail}".rstrip("/")
    return os.path.realpath(resolved)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class _Roots:
    """The directories configured paths may use."""

    project: str
    data: str
    allowed: tuple[str, ...]

    def refuse_outside(self, path: str, roots: dict[str, str], file: str, key: str) -> None:
        """Refuse ``path`` unless it lies in one of ``roots`` (name: directory) or is allowed."""
        if any(_inside(path, root) for root in (*roots.values(), *self.allowed)):
            return
        where = " or ".join(f"the {name} {root}" for name, root in roots.items())
        raise ConfigError(file, key, f"{path} is outside {where}; {OPT_IN_HINT}")


def check_locations(project: Project, origin: dict[str, str], catalog_file: str) -> None:
    """Every configured path inside its allowed roots; one location per table."""
    roots = _Roots(
        project=normal_location(project, str(project.root)),
        data=normal_location(project, str(project.data_root)),
        allowed=tuple(normal_location(project, p) for p in project.bundle.allowed_external_paths),
    )
    data = {"data root": roots.data}
    storage_root = normal_location(project, project.catalog.storage_root)
    roots.refuse_outside(storage_root, data, catalog_file, "catalog.storage_root")
    located = {name: normal_location(project, t.location) for name, t in project.tables.items()}
    for name, table in project.tables.items():
        if table.spec.location:
            file, key = _table_key(table, origin, catalog_file)
            roots.refuse_outside(located[name], data, file, key)
    _check_one_location_per_table(project, located, origin, catalog_file)
    project_or_data = {"project": roots.project, "data root": roots.data}
    for source_key, source in project.sources.items():
        if isinstance(source, FileSource):
            path = normal_location(project, source.path)
            file = origin.get(f"sources.{source_key}", catalog_file)
            roots.refuse_outside(path, project_or_data, file, f"sources.{source_key}.path")
            if source.schema_location:
                where = normal_location(project, source.schema_location)
                key = f"sources.{source_key}.schema_location"
                roots.refuse_outside(where, project_or_data, file, key)
    _check_python_files(project, roots)


def _table_key(table: TableRef, origin: dict[str, str], catalog_file: str) -> tuple[str, str]:
    """The file declaring ``table`` and the key of its location."""
    file = origin.get(f"table.{table.schema}.{table.name}", catalog_file)
    return file, f"catalog.schemas.{table.schema}.tables.{table.name}.location"


def _check_one_location_per_table(
    project: Project, located: dict[str, str], origin: dict[str, str], catalog_file: str
) -> None:
    """No two tables at one location, nor one inside another's (a Delta log would mix)."""
    # Tables at their default location first: a clash is reported on the explicit location.
    order = sorted(project.tables, key=lambda n: project.tables[n].spec.location is not None)
    seen: dict[str, str] = {}
    for name in order:
        path = located[name]
        for other_path, other in seen.items():
            if _inside(path, other_path) or _inside(other_path, path):
                relation = "the same location as" if path == other_path else "overlaps"
                file, key = _table_key(project.tables[name], origin, catalog_file)
                raise ConfigError(
                    file,
                    key,
                    f"{path} is {relation} {other} ({other_path}); give each table its own "
                    "location",
                )
        seen[path] = name


def _check_python_files(project: Project, roots: _Roots) -> None:
    """Every ``spark_python_task.python_file`` inside the project (or allowed)."""
    for job_name, job in project.bundle.resources.jobs.items():
        for n, task in enumerate(job.tasks):
            if task.spark_python_task is None:
                continue
            path = normal_location(project, task.spark_python_task.python_file)
            key = f"resources.jobs.{job_name}.tasks[{n}].spark_python_task.python_file"
            file = project.file_of(f"resources.jobs.{job_name}")
            roots.refuse_outside(path, {"project": roots.project}, file, key)
