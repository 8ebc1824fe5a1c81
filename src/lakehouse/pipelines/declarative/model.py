"""The shared vocabulary of declarative pipelines.

Python definitions (``pyspark.pipelines`` plus the Databricks-only expectations and AUTO CDC
options) and SQL definitions (``CREATE MATERIALIZED VIEW`` / ``STREAMING TABLE`` / ``FLOW``)
both end up as these values; the graph and the runner consume nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ExpectationAction = Literal["warn", "drop", "fail"]
DatasetKind = Literal["materialized_view", "streaming_table", "temporary_view"]


@dataclass(frozen=True)
class SourceLocation:
    """Where a definition was written (for errors: ``file:line``)."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Expectation:
    """A DLT expectation: a SQL boolean ``condition`` and what a failing row does.

    ``warn`` keeps the row and counts it (``@dp.expect``, ``CONSTRAINT … EXPECT``), ``drop``
    quarantines it (``expect_or_drop``, ``ON VIOLATION DROP ROW``), ``fail`` stops the update
    (``expect_or_fail``, ``ON VIOLATION FAIL UPDATE``).
    """

    name: str
    condition: str
    action: ExpectationAction = "warn"


@dataclass(frozen=True)
class AutoCdc:
    """An AUTO CDC (``APPLY CHANGES``) flow: change rows of ``source`` applied to ``target``.

    Column names are unqualified identifiers; ``sequence_by``, ``apply_as_deletes`` and
    ``apply_as_truncates`` are SQL expressions.
    """

    target: str
    source: str
    keys: tuple[str, ...]
    sequence_by: str
    stored_as_scd_type: Literal[1, 2] = 1
    apply_as_deletes: str | None = None
    apply_as_truncates: str | None = None
    column_list: tuple[str, ...] | None = None
    except_column_list: tuple[str, ...] | None = None
    track_history_column_list: tuple[str, ...] | None = None
    track_history_except_column_list: tuple[str, ...] | None = None
    ignore_null_updates: bool = False
    name: str | None = None  # the flow's name; default: the target's

    @property
    def flow_name(self) -> str:
        return self.name or self.target


@dataclass(frozen=True)
class FilesSource:
    """Files read incrementally: ``read_files(path, format => …)`` / ``cloud_files(…)`` in
    SQL, ``spark.readStream.format("cloudFiles")`` in Python (Auto Loader)."""

    path: str
    format: str
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamRead:
    """One streaming source in a SQL query, replaced in the query text by ``placeholder``
    (an identifier); the runner binds the placeholder to a view of the new rows only.

    ``incremental=False`` marks a batch ``read_files(...)`` (no ``STREAM``): the runner binds
    the placeholder to all the files, every update.
    """

    placeholder: str
    table: str | None = None  # STREAM(table) / STREAM table
    files: FilesSource | None = None  # STREAM read_files(...) / read_files(...)
    incremental: bool = True


@dataclass(frozen=True)
class SqlQuery:
    """Spark SQL text with every streaming source replaced by its placeholder."""

    text: str
    streams: tuple[StreamRead, ...] = ()


@dataclass(frozen=True)
class SqlDataset:
    """``CREATE [OR REFRESH] [PRIVATE] MATERIALIZED VIEW | STREAMING TABLE | TEMPORARY VIEW``."""

    kind: DatasetKind
    name: str
    location: SourceLocation
    query: SqlQuery | None = None  # None: a streaming table fed only by flows
    comment: str | None = None
    schema: str | None = None  # column definitions as DDL, constraints removed
    expectations: tuple[Expectation, ...] = ()
    table_properties: Mapping[str, str] = field(default_factory=dict)
    partition_cols: tuple[str, ...] = ()
    cluster_by: tuple[str, ...] = ()
    private: bool = False


@dataclass(frozen=True)
class SqlFlow:
    """``CREATE FLOW name AS INSERT INTO target BY NAME <query>`` or ``… AS AUTO CDC INTO …``."""

    name: str
    target: str
    location: SourceLocation
    query: SqlQuery | None = None
    auto_cdc: AutoCdc | None = None
    once: bool = False


@dataclass(frozen=True)
class SqlSet:
    """``SET key = value``: a conf for the definitions after it in the same file."""

    key: str
    value: str
    location: SourceLocation


@dataclass(frozen=True)
class SqlUse:
    """``USE CATALOG c`` / ``USE SCHEMA s`` / ``USE c.s``: where unqualified names resolve for
    the definitions after it in the same file (Databricks and Apache Spark both scope it to
    the file). Names are plain (unquoted); ``USE CATALOG c`` gives ``schema=None`` (Spark
    clears the current schema), ``USE SCHEMA s`` gives ``catalog=None`` (catalog unchanged).
    """

    catalog: str | None
    schema: str | None
    location: SourceLocation


SqlDefinition = SqlDataset | SqlFlow | SqlSet | SqlUse
