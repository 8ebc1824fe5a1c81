"""What an engine can do with an existing Delta table, checked before the work starts.

Tables move between engines: a table created by JVM Spark + delta-spark may be written by the
embedded Sail engine the next run, and the other way round. Measured with pysail 0.7.2,
delta-spark 4.0.1 (re-checked with 4.4.0) and deltalake 1.6.6 (ARCHITECTURE.md has the whole table):

* Sail reads every table feature delta-spark writes, but refuses to write tables with
  ``changeDataFeed``, ``rowTracking`` or ``domainMetadata`` (and MERGE into tables with
  ``identityColumns``), after the job has already computed what it meant to write.
* Sail cannot read TIMESTAMP columns stored as Parquet INT96, JVM Spark's default encoding
  ("Cannot cast column ... from 'Timestamp(µs)' (physical) ..."), and fails only once rows
  are read.
* Sail enforces CHECK constraints on appends but not on MERGE or UPDATE: violating rows are
  committed. The write guard therefore checks a table's constraints itself, on every engine.

The protocol is read from the Delta log with delta-rs when a table is registered and again
with the rest of every write's snapshot (:mod:`lakehouse.io.snapshot`); a location delta-rs
cannot reach (e.g. ``hdfs://``) is not checked, and the engine's own errors apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lakehouse.core.errors import LakehouseError

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

Operation = Literal["append", "overwrite", "merge", "alter"]
# Writer features Sail 0.7.2 refuses to write ("Unsupported table features required: ...").
SAIL_UNWRITABLE = frozenset({"changeDataFeed", "rowTracking", "domainMetadata"})
SAIL_UNMERGEABLE = frozenset({"identityColumns"})
CONSTRAINT_PREFIX = "delta.constraints."


@dataclass(frozen=True)
class TableProtocol:
    """A Delta table's protocol and the table properties that change how it is written."""

    min_reader_version: int
    min_writer_version: int
    reader_features: frozenset[str] = frozenset()
    writer_features: frozenset[str] = frozenset()
    configuration: dict[str, str] = field(default_factory=dict)

    @property
    def constraints(self) -> dict[str, str]:
        """CHECK constraints by name (``ALTER TABLE ... ADD CONSTRAINT name CHECK (expr)``)."""
        return {
            key.removeprefix(CONSTRAINT_PREFIX): expr
            for key, expr in self.configuration.items()
            if key.startswith(CONSTRAINT_PREFIX)
        }

    def features_blocking(self, engine: str, operation: Operation) -> list[str]:
        """The table features ``engine`` cannot honour for ``operation``, sorted."""
        if engine != "sail":
            return []  # delta-spark checks the protocol itself before it writes anything
        blocked = set(self.writer_features & SAIL_UNWRITABLE)
        cdf = self.configuration.get("delta.enableChangeDataFeed", "").lower() == "true"
        if cdf and self.min_writer_version >= 4:  # legacy protocol: CDF without a feature list
            blocked.add("changeDataFeed")
        if operation == "merge":
            blocked |= self.writer_features & SAIL_UNMERGEABLE
        return sorted(blocked)


def read_protocol(location: str) -> TableProtocol | None:
    """The protocol of the Delta table at ``location``; None when delta-rs cannot read it."""
    try:
        from deltalake import DeltaTable

        return protocol_of(DeltaTable(location))
    except Exception as exc:  # unreachable scheme, no table yet
        log.debug("no Delta protocol for %s: %s", location, exc)
        return None


def protocol_of(table: DeltaTable) -> TableProtocol:
    """The protocol and table properties of a loaded delta-rs table (no further log read)."""
    protocol = table.protocol()
    return TableProtocol(
        min_reader_version=int(protocol.min_reader_version),
        min_writer_version=int(protocol.min_writer_version),
        reader_features=frozenset(protocol.reader_features or ()),
        writer_features=frozenset(protocol.writer_features or ()),
        configuration=dict(table.metadata().configuration),
    )


def refuse_unwritable(
    protocol: TableProtocol | None, engine: str, table: str, operation: Operation
) -> None:
    """Raise before any work when ``engine`` cannot ``operation`` the table."""
    if protocol is None:
        return
    blocked = protocol.features_blocking(engine, operation)
    if blocked:
        raise LakehouseError(
            f"{table}: the {engine} engine cannot {operation} this Delta table: it uses "
            f"{', '.join(blocked)} (protocol {protocol.min_reader_version}/"
            f"{protocol.min_writer_version}); run this step with --engine spark "
            "(delta-spark writes every feature), or recreate the table without them"
        )


def int96_timestamp_columns(location: str) -> list[str]:
    """Columns of the table's data files stored as Parquet INT96 (first such file decides)."""
    try:
        import pyarrow.parquet as pq
        from deltalake import DeltaTable

        files = DeltaTable(location).file_uris()
    except Exception as exc:
        log.debug("cannot list the files of %s: %s", location, exc)
        return []
    for uri in files:
        try:
            schema = pq.read_metadata(uri.removeprefix("file://")).schema
        except Exception as exc:  # a remote file pyarrow cannot open here
            log.debug("cannot read the footer of %s: %s", uri, exc)
            return []
        found = [
            schema.column(i).name
            for i in range(len(schema))
            if schema.column(i).physical_type == "INT96"
        ]
        if found:
            return found
    return []


def refuse_unreadable(location: str, engine: str, table: str) -> None:
    """Raise when ``engine`` would fail mid-read on the table's data files."""
    if engine != "sail":
        return
    columns = int96_timestamp_columns(location)
    if columns:
        raise LakehouseError(
            f"{table}: the sail engine cannot read TIMESTAMP columns stored as Parquet INT96 "
            f"({', '.join(columns)}, written by JVM Spark with its default "
            "spark.sql.parquet.outputTimestampType); rewrite the table once on JVM Spark with "
            "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS (the spark engine sets it), "
            "e.g. INSERT OVERWRITE t SELECT * FROM t, or read it with --engine spark"
        )
