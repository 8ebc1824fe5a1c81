"""The rows a Delta table lost and gained between two versions, from its log (no change feed).

The project never enables change data feed (Sail cannot write it), so changes come from the
files: a file only in the old version lost all its (live) rows, a file only in the new one
gained them, and a file in both whose deletion vector grew lost the rows it newly marks.
Unchanged rows of a rewritten file appear in both ``removed`` and ``added``; aggregates that
subtract the one and add the other stay exact.

``deltalake`` (delta-rs) lists each version's files and materialises their deletion vectors
as keep-masks; the rows are read with pyarrow. :class:`ChangesUnreadableError` says why the
changes cannot be read (the old version is gone, its files were vacuumed, the schema or the
partitioning changed, column mapping, a deletion vector that shrank).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)


class ChangesUnreadableError(Exception):
    """The changes between two versions cannot be read from the log; the message says why."""


@dataclass(frozen=True)
class TableChanges:
    """Rows removed and added between two versions (Arrow, the requested columns)."""

    removed: pa.Table
    added: pa.Table
    files_read: int

    @property
    def append_only(self) -> bool:
        return bool(self.removed.num_rows == 0)


@dataclass(frozen=True)
class _Snapshot:
    files: dict[str, dict[str, Any]]  # relative path -> partition values
    masks: dict[str, pa.Array]  # relative path -> keep mask (files with a deletion vector)
    schema: pa.Schema
    partition_columns: list[str]
    root: str


def _load(location: str, version: int) -> _Snapshot:
    from deltalake import DeltaTable

    try:
        table = DeltaTable(location, version=version)
    except Exception as e:  # delta-rs raises its own errors for a missing version
        raise ChangesUnreadableError(f"version {version} cannot be loaded ({e})") from e
    config = table.metadata().configuration
    if config.get("delta.columnMapping.mode", "none") != "none":
        raise ChangesUnreadableError("the table uses column mapping")
    partitions = list(table.metadata().partition_columns)
    actions = pa.table(table.get_add_actions(flatten=True))
    part_cols = {c: actions.column(f"partition.{c}").to_pylist() for c in partitions}
    files = {
        unquote(p): {c: part_cols[c][i] for c in partitions}
        for i, p in enumerate(actions.column("path").to_pylist())
    }
    root = table.table_uri.rstrip("/") + "/"
    masks: dict[str, pa.Array] = {}
    for batch in pa.table(table.deletion_vectors()).to_batches():
        for uri, mask in zip(
            batch.column("filepath").to_pylist(), batch.column("selection_vector"), strict=True
        ):
            path = unquote(str(uri))
            masks[path[len(unquote(root)) :] if path.startswith(unquote(root)) else path] = (
                mask.values
            )
    return _Snapshot(files, masks, pa.schema(table.schema().to_arrow()), partitions, root)


def _read(snap: _Snapshot, path: str, columns: list[str], keep: pa.Array | None) -> pa.Table:
    from pyarrow import fs

    filesystem, file_path = fs.FileSystem.from_uri(snap.root + path)
    data_columns = [c for c in columns if c not in snap.partition_columns]
    try:
        present = pq.read_schema(file_path, filesystem=filesystem).names
        table = pq.read_table(
            file_path, columns=[c for c in data_columns if c in present], filesystem=filesystem
        )
    except (FileNotFoundError, OSError) as e:
        raise ChangesUnreadableError(f"the data file {path} is gone (vacuumed?)") from e
    if keep is not None:
        if len(keep) != table.num_rows:
            raise ChangesUnreadableError(f"the deletion vector of {path} does not match its rows")
        table = table.filter(keep)
    arrays = []
    for c in columns:
        field = snap.schema.field(c)
        if c in snap.partition_columns:
            value = snap.files[path][c]
            arrays.append(pa.array([value] * table.num_rows).cast(field.type))
        elif c in table.column_names:
            arrays.append(table.column(c).cast(field.type))
        else:  # a column added after the file was written
            arrays.append(pa.nulls(table.num_rows, field.type))
    return pa.table(arrays, schema=pa.schema([snap.schema.field(c) for c in columns]))


def _newly_deleted(path: str, before: pa.Array | None, after: pa.Array | None) -> pa.Array | None:
    """The mask of a kept file's rows that its new deletion vector deletes (None: none)."""
    if (before is None and after is None) or (before is not None and before.equals(after)):
        return None
    if after is None:
        raise ChangesUnreadableError(f"the deletion vector of {path} was dropped")
    if before is None:
        before = pa.array([True] * len(after))
    if pc.any(pc.and_(pc.invert(before), after)).as_py():
        raise ChangesUnreadableError(f"the deletion vector of {path} shrank")
    return pc.and_(before, pc.invert(after))


