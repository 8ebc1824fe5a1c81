"""The Parquet table format (``engine.table_format: parquet``) the JVM benchmark peer runs on.

Marked ``transform``: it needs no Delta, so it also runs on classic JVM Spark
(``pytest tests/benchmarks --engine spark -m transform``).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import Project, load_project
from lakehouse.errors import LakehouseError, SchemaMismatchError
from lakehouse.tables import DeltaTables

pytestmark = pytest.mark.transform

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true, engine: {table_format: parquet}}}
"""
CATALOG = """
catalog:
  name: cat
  storage_root: ${var.data_root}/tables
  schemas:
    s:
      tables:
        items:
          layer: silver
          keys: [id]
          columns:
            - {name: id, type: int, nullable: false}
            - {name: label, type: string}
            - {name: seq, type: int}
        events:
          layer: gold
          partition_by: [day]
          columns:
            - {name: id, type: bigint}
            - {name: day, type: date}
"""
ITEMS = "id int, label string, seq int"
MERGE_SOURCE = "id int, label string, seq int, _del boolean"


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(textwrap.dedent(BUNDLE))
    (tmp_path / "conf" / "catalog.yml").write_text(textwrap.dedent(CATALOG))
    return load_project(tmp_path)


@pytest.fixture()
def tables(spark: SparkSession, project: Project, engine_name: str) -> DeltaTables:
    adapter = DeltaTables(spark, project, engine_name)  # type: ignore[arg-type]
    adapter.register_all()
    return adapter


def rows(tables: DeltaTables, name: str) -> list[tuple[object, ...]]:
    return sorted(tuple(r) for r in tables.read(name).collect())


def test_parquet_tables_start_empty_with_the_declared_schema(tables: DeltaTables) -> None:
    assert tables.table_format == "parquet"
    assert tables.exists("cat.s.items")
    assert tables.row_count("cat.s.items") == 0
    assert tables.version("cat.s.items") == -1
    assert [(f.name, f.nullable) for f in tables.schema("cat.s.items").fields] == [
        ("id", False),
        ("label", True),
        ("seq", True),
    ]
    location = Path(tables.project.table("cat.s.items").location)
    assert location.is_dir()
    assert not (location / "_delta_log").exists()


def test_append_overwrite_and_partitions(tables: DeltaTables, spark: SparkSession) -> None:
    tables.append("cat.s.items", spark.createDataFrame([(1, "a", 1)], ITEMS))
    tables.append("cat.s.items", spark.createDataFrame([(2, "b", 1)], ITEMS))
    assert rows(tables, "cat.s.items") == [(1, "a", 1), (2, "b", 1)]
    tables.overwrite("cat.s.items", spark.createDataFrame([(3, "c", 1)], ITEMS))
    assert rows(tables, "cat.s.items") == [(3, "c", 1)]
    day = dt.date(2024, 1, 2)
    tables.overwrite("cat.s.events", spark.createDataFrame([(7, day)], "id bigint, day date"))
    assert rows(tables, "cat.s.events") == [(7, day)]
    assert (Path(tables.project.table("cat.s.events").location) / "day=2024-01-02").is_dir()


def test_not_null_is_enforced(tables: DeltaTables, spark: SparkSession) -> None:
    with pytest.raises(SchemaMismatchError, match="NULL in a NOT NULL column"):
        tables.append("cat.s.items", spark.createDataFrame([(None, "x", 1)], ITEMS))


def test_merge_emulation_updates_inserts_deletes_respecting_newer_than(
    tables: DeltaTables, spark: SparkSession
) -> None:
    tables.append(
        "cat.s.items",
        spark.createDataFrame([(1, "a", 5), (2, "b", 5), (3, "c", 5), (4, "d", 5)], ITEMS),
    )
    source = spark.createDataFrame(
        [
            (1, "a2", 6, False),  # newer: updated
            (2, "b-old", 4, False),  # older: ignored
            (3, None, 6, True),  # newer delete: deleted
            (4, None, 4, True),  # older delete: ignored
            (5, "e", 1, False),  # new key: inserted
            (6, None, 1, True),  # delete of a missing key: nothing
        ],
        MERGE_SOURCE,
    )
    tables.merge("cat.s.items", source, ["id"], newer_than="seq", delete_flag="_del")
    assert rows(tables, "cat.s.items") == [(1, "a2", 6), (2, "b", 5), (4, "d", 5), (5, "e", 1)]
    leftovers = [
        p.name for p in Path(tables.project.table("cat.s.items").location).parent.iterdir()
    ]
    assert leftovers == ["items"] or sorted(leftovers) == ["events", "items"]


def test_insert_only_merge_appends_new_keys_only(tables: DeltaTables, spark: SparkSession) -> None:
    tables.append("cat.s.items", spark.createDataFrame([(1, "a", 1)], ITEMS))
    source = spark.createDataFrame([(1, "changed", 2), (2, "b", 1)], ITEMS)
    tables.merge("cat.s.items", source, ["id"], insert_only=True)
    tables.merge("cat.s.items", source, ["id"], insert_only=True)  # replay: nothing new
    assert rows(tables, "cat.s.items") == [(1, "a", 1), (2, "b", 1)]


def test_parquet_tables_have_no_versions(tables: DeltaTables) -> None:
    assert tables.history("cat.s.items") == []
    with pytest.raises(LakehouseError, match="no versions"):
        tables.read("cat.s.items", version=0)
