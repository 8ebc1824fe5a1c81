"""The system-table registry: names, specs, row types, and rows written with its schema."""

from __future__ import annotations

import datetime as dt
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import load_project
from lakehouse.config.system_tables import (
    QUARANTINE_COLUMNS,
    JobRunRow,
    SystemTable,
    row_values,
    rows_frame,
    spark_schema,
    system_table_name,
)
from lakehouse.core.errors import ConfigError
from lakehouse.io.delta import DeltaStore
from tests.support import session_engine

SAMPLE = {
    "string": "x",
    "bigint": 7,
    "int": 3,
    "double": 0.5,
    "boolean": True,
    "timestamp": dt.datetime(2024, 1, 2, 3, 4, 5),
    "array<string>": ["a", "b"],
}


def _rows(table: SystemTable) -> list[object]:
    """A row with every column set and one with every nullable column None."""
    full = {c.name: SAMPLE[c.type] for c in table.spec.columns}
    sparse = {c.name: None if c.nullable else SAMPLE[c.type] for c in table.spec.columns}
    return [table.row_type(**full), table.row_type(**sparse)]


def _hashable(values: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


@pytest.mark.parametrize("table", list(SystemTable), ids=lambda t: t.table)
def test_row_fields_are_the_columns_in_order(table: SystemTable) -> None:
    assert [f.name for f in fields(table.row_type)] == [c.name for c in table.spec.columns]
    assert spark_schema(table).fieldNames() == [c.name for c in table.spec.columns]
    assert table.spec.layer == "system"


def test_system_table_name_and_generated_catalog_entries(demo_project_dir: Path) -> None:
    assert system_table_name("main", SystemTable.JOB_RUNS) == "main.meta.job_runs"
    assert SystemTable.LINEAGE.schema_table == "meta.lineage"
    project = load_project(demo_project_dir)
    for table in SystemTable:
        name = system_table_name(project.catalog.name, table)
        assert project.table(name).spec == table.spec


def test_quarantine_tables_come_from_the_config(demo_project_dir: Path) -> None:
    project = load_project(demo_project_dir)
    orders = "lakehouse.silver.orders"
    quarantine = project.quarantine_table(orders)
    assert quarantine == "lakehouse.silver.orders_quarantine"
    assert project.quarantined_table(quarantine) == orders
    assert project.quarantined_table(orders) is None
    columns = project.table(quarantine).spec.columns
    assert [c.name for c in columns] == [c.name for c in QUARANTINE_COLUMNS]
    assert sorted(project.quarantines) == sorted(project.silver)
    with pytest.raises(ConfigError, match="no Silver table with a quarantine"):
        project.quarantine_table("lakehouse.gold.daily_sales")


def test_rows_frame_refuses_another_tables_rows(spark: SparkSession) -> None:
    row = JobRunRow("job", "run", "task", 1, "SUCCESS", None, None, None, None, None, None)
    with pytest.raises(TypeError, match="LINEAGE rows are LineageRow, got JobRunRow"):
        rows_frame(spark, SystemTable.LINEAGE, [row])
    assert row_values(row)[:5] == ("job", "run", "task", 1, "SUCCESS")
    with pytest.raises(FrozenInstanceError):
        row.job = "another"  # type: ignore[misc]


def test_rows_round_trip_through_the_created_tables(
    spark: SparkSession, demo_project_dir: Path
) -> None:
    project = load_project(demo_project_dir)
    tables = DeltaStore(spark, project, session_engine(spark))
    for table in SystemTable:
        rows = _rows(table)
        frame = rows_frame(spark, table, rows)
        assert frame.schema == spark_schema(table)
        name = system_table_name(project.catalog.name, table)
        tables.append_system(name, frame)
        stored = {_hashable(tuple(r)) for r in tables.read(name).collect()}
        assert stored == {_hashable(row_values(r)) for r in rows}, table
