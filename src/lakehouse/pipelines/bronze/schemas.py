"""The schema location of an inferred source (Auto Loader's ``cloudFiles.schemaLocation``).

Each version of an inferred schema is one JSON file, ``<schema_location>/<n>.json``: the full
column list, when it was written, from which files, and which columns it added. Version 0 is
the first inference; each schema evolution (new fields in later files) writes the next one,
so the schema's history is visible and survives a reset of the Bronze table (the table is
re-created from the latest version).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.fs as pafs

from lakehouse.bundle.context import TaskContext
from lakehouse.config.catalog import Column
from lakehouse.config.project import Project, SourceHandle
from lakehouse.config.sources import BRONZE_METADATA_COLUMNS, FileSource
from lakehouse.pipelines.bronze.decode import filesystem_of, inspect_file
from lakehouse.pipelines.bronze.files import LandedFile, list_landed_files
from lakehouse.pipelines.bronze.infer import infer_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchemaVersion:
    """One stored version of an inferred schema."""

    version: int
    columns: list[tuple[str, str]]
    written_at: str
    files: list[str]
    added: list[str]
    column_types: bool = True

    def as_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "written_at": self.written_at,
            "files": self.files,
            "added": self.added,
            "infer_column_types": self.column_types,
        }


def schema_location(project: Project, source_name: str) -> str:
    """Where the source's schema versions are kept: its ``schema_location`` (resolved against
    the bundle root) or ``<data_root>/_schemas/<source>``."""
    source = project.sources[source_name]
    assert isinstance(source, FileSource)
    if source.schema_location:
        return project.resolve_path(source.schema_location)
    return str(project.data_root / "_schemas" / source_name)


def is_inferred(handle: SourceHandle) -> bool:
    """Whether the source's Bronze table takes its columns from the files (none declared)."""
    return isinstance(handle.spec, FileSource) and not handle.target.spec.columns


def read_versions(location: str) -> list[SchemaVersion]:
    """Every stored version, oldest first (none when nothing was inferred yet)."""
    fs, root, _ = filesystem_of(location)
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    out = []
    for info in infos:
        stem = info.base_name.removesuffix(".json")
        if info.type != pafs.FileType.File or not info.base_name.endswith(".json"):
            continue
        if not stem.isdigit():
            continue
        with fs.open_input_stream(info.path) as stream:
            data = json.loads(stream.read().decode("utf-8"))
        out.append(
            SchemaVersion(
                version=int(data["version"]),
                columns=[(c["name"], c["type"]) for c in data["columns"]],
                written_at=str(data.get("written_at", "")),
                files=list(data.get("files", [])),
                added=list(data.get("added", [])),
                column_types=bool(data.get("infer_column_types", True)),
            )
        )
    return sorted(out, key=lambda v: v.version)


def latest_version(location: str) -> SchemaVersion | None:
    versions = read_versions(location)
    return versions[-1] if versions else None


def write_version(
    location: str,
    columns: list[tuple[str, str]],
    files: list[str],
    *,
    added: list[str] | None = None,
    column_types: bool = True,
) -> SchemaVersion:
    """Store the next version of the schema (the full column list)."""
    latest = latest_version(location)
    version = SchemaVersion(
        version=0 if latest is None else latest.version + 1,
        columns=columns,
        written_at=datetime.now(tz=UTC).replace(microsecond=0).isoformat(),
        files=files,
        added=added if added is not None else [n for n, _ in columns],
        column_types=column_types,
    )
    fs, root, _ = filesystem_of(location)
    fs.create_dir(root, recursive=True)
    final = f"{root}/{version.version}.json"
    partial = f"{root}/.{version.version}.json.tmp"
    with fs.open_output_stream(partial) as out:
        out.write((json.dumps(version.as_json(), indent=2) + "\n").encode("utf-8"))
    fs.move(partial, final)
    return version


# ---------------------------------------------------------------- at ingest


def ensure_inferred_table(ctx: TaskContext, handle: SourceHandle, files: list[LandedFile]) -> bool:
    """Create an inferred source's Bronze table if it does not exist: from the latest stored
    schema version, else inferred from ``files`` (stored as version 0). False when there is
    no table and nothing to infer from yet."""
    if not is_inferred(handle) or ctx.tables.exists(handle.target):
        return True
    source = handle.spec
    assert isinstance(source, FileSource)
    location = schema_location(ctx.project, handle.name)
    stored = latest_version(location)
    if stored is not None:
        columns = stored.columns
    elif not files:
        return False
    else:
        inference = infer_schema(source, files)
        columns = inference.columns(source.infer_column_types)
    data = [Column.model_construct(name=n, type=t, nullable=True) for n, t in columns]
    spec = handle.target.spec.model_copy(update={"columns": [*data, *BRONZE_METADATA_COLUMNS]})
    ctx.tables.ensure_table(dataclasses.replace(handle.target, spec=spec))
    if stored is None:
        version = write_version(
            location, columns, inference.files, column_types=source.infer_column_types
        )
        note = (
            f"{handle.name}: inferred {len(columns)} column(s) of {handle.target.full_name} "
            f"from {len(inference.files)} file(s): schema version {version.version} at {location}"
        )
        log.info(note)
        ctx.report.notes.append(note)
    return True


def new_field_types(
    source: FileSource, files: list[LandedFile]
) -> Callable[[list[str]], dict[str, str]] | None:
    """How to type the new fields found in ``files`` (inferred from their first files, within
    the sample limits; a field not in the sample is a string), or None: strings."""
    if not source.infer_column_types:
        return None

    def types(names: list[str]) -> dict[str, str]:
        sample = infer_schema(source, files)  # within the same sample limits
        return {n: sample.types.get(n) or "string" for n in names}

    return types


def record_evolution(
    location: str, columns: list[tuple[str, str]], added: list[str], files: list[LandedFile]
) -> SchemaVersion:
    """Store the schema after new fields were added to the table as the next version."""
    latest = latest_version(location)
    version = write_version(
        location,
        columns,
        [f.path for f in files],
        added=added,
        column_types=True if latest is None else latest.column_types,
    )
    log.warning("schema evolved: added %s; schema version %d", ", ".join(added), version.version)
    return version


# ---------------------------------------------------------------- without a session


def source_columns(project: Project, source_name: str) -> tuple[list[tuple[str, str]], str]:
    """The data columns of a files source's Bronze table and where they come from: its Delta
    table's log when it exists, else the latest stored schema version, else inferred now from
    the landed files (nothing is stored). Empty when nothing has landed yet."""
    from lakehouse.io.log_schema import delta_log_columns

    handle = project.source_handle(source_name)
    source = handle.spec
    assert isinstance(source, FileSource)
    logged = delta_log_columns(handle.target.location)
    if logged is not None:
        metadata = {c.name for c in BRONZE_METADATA_COLUMNS}
        columns = [(n, t) for n, t, _ in logged if n not in metadata]
        return columns, f"the Delta log of {handle.target.full_name}"
    location = schema_location(project, source_name)
    stored = latest_version(location)
    if stored is not None:
        return stored.columns, f"schema version {stored.version} at {location}"
    landing = project.resolve_path(source.path)
    sample = []
    for landed in list_landed_files(landing, source.glob)[: source.infer_max_files]:
        text = source.format not in ("parquet", "excel")
        decoding = inspect_file(landed.path, source.encoding, text=text)
        if decoding is not None:
            sample.append(dataclasses.replace(landed, decoding=decoding))
    inference = infer_schema(source, sample)
    return inference.columns(source.infer_column_types), (
        f"{len(inference.files)} file(s) landed at {landing}"
    )
