"""The TableStore protocol: what pipeline code reads and writes the catalog's tables through.

:class:`lakehouse.io.delta.DeltaStore` implements it on Delta; the governed store of
:mod:`lakehouse.governance.store` implements it by checking access and delegating to one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, TypeAlias

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from lakehouse.config.project import Project, TableRef
from lakehouse.engine import EngineKind
from lakehouse.io.results import Compaction, HistoryEntry, Restored, WriteResult
from lakehouse.io.table_features import TableProtocol

TableName: TypeAlias = str | TableRef
"""A catalog table by its ``catalog.schema.table`` or by its handle (resolved already)."""


class TableStore(Protocol):
    """Reads, writes and maintains the catalog's tables for one session.

    Every operation takes a table's handle (:class:`TableRef`, what pipeline code passes) or
    its ``catalog.schema.table`` (parsed into the handle once, at the call, by
    :meth:`Project.table`); inside the operation only the handle travels.
    """

    @property
    def spark(self) -> SparkSession: ...

    @property
    def project(self) -> Project: ...

    @property
    def engine(self) -> EngineKind: ...

    def task_scope(self, task_key: str) -> AbstractContextManager[object]:
        """Attribute what happens in the block to ``task_key``."""
        ...

    def register_all(self) -> None: ...

    def ensure_table(self, name: TableName) -> TableRef: ...

    def protocol(self, name: TableName) -> TableProtocol | None: ...

    def exists(self, name: TableName) -> bool: ...

    def read(self, name: TableName, version: int | None = None) -> DataFrame: ...

    def schema(self, name: TableName) -> T.StructType: ...

    def version(self, name: TableName) -> int: ...

    def history(self, name: TableName, limit: int | None = None) -> list[HistoryEntry]: ...

    def row_count(self, name: TableName) -> int: ...

    def row_count_unchecked(self, name: TableName) -> int: ...

    def append(
        self, name: TableName, df: DataFrame, *, add_new_columns: bool = False
    ) -> WriteResult: ...

    def append_system(self, name: TableName, df: DataFrame) -> WriteResult:
        """Append the system's own bookkeeping rows (no access check, not observed)."""
        ...

    def overwrite(self, name: TableName, df: DataFrame) -> WriteResult: ...

    def merge(
        self,
        name: TableName,
        source: DataFrame,
        keys: list[str],
        *,
        newer_than: str | None = None,
        insert_only: bool = False,
        delete_flag: str | None = None,
    ) -> WriteResult: ...

    def add_columns(self, name: TableName, columns: list[tuple[str, T.DataType]]) -> None: ...

    def evolve(
        self, name: TableName, produced: T.StructType, *, step: str, replace: bool = False
    ) -> TableRef:
        """Create or evolve the table so it takes rows of ``produced``."""
        ...

    def delete_where(self, name: TableName, predicate: str) -> WriteResult:
        """Delete the rows matching a SQL predicate."""
        ...

    def drop_data(self, name: TableName) -> bool:
        """Delete the table's data and registration (the next write recreates it)."""
        ...

    def optimize(self, name: TableName, zorder_by: list[str] | None = None) -> Compaction: ...

    def vacuum(
        self,
        name: TableName,
        retention_hours: int = 168,
        *,
        enforce_retention_duration: bool = True,
    ) -> list[str]: ...

    def restore(self, name: TableName, version: int) -> Restored: ...