def table_changes(
    location: str, old_version: int, new_version: int, columns: list[str]
) -> TableChanges:
    """The rows (``columns`` of them) removed and added from ``old_version`` to ``new_version``."""
    old = _load(location, old_version)
    new = _load(location, new_version)
    if old.schema != new.schema:
        raise ChangesUnreadableError("the input's schema changed")
    if old.partition_columns != new.partition_columns:
        raise ChangesUnreadableError("the input's partitioning changed")
    missing = [c for c in columns if c not in new.schema.names]
    if missing:
        raise ChangesUnreadableError(f"the input has no column {', '.join(missing)}")
    removed: list[pa.Table] = []
    added: list[pa.Table] = []
    for path in sorted(set(old.files) - set(new.files)):
        removed.append(_read(old, path, columns, old.masks.get(path)))
    for path in sorted(set(new.files) - set(old.files)):
        added.append(_read(new, path, columns, new.masks.get(path)))
    for path in sorted(set(old.files) & set(new.files)):
        gone = _newly_deleted(path, old.masks.get(path), new.masks.get(path))
        if gone is not None:
            removed.append(_read(old, path, columns, gone))
    schema = pa.schema([new.schema.field(c) for c in columns])
    return TableChanges(
        pa.concat_tables(removed) if removed else schema.empty_table(),
        pa.concat_tables(added) if added else schema.empty_table(),
        len(removed) + len(added),
    )


def change_read_share(location: str, old_version: int, new_version: int) -> float | None:
    """The share of the table's rows at ``new_version`` that :func:`table_changes` would read:
    the rows of the files removed, added or given a new deletion vector after
    ``old_version``, from the commit files in between and the two versions' file lists.

    Where a MERGE rewrote (or marked) files across the whole table, reading its changes costs
    more than reading the table. None when that cannot be told cheaply: not a local table,
    or a commit file cleaned up.
    """
    from deltalake import DeltaTable

    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return None
    log_dir = Path(parsed.path if parsed.scheme else location) / "_delta_log"
    removed: set[str] = set()
    added: set[str] = set()
    try:
        for version in range(old_version + 1, new_version + 1):
            with (log_dir / f"{version:020d}.json").open(encoding="utf-8") as commit:
                for line in commit:
                    action = json.loads(line)
                    if "add" in action:
                        added.add(unquote(action["add"]["path"]))
                    elif "remove" in action:
                        removed.add(unquote(action["remove"]["path"]))
        old = _rows_per_file(DeltaTable(location, version=old_version))
        new = _rows_per_file(DeltaTable(location, version=new_version))
    except (OSError, ValueError, KeyError) as e:
        log.debug("no change-read estimate for %s: %s", location, e)
        return None
    read = sum(new.get(p, 0) for p in added) + sum(old.get(p, 0) for p in removed - added)
    total = sum(new.values())
    return read / total if total else 1.0


def _rows_per_file(table: Any) -> dict[str, int]:
    """Each data file's row count (physical rows, deletion vectors not subtracted)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    paths = [unquote(p) for p in actions.column("path").to_pylist()]
    counts = actions.column("num_records").to_pylist()
    return {p: int(n or 0) for p, n in zip(paths, counts, strict=True)}
