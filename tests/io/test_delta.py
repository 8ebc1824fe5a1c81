"""The Delta adapter on real Delta tables, on Sail and on JVM Spark + delta-spark."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.config import Project
from lakehouse.core.errors import LakehouseError, SchemaMismatchError
from lakehouse.engine import EngineSession
from lakehouse.io.delta import DeltaStore
from lakehouse.io.schema_guard import conform_to_schema

pytestmark = pytest.mark.delta

ITEMS = "id int, label string, qty int"


def test_register_creates_empty_tables_with_declared_schema(
    tables: DeltaStore, spark: SparkSession
) -> None:
    assert tables.version("cat.s.items") == 0
    assert tables.row_count("cat.s.items") == 0
    schema = tables.schema("cat.s.items")
    assert [(f.name, f.dataType.simpleString(), f.nullable) for f in schema.fields] == [
        ("id", "int", False),
        ("label", "string", True),
        ("qty", "int", True),
    ]
    names = {r.tableName for r in spark.sql("SHOW TABLES IN s").collect()}
    assert {"items", "events"} <= names
    assert spark.table("s.items").count() == 0


def test_append_overwrite_and_time_travel(tables: DeltaStore, spark: SparkSession) -> None:
    first = tables.append("cat.s.items", spark.createDataFrame([(1, "a", 1), (2, "b", 2)], ITEMS))
    assert (first.rows_written, first.version, first.previous_version) == (2, 1, 0)
    second = tables.overwrite("cat.s.items", spark.createDataFrame([(3, "c", 3)], ITEMS))
    assert (second.rows_written, second.version) == (1, 2)
    assert sorted(r.id for r in tables.read("cat.s.items").collect()) == [3]
    assert sorted(r.id for r in tables.read("cat.s.items", version=1).collect()) == [1, 2]
    assert [h.operation for h in tables.history("cat.s.items")] == [
        "WRITE",
        "WRITE",
        "CREATE TABLE",
    ]


def test_merge_upserts_and_replay_commits_nothing(tables: DeltaStore, spark: SparkSession) -> None:
    tables.append("cat.s.items", spark.createDataFrame([(1, "a", 1), (2, "b", 2)], ITEMS))
    updates = spark.createDataFrame([(2, "B", 20), (3, "c", 3)], ITEMS)
    merged = tables.merge("cat.s.items", updates, ["id"])
    assert merged.rows_written == 2
    assert merged.committed
    expected = spark.createDataFrame([(1, "a", 1), (2, "B", 20), (3, "c", 3)], ITEMS)
    assert_df_equality(
        tables.read("cat.s.items"), expected, ignore_row_order=True, ignore_nullable=True
    )
    replay = tables.merge("cat.s.items", updates, ["id"])
    assert not replay.committed
    assert replay.rows_written == 0


def test_merge_newer_than_keeps_the_later_row(tables: DeltaStore, spark: SparkSession) -> None:
    tables.append("cat.s.items", spark.createDataFrame([(1, "new", 5)], ITEMS))
    tables.merge(
        "cat.s.items", spark.createDataFrame([(1, "old", 4)], ITEMS), ["id"], newer_than="qty"
    )
    assert [(r.label, r.qty) for r in tables.read("cat.s.items").collect()] == [("new", 5)]


def test_bigint_overflow_into_int_is_refused(tables: DeltaStore, spark: SparkSession) -> None:
    rows = spark.createDataFrame(
        [(1, "ok", 5), (2, "big", 2**40)], "id bigint, label string, qty bigint"
    )
    with pytest.raises(SchemaMismatchError, match=r"1 qty: bigint values that do not fit int"):
        tables.append("cat.s.items", rows)
    assert tables.version("cat.s.items") == 0
    assert tables.row_count("cat.s.items") == 0


def test_bigint_that_fits_is_cast_and_written(tables: DeltaStore, spark: SparkSession) -> None:
    rows = spark.createDataFrame([(1, "ok", 5)], "id bigint, label string, qty bigint")
    tables.append("cat.s.items", rows)
    assert tables.read("cat.s.items").collect()[0].asDict() == {"id": 1, "label": "ok", "qty": 5}


def test_null_in_not_null_and_unknown_columns_are_refused(
    tables: DeltaStore, spark: SparkSession
) -> None:
    with pytest.raises(SchemaMismatchError, match="id: NULL in a NOT NULL column"):
        tables.append("cat.s.items", spark.createDataFrame([(None, "x", 1)], ITEMS))
    extra = spark.createDataFrame([(1, "x", 1, "?")], ITEMS + ", color string")
    with pytest.raises(SchemaMismatchError, match="columns the table does not have: color"):
        tables.append("cat.s.items", extra)


def test_partitioned_table_keeps_declared_column_order(
    tables: DeltaStore, spark: SparkSession
) -> None:
    import datetime as dt

    rows = spark.createDataFrame([(dt.date(2026, 1, 1), 7)], "day date, id bigint")
    tables.append("cat.s.events", rows)
    assert tables.read("cat.s.events").columns == ["id", "day"]


def test_maintenance_optimize_restore_vacuum(tables: DeltaStore, spark: SparkSession) -> None:
    """delta-rs on Sail, OPTIMIZE / RESTORE / VACUUM in Spark SQL on JVM Spark: same outcome."""
    for i in range(3):
        tables.append("cat.s.items", spark.createDataFrame([(i, "x", i)], ITEMS).coalesce(1))
    compacted = tables.optimize("cat.s.items")
    assert (compacted.files_removed, compacted.files_added) == (3, 1)
    assert tables.row_count("cat.s.items") == 3
    restored = tables.restore("cat.s.items", 1)
    assert (restored.files_removed, restored.files_restored) == (1, 1)
    assert [r.id for r in tables.read("cat.s.items").collect()] == [0]
    assert tables.history("cat.s.items", limit=1)[0].operation == "RESTORE"
    with pytest.raises(LakehouseError, match="retention"):
        tables.vacuum("cat.s.items", retention_hours=0)
    removed = tables.vacuum("cat.s.items", retention_hours=0, enforce_retention_duration=False)
    assert len(removed) == 3  # the other two appends' files and the compacted file
    assert [r.id for r in tables.read("cat.s.items").collect()] == [0]


@pytest.mark.sail_only("a new Connect session has an empty catalog; JVM sessions share theirs")
def test_tables_survive_a_new_session(
    tables: DeltaStore, spark: SparkSession, project: Project, engine_session: EngineSession
) -> None:
    tables.append("cat.s.items", spark.createDataFrame([(1, "a", 1)], ITEMS))
    assert engine_session.remote is not None
    other = SparkSession.builder.remote(engine_session.remote).create()  # a new, empty catalog
    try:
        assert not _has_schema(other, "s")
        fresh = DeltaStore(other, project, "sail")
        fresh.register_all()
        assert fresh.row_count("cat.s.items") == 1
        assert other.table("s.items").count() == 1
    finally:
        other.stop()


def _has_schema(spark: SparkSession, name: str) -> bool:
    return any(r[0] == name for r in spark.sql("SHOW SCHEMAS").collect())


@pytest.mark.transform
def test_conform_to_schema_widens_without_a_check(spark: SparkSession) -> None:
    target = T.StructType([T.StructField("n", T.LongType()), T.StructField("s", T.StringType())])
    df = spark.createDataFrame([("a", 1)], "s string, n int")
    out = conform_to_schema(df, target, "t")
    assert out.columns == ["n", "s"]
    assert out.schema["n"].dataType == T.LongType()
    assert out.collect()[0].asDict() == {"n": 1, "s": "a"}


@pytest.mark.transform
def test_conform_to_schema_refuses_lossy_string_cast(spark: SparkSession) -> None:
    target = T.StructType([T.StructField("n", T.IntegerType())])
    with pytest.raises(SchemaMismatchError, match="1 n: string values that do not fit int"):
        conform_to_schema(spark.createDataFrame([("1",), ("x",)], "n string"), target, "t")


def test_check_constraints_are_enforced_on_append_and_merge(
    tables: DeltaStore, spark: SparkSession, project: Project
) -> None:
    """Sail enforces CHECK constraints on appends only and commits violating MERGE rows;
    the write guard checks them itself, so both engines refuse the same rows."""
    from deltalake import DeltaTable

    location = project.table("cat.s.items").location
    DeltaTable(location).alter.add_constraint({"qty_positive": "qty > 0"})
    fresh = DeltaStore(spark, project, tables.engine)  # reads the new protocol
    fresh.append("cat.s.items", spark.createDataFrame([(1, "a", 1), (2, "b", 2)], ITEMS))
    refused = "1 CHECK constraint qty_positive \\(qty > 0\\) violated"
    with pytest.raises(SchemaMismatchError, match=refused):
        fresh.append("cat.s.items", spark.createDataFrame([(3, "c", -3)], ITEMS))
    with pytest.raises(SchemaMismatchError, match=refused):
        fresh.merge("cat.s.items", spark.createDataFrame([(2, "b", -2)], ITEMS), ["id"])
    with pytest.raises(SchemaMismatchError, match="2 CHECK constraint qty_positive"):
        fresh.merge(
            "cat.s.items", spark.createDataFrame([(4, "d", None), (5, "e", 0)], ITEMS), ["id"]
        )
    # a row the MERGE deletes is not checked (its values are never written)
    flagged = spark.createDataFrame([(1, "a", -1, True)], ITEMS + ", _deleted boolean")
    fresh.merge("cat.s.items", flagged, ["id"], delete_flag="_deleted")
    assert [(r.id, r.qty) for r in fresh.read("cat.s.items").collect()] == [(2, 2)]


def test_change_data_feed_table_is_refused_up_front_on_sail_and_written_on_jvm(
    tables: DeltaStore, spark: SparkSession, project: Project, tmp_path: Path
) -> None:
    """A table with a feature Sail cannot write fails before any work, naming the feature;
    delta-spark writes it."""
    import pyarrow as pa
    from deltalake import write_deltalake

    location = project.table("cat.s.events").location
    shutil.rmtree(location)  # created by the fixture: write it anew, with the feature
    schema = pa.schema([("id", pa.int64()), ("day", pa.date32())])
    write_deltalake(
        location,
        pa.table({"id": [1], "day": [None]}, schema=schema),
        mode="overwrite",
        partition_by=["day"],
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    fresh = DeltaStore(spark, project, tables.engine)
    rows = spark.createDataFrame([(2, None)], "id bigint, day date")
    if tables.engine == "sail":
        with pytest.raises(LakehouseError) as refused:
            fresh.append("cat.s.events", rows)
        assert str(refused.value).startswith(
            "cat.s.events: the sail engine cannot append this Delta table: it uses "
            "changeDataFeed (protocol 1/4); run this step with --engine spark"
        )
        assert fresh.row_count("cat.s.events") == 1  # reading it works
    else:
        fresh.append("cat.s.events", rows)
        assert sorted(r.id for r in fresh.read("cat.s.events").collect()) == [1, 2]
