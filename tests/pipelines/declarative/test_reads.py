"""Routing a flow's reads (this thread only, restored after) and SQL table names."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from lakehouse.pipelines.declarative.model import FilesSource
from lakehouse.pipelines.declarative.reads import rewrite_tables, routed_reads, sql_tables

pytestmark = pytest.mark.transform


class Recorder:
    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.seen: list[tuple[str, object]] = []

    def table(self, name: str, *, stream: bool) -> DataFrame:
        self.seen.append(("stream" if stream else "table", name))
        return self.spark.range(1)

    def files(self, source: FilesSource, schema: Any) -> DataFrame:
        self.seen.append(("files", (source.path, source.format, dict(source.options))))
        return self.spark.range(2)

    def sql(self, text: str) -> DataFrame:
        self.seen.append(("sql", text))
        return self.spark.range(3)


def test_reads_are_routed_in_this_thread_only(spark: SparkSession) -> None:
    handler = Recorder(spark)
    other: list[object] = []
    reader_cls = type(spark.read)
    before = reader_cls.table
    with routed_reads(spark, handler):
        spark.read.table("a")
        spark.table("b")
        spark.readStream.table("c")
        spark.readStream.format("cloudFiles").option("cloudFiles.format", "csv").option(
            "header", True
        ).load("/landing")
        spark.sql("SELECT 1")

        def elsewhere() -> None:
            other.append(type(spark.readStream).__name__)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    assert handler.seen == [
        ("table", "a"),
        ("table", "b"),
        ("stream", "c"),
        ("files", ("/landing", "csv", {"header": "true"})),
        ("sql", "SELECT 1"),
    ]
    assert other == ["DataStreamReader"]
    assert reader_cls.table is before and type(spark.readStream).__name__ == "DataStreamReader"


def test_sql_table_names_and_rewrite() -> None:
    query = "WITH t AS (SELECT * FROM a.b) SELECT * FROM t JOIN c AS x ON t.id = x.id, range(3)"
    assert sql_tables(query) == ["c", "a.b"]
    assert rewrite_tables(query, {"a.b": "v1", "c": "v2"}) == (
        "WITH t AS (SELECT * FROM v1) SELECT * FROM t JOIN v2 AS x ON t.id = x.id CROSS JOIN RANGE(3)"
    )
