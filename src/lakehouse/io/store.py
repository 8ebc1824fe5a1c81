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
    """Reads, writes and maintains the catalog's tables for one session."""

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

    def ensure_table(self, name: str) -> TableRef: ...

    def protocol(self, name: str) -> TableProtocol | None: ...

    def exists(self, name: str) -> bool: ...

    def read(self, name: str, version: int | None = None) -> DataFrame: ...

    def schema(self, name: str) -> T.StructType: ...

    def version(self, name: str) -> int: ...

    def history(self, name: str, limit: int | None = None) -> list[HistoryEntry]: ...

    def row_count(self, name: str) -> int: ...

    def row_count_unchecked(self, name: str) -> int: ...

    def append(self, name: str, df: DataFrame, *, add_new_columns: bool = False) -> WriteResult: ...

    def append_system(self, name: str, df: DataFrame) -> WriteResult:
        """Append the system's own bookkeeping rows (no access check, not observed)."""
        ...

    def overwrite(self, name: str, df: DataFrame) -> WriteResult: ...

    def merge(
        self,
        name: str,
        source: DataFrame,
        keys: list[str],
        *,
        newer_than: str | None = None,
        insert_only: bool = False,
        delete_flag: str | None = None,
    ) -> WriteResult: ...

    def add_columns(self, name: str, columns: list[tuple[str, T.DataType]]) -> None: ...

    def optimize(self, name: str, zorder_by: list[str] | None = None) -> Compaction: ...

    def vacuum(
        self, name: str, retention_hours: int = 168, *, enforce_retention_duration: bool = True
    ) -> list[str]: ...

    def restore(self, name: str, version: int) -> Restored: ...
