"""The declarative pipeline runner end to end on Delta: a Python pipeline with a file
source, a temporary view, streaming tables, an append flow, a materialized view and every
expectation kind, run twice with a new file in between."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse.config.project import Project
from lakehouse.config.system_tables import SystemTable
from lakehouse.pipelines.declarative.runner import PipelineUpdate, run_definition
from lakehouse.runtime.run import RunContext

from .conftest import definition, write

pytestmark = pytest.mark.delta

PIPELINE = """
from pyspark import pipelines as dp
from pyspark.sql import functions as F


@dp.temporary_view
def orders_raw():
    landing = spark.conf.get("orders.landing")
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load(landing)


@dp.table(comment="orders as they land")
@dp.expect("positive_amount", "amount > 0")
@dp.expect_or_drop("has_customer", "customer IS NOT NULL")
def orders_bronze():
    return spark.readStream.table("orders_raw")


dp.create_streaming_table("all_orders", expect_all_or_drop={"valid_id": "id IS NOT NULL"})


@dp.append_flow(target="all_orders")
def from_bronze():
    return spark.readStream.table("orders_bronze").select("id", "amount")


@dp.append_flow(target="all_orders", once=True)
def backfill():
    return spark.createDataFrame([(100, 5.0), (None, 1.0)], "id long, amount double")


@dp.expect_all({"revenue_positive": "revenue > 0", "has_customer": "customer IS NOT NULL"})
@dp.expect_all_or_fail({"revenue_known": "revenue IS NOT NULL"})
@dp.materialized_view
def revenue_by_customer():
    return (
        dp.read("orders_bronze")
        .groupBy("customer")
        .agg(F.sum("amount").alias("revenue"))
    )
"""

FIRST = [
    {"id": 1, "customer": "c1", "amount": 10.0, "status": "new"},
    {"id": 2, "customer": None, "amount": 5.0, "status": "paid"},
    {"id": 3, "customer": "c2", "amount": -1.0, "status": "paid"},
]
SECOND = [{"id": 4, "customer": "c1", "amount": 7.0, "status": "paid"}]


def land(folder: Path, name: str, rows: list[dict[str, object]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def counts(update: PipelineUpdate) -> dict[str, tuple[str, int, int]]:
    return {
        name.split(".")[-1]: (r.status, r.rows_written, r.dropped)
        for name, r in update.datasets.items()
    }


def rows(run: RunContext, table: str, *columns: str) -> list[tuple[object, ...]]:
    df = run.store.read(f"lh.sales.{table}").select(*columns)
    return [tuple(r) for r in df.orderBy(*columns).collect()]


def dq(run: RunContext) -> dict[tuple[str, str], tuple[str, int, int, str]]:
    df = run.store.read(run.project.system_table(SystemTable.DQ_RESULTS))
    return {
        (r["table"].split(".")[-1], r["rule"]): (
            r["action"],
            r["evaluated"],
            r["failed"],
            r["outcome"],
        )
        for r in df.filter(df.run_id == run.run_id).collect()
    }


@pytest.fixture()
def pipeline(project: Project, tmp_path: Path):  # type: ignore[no-untyped-def]
    write(tmp_path / "transformations" / "orders.py", PIPELINE)
    land(tmp_path / "landing", "a.json", FIRST)
    return definition(
        project,
        "orders",
        ["transformations/orders.py"],
        {"orders.landing": str(tmp_path / "landing")},
    )


def test_two_updates_process_only_the_new_file(run: RunContext, pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = run_definition(run, pipeline)
    assert first.error is None and first.problems == []
    assert counts(first) == {
        "orders_raw": ("COMPLETED", 0, 0),
        "orders_bronze": ("COMPLETED", 2, 1),
        "all_orders": ("COMPLETED", 3, 1),
        "revenue_by_customer": ("COMPLETED", 2, 0),
    }
    assert rows(run, "orders_bronze", "id", "customer", "amount") == [
        (1, "c1", 10.0),
        (3, "c2", -1.0),
    ]
    quarantined = run.store.read("lh.sales.orders_bronze_quarantine").collect()
    assert [(r["id"], r["_expectations"], r["_run_id"]) for r in quarantined] == [
        (2, ["has_customer"], run.run_id)
    ]
    assert dq(run) == {
        ("orders_bronze", "positive_amount"): ("warn", 3, 1, "warned"),
        ("orders_bronze", "has_customer"): ("drop", 3, 1, "dropped"),
        ("all_orders", "valid_id"): ("drop", 4, 1, "dropped"),
        ("revenue_by_customer", "revenue_positive"): ("warn", 2, 1, "warned"),
        ("revenue_by_customer", "has_customer"): ("warn", 2, 0, "passed"),
        ("revenue_by_customer", "revenue_known"): ("fail", 2, 0, "passed"),
    }

    land(tmp_path / "landing", "b.json", SECOND)
    second = run_definition(run, pipeline)
    assert second.error is None
    assert counts(second) == {
        "orders_raw": ("COMPLETED", 0, 0),
        "orders_bronze": ("COMPLETED", 1, 0),
        "all_orders": ("COMPLETED", 1, 0),
        "revenue_by_customer": ("COMPLETED", 2, 0),
    }
    assert rows(run, "all_orders", "id", "amount") == [(1, 10.0), (3, -1.0), (4, 7.0), (100, 5.0)]
    assert rows(run, "revenue_by_customer", "customer", "revenue") == [("c1", 17.0), ("c2", -1.0)]
    assert type(run.spark.readStream).__name__ == "DataStreamReader"  # restored after each flow

    third = run_definition(run, pipeline, full_refresh=True)
    assert counts(third) == {
        "orders_raw": ("COMPLETED", 0, 0),
        "orders_bronze": ("COMPLETED", 3, 1),
        "all_orders": ("COMPLETED", 4, 1),
        "revenue_by_customer": ("COMPLETED", 2, 0),
    }
    assert rows(run, "all_orders", "id", "amount") == [(1, 10.0), (3, -1.0), (4, 7.0), (100, 5.0)]
    assert run.store.read("lh.sales.orders_bronze_quarantine").count() == 1


def test_writes_are_governed_and_traced(run: RunContext, pipeline) -> None:  # type: ignore[no-untyped-def]
    update = run_definition(run, pipeline)
    assert update.succeeded
    lineage = run.store.read(run.project.system_table(SystemTable.LINEAGE))
    edges = {
        (r["output_table"], r["input_name"])
        for r in lineage.filter(lineage.run_id == run.run_id).collect()
        if r["input_kind"] == "table"
    }
    assert edges == {
        ("lh.sales.all_orders", "lh.sales.orders_bronze"),
        ("lh.sales.all_orders_quarantine", "lh.sales.orders_bronze"),
        ("lh.sales.revenue_by_customer", "lh.sales.orders_bronze"),
    }


CSV_PIPELINE = """
import dlt


