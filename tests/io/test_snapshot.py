"""One read of the Delta log before a write and one after, on Sail and on JVM Spark."""

from __future__ import annotations

from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from lakehouse.config import Project
from lakehouse.config.project import TableRef
from lakehouse.io import delta, maintenance, snapshot
from lakehouse.io.delta import DeltaStore
from lakehouse.io.results import HistoryEntry
from lakehouse.io.snapshot import read_snapshot, spark_schema
from lakehouse.io.table_features import read_protocol

pytestmark = pytest.mark.delta

ITEMS = "id int, label string, qty int"
DECLARED = [("id", "int", False), ("label", "string", True), ("qty", "int", True)]


def _fields(schema: Any) -> list[tuple[str, str, bool]]:
    return [(f.name, f.dataType.simpleString(), f.nullable) for f in schema.fields]


def test_snapshot_has_the_version_schema_and_protocol_the_engine_reports(
    tables: DeltaStore, spark: SparkSession, project: Project
) -> None:
    tables.append("cat.s.items", spark.createDataFrame([(1, "a", 1)], ITEMS))
    ref = project.table("cat.s.items")
    snap = read_snapshot(spark, tables.engine, ref)
    assert snap.version == tables.version("cat.s.items") == 1
    assert _fields(snap.schema) == _fields(tables.schema("cat.s.items"))
    assert snap.protocol == read_protocol(ref.location)


def test_snapshot_falls_back_to_the_engine_where_delta_rs_cannot_read(
    tables: DeltaStore, spark: SparkSession, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version from the table's history, the schema from a Spark read, no protocol."""
    import deltalake

    class Unreachable:
        def __init__(self, location: str) -> None:
            raise OSError(f"no such scheme: {location}")

    history = [HistoryEntry(version=7, timestamp_ms=0, operation="WRITE", metrics={})]
    monkeypatch.setattr(maintenance, "read_history", lambda *args, **kwargs: history)
    monkeypatch.setattr(deltalake, "DeltaTable", Unreachable)
    snap = read_snapshot(spark, tables.engine, project.table("cat.s.items"))
    assert snap.version == 7
    assert _fields(snap.schema) == DECLARED
    assert snap.protocol is None


def test_snapshot_reads_the_schema_with_the_engine_where_it_cannot_convert_it(
    tables: DeltaStore, spark: SparkSession, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown_type(schema_json: str) -> None:
        raise ValueError("unknown type")

    monkeypatch.setattr(snapshot, "spark_schema", unknown_type)
    ref = project.table("cat.s.items")
    snap = read_snapshot(spark, tables.engine, ref)
    assert (snap.version, _fields(snap.schema)) == (0, DECLARED)
    assert snap.protocol is not None and snap.protocol == read_protocol(ref.location)


@pytest.mark.transform
def test_spark_schema_leaves_out_field_metadata() -> None:
    delta_schema = (
        '{"type":"struct","fields":[{"name":"s","type":{"type":"struct","fields":['
        '{"name":"n","type":"long","nullable":true,"metadata":{"comment":"inner"}}]},'
        '"nullable":false,"metadata":{"comment":"outer"}}]}'
    )
    schema = spark_schema(delta_schema)
    assert schema.simpleString() == "struct<s:struct<n:bigint>>"
    assert schema["s"].metadata == {} and schema["s"].nullable is False
    inner = schema["s"].dataType
    assert isinstance(inner, T.StructType) and inner["n"].metadata == {}


def test_a_write_resolves_its_table_once_and_reads_the_log_once_before_and_after(
    tables: DeltaStore, spark: SparkSession, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, int] = {"snapshot": 0, "history": 0, "lookup": 0, "spark read": 0}

    def counted(key: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[key] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(delta, "read_snapshot", counted("snapshot", delta.read_snapshot))
    monkeypatch.setattr(maintenance, "read_history", counted("history", maintenance.read_history))
    monkeypatch.setattr(Project, "table", counted("lookup", Project.table))
    reader = type(spark.read)
    monkeypatch.setattr(reader, "load", counted("spark read", reader.load))
    rows = spark.createDataFrame([(1, "a", 1), (2, "b", 2)], ITEMS)

    appended = tables.append("cat.s.items", rows)
    assert calls == {"snapshot": 1, "history": 1, "lookup": 0, "spark read": 0}
    assert (appended.table, appended.previous_version, appended.version) == ("cat.s.items", 0, 1)
    assert appended.rows_written == 2

    calls.update(dict.fromkeys(calls, 0))
    handle: TableRef = project.tables["cat.s.items"]
    merged = tables.merge(handle, rows.withColumn("qty", rows.qty + 1), ["id"])
    assert calls == {"snapshot": 1, "history": 1, "lookup": 0, "spark read": 0}
    assert (merged.table, merged.previous_version, merged.version) == ("cat.s.items", 1, 2)
    assert merged.rows_written == 2
