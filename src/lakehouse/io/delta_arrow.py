"""Delta tables read outside the engine, with delta-rs and pyarrow: for the servers that keep
a copy of a table in memory (the SQL endpoint's DuckDB mirror, the serving app's online
features) and reload it when the table moves.

:func:`latest_commit` is the cheap freshness check (the newest commit file's name, no log
read); :func:`delta_arrow` reads a table's snapshot as Arrow.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

log = logging.getLogger(__name__)

_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def latest_commit(location: str) -> int | None:
    """The latest commit version of a Delta table on the local file system, from the names in
    its ``_delta_log`` (a commit file appears whole, when the commit is done); None when that
    cannot be told this way (another file system, no log yet)."""
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return None
    directory = Path(parsed.path if parsed.scheme else location) / "_delta_log"
    try:
        names = [entry.name for entry in directory.iterdir()]
    except OSError:
        return None
    versions = [int(m.group(1)) for m in map(_COMMIT_FILE.match, names) if m]
    return max(versions) if versions else None


def delta_arrow(delta: DeltaTable) -> Any:
    """The Delta table as Arrow: a lazy dataset, or delta-rs's own scan for features the
    dataset cannot read (deletion vectors, column mapping).

    deltalake 1.6 raises for deletion vectors but not for column mapping: on a table written
    by delta-spark with ``delta.columnMapping.mode`` set, ``to_pyarrow_dataset`` reads the
    logical column names from files that store physical ones and returns every value NULL.
    """
    if delta.metadata().configuration.get("delta.columnMapping.mode", "none") == "none":
        try:
            return delta.to_pyarrow_dataset()
        except Exception:  # deltalake raises for table features pyarrow datasets lack
            log.debug("no Arrow dataset for %s; scanning it with delta-rs", delta.table_uri)
    reader = QueryBuilder().register("t", delta).execute("SELECT * FROM t")
    return pa.RecordBatchReader.from_stream(reader).read_all()