@dlt.table(temporary=False, path="/ignored/locally", partition_cols=["sensor"], comment="r")
def readings():
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "csv")
        .option("header", "true")
        .load(spark.conf.get("landing") + "/*.csv")
    )
"""


def test_csv_drops_are_read_once_each(run: RunContext, project: Project, tmp_path: Path) -> None:
    write(tmp_path / "csv.py", CSV_PIPELINE)
    landing = tmp_path / "csv_landing"
    write(landing / "1.csv", "sensor,value\ns1,1\ns2,2\n")
    write(landing / "ignored.txt", "not,a,csv\n")
    spec = definition(project, "csv", ["csv.py"], {"landing": str(landing)})
    assert counts(run_definition(run, spec)) == {"readings": ("COMPLETED", 2, 0)}
    assert counts(run_definition(run, spec)) == {"readings": ("COMPLETED", 0, 0)}
    write(landing / "2.csv", "sensor,value\ns3,3\n")
    assert counts(run_definition(run, spec)) == {"readings": ("COMPLETED", 1, 0)}
    assert rows(run, "readings", "sensor", "value") == [("s1", "1"), ("s2", "2"), ("s3", "3")]
    ref = project.table("lh.sales.readings")
    assert (ref.spec.partition_by, ref.spec.description) == (["sensor"], "r")
    assert DeltaTable(ref.location).metadata().partition_columns == ["sensor"]


def test_a_missing_landing_folder_fails_the_update(
    run: RunContext, project: Project, tmp_path: Path
) -> None:
    """A source folder that does not exist (a /Volumes path kept from Databricks) is an
    error naming it, not an empty stream and a plain success."""
    write(tmp_path / "csv.py", CSV_PIPELINE)
    missing = tmp_path / "no_such_landing"
    update = run_definition(run, definition(project, "csv", ["csv.py"], {"landing": str(missing)}))
    assert update.error == (
        f"lh.sales.readings: {missing}/*.csv: no such file or folder to read ({tmp_path}/csv.py:4)"
    )
    assert not update.succeeded


VIEW_PIPELINE = """
from pyspark import pipelines as dp


@dp.temporary_view
def raw():
    return spark.readStream.format("cloudFiles").option("cloudFiles.format", "json").load(
        spark.conf.get("landing")
    )


@dp.table
@dp.expect_or_fail("small", f"v < {spark.conf.get('limit')}")
def checked():
    return spark.readStream.table("raw")
"""


def test_a_failed_reader_gets_the_view_rows_again(
    run: RunContext, project: Project, tmp_path: Path
) -> None:
    write(tmp_path / "view.py", VIEW_PIPELINE)
    land(tmp_path / "drops", "a.json", [{"v": 1}, {"v": 500}])
    conf = {"landing": str(tmp_path / "drops")}
    failed = run_definition(run, definition(project, "v", ["view.py"], {**conf, "limit": "100"}))
    assert failed.error is not None and "'small'" in failed.error
    fixed = run_definition(run, definition(project, "v", ["view.py"], {**conf, "limit": "1000"}))
    assert counts(fixed)["checked"] == ("COMPLETED", 2, 0)
    again = run_definition(run, definition(project, "v", ["view.py"], {**conf, "limit": "1000"}))
    assert counts(again)["checked"] == ("COMPLETED", 0, 0)


def test_stream_from_a_delta_path(run: RunContext, project: Project, tmp_path: Path) -> None:
    source = str(tmp_path / "external_delta")
    run.spark.range(3).write.format("delta").save(source)
    write(
        tmp_path / "path.py",
        """
        from pyspark import pipelines as dp

        @dp.table
        def copied():
            return spark.readStream.format("delta").load(spark.conf.get("src"))
        """,
    )
    spec = definition(project, "dp", ["path.py"], {"src": source})
    assert counts(run_definition(run, spec)) == {"copied": ("COMPLETED", 3, 0)}
    run.spark.range(3, 5).write.format("delta").mode("append").save(source)
    assert counts(run_definition(run, spec)) == {"copied": ("COMPLETED", 2, 0)}
    assert rows(run, "copied", "id") == [(0,), (1,), (2,), (3,), (4,)]
