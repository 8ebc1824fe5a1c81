"""Bronze tables without declared columns: schemas inferred from the files (Auto Loader style),
stored as versions under the schema location, evolved by later files."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_file_source
from lakehouse.pipelines.bronze.schemas import read_versions, schema_location
from tests.support import session_engine

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
CONF = """
catalog:
  name: c
  storage_root: ${{var.data_root}}/tables
  schemas:
    bronze:
      tables:
        events:
          layer: bronze
          description: inferred from the files
sources:
  drop:
    kind: files
    path: ${{var.data_root}}/landing
    glob: "{glob}"
    format: {format}
    target: c.bronze.events
{extra}
"""
CSV_A = (
    "id,name,amount,day,seen_at,active\n"
    "1,Ann,2.5,2024-01-02,2024-01-02T10:00:00,true\n"
    "2,Bo,3,2024-01-03,2024-01-03 11:30:00,false\n"
)
DATA_COLUMNS = ["id", "name", "amount", "day", "seen_at", "active"]


def inferred_project(
    tmp_path: Path, fmt: str = "csv", glob: str = "*.csv", extra: str = ""
) -> Project:
    root = tmp_path / "proj"
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE)
    (root / "conf" / "c.yml").write_text(CONF.format(format=fmt, glob=glob, extra=extra))
    (root / "data" / "landing").mkdir(parents=True)
    return load_project(root)


def context(spark: SparkSession, project: Project, run_id: str = "r1") -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="test", run_id=run_id, target="local", engine=session_engine(spark))
    return TaskContext(spark=spark, project=project, tables=tables, report=report, task_key="t")


def land(project: Project, name: str, text: str) -> None:
    (project.data_root / "landing" / name).write_text(text)


def data_schema(ctx: TaskContext) -> list[tuple[str, str]]:
    return [
        (f.name, f.dataType.simpleString())
        for f in ctx.tables.schema("c.bronze.events").fields
        if not f.name.startswith("_")
    ]


@pytest.mark.delta
def test_csv_without_columns_is_ingested_with_inferred_types(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = inferred_project(tmp_path)
    land(project, "a.csv", CSV_A)
    ctx = context(spark, project)
    summary = ingest_file_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows, summary.rescued_rows) == (2, 0, 0)
    assert data_schema(ctx) == [
        ("id", "bigint"),
        ("name", "string"),
        ("amount", "double"),
        ("day", "date"),
        ("seen_at", "timestamp"),
        ("active", "boolean"),
    ]
    rows = ctx.tables.read("c.bronze.events").orderBy("id").select(*DATA_COLUMNS).collect()
    assert [tuple(r) for r in rows] == [
        (1, "Ann", 2.5, date(2024, 1, 2), datetime(2024, 1, 2, 10, 0), True),
        (2, "Bo", 3.0, date(2024, 1, 3), datetime(2024, 1, 3, 11, 30), False),
    ]
    versions = read_versions(schema_location(project, "drop"))
    assert [(v.version, v.columns[0], [Path(f).name for f in v.files]) for v in versions] == [
        (0, ("id", "bigint"), ["a.csv"])
    ]
    stored = json.loads((project.data_root / "_schemas" / "drop" / "0.json").read_text())
    assert sorted(stored) == [
        "added",
        "columns",
        "files",
        "infer_column_types",
        "version",
        "written_at",
    ]


@pytest.mark.delta
def test_all_string_mode(spark: SparkSession, tmp_path: Path) -> None:
    project = inferred_project(tmp_path, extra="    infer_column_types: false")
    land(project, "a.csv", CSV_A)
    ctx = context(spark, project)
    assert ingest_file_source(ctx, "drop").rows == 2
    assert data_schema(ctx) == [(name, "string") for name in DATA_COLUMNS]
    rows = ctx.tables.read("c.bronze.events").orderBy("id").select(*DATA_COLUMNS).collect()
    assert [tuple(r) for r in rows] == [
        ("1", "Ann", "2.5", "2024-01-02", "2024-01-02T10:00:00", "true"),
        ("2", "Bo", "3", "2024-01-03", "2024-01-03 11:30:00", "false"),
    ]
    assert [v.column_types for v in read_versions(schema_location(project, "drop"))] == [False]


@pytest.mark.delta
def test_json_lines_source_infers_mixed_fields_and_skips_bad_lines(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = inferred_project(tmp_path, fmt="jsonl", glob="*.jsonl")
    land(
        project,
        "a.jsonl",
        '{"id": 1, "qty": 2, "price": 1, "code": 7, "tags": ["x"], "on": "2024-05-01"}\n'
        "{not json\n"
        '{"id": 2, "qty": null, "price": 1.5, "code": "A7", "tags": [], "on": "2024-05-02"}\n',
    )
    ctx = context(spark, project)
    summary = ingest_file_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows, summary.rescued_rows) == (3, 1, 0)
    assert data_schema(ctx) == [
        ("id", "bigint"),
        ("qty", "bigint"),
        ("price", "double"),
        ("code", "string"),
        ("tags", "string"),
        ("on", "date"),
    ]
    rows = (
        ctx.tables.read("c.bronze.events")
        .orderBy("id")
        .select("id", "qty", "price", "code", "tags", "on", "_raw")
        .collect()
    )
    assert [tuple(r) for r in rows] == [
        (None, None, None, None, None, None, "{not json"),
        (1, 2, 1.0, "7", '["x"]', date(2024, 5, 1), None),
        (2, None, 1.5, "A7", "[]", date(2024, 5, 2), None),
    ]


@pytest.mark.delta
def test_new_column_evolves_the_table_and_writes_schema_version_1(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = inferred_project(tmp_path)
    land(project, "a.csv", CSV_A)
    ingest_file_source(context(spark, project, "r1"), "drop")
    land(
        project,
        "b.csv",
        "id,name,amount,day,seen_at,active,score,note\n"
        "3,Cy,4.25,2024-01-04,2024-01-04T09:00:00,true,7,hi\n",
    )
    ctx = context(spark, project, "r2")
    summary = ingest_file_source(ctx, "drop")
    assert (summary.rows, summary.new_columns) == (1, ["note", "score"])
    assert data_schema(ctx)[6:] == [("note", "string"), ("score", "bigint")]
    rows = ctx.tables.read("c.bronze.events").orderBy("id").select("id", "score", "note").collect()
    assert [tuple(r) for r in rows] == [(1, None, None), (2, None, None), (3, 7, "hi")]
    versions = read_versions(schema_location(project, "drop"))
    assert [(v.version, v.added, [Path(f).name for f in v.files]) for v in versions] == [
        (0, DATA_COLUMNS, ["a.csv"]),
        (1, ["note", "score"], ["b.csv"]),
    ]
    assert versions[1].columns == [*versions[0].columns, ("note", "string"), ("score", "bigint")]


@pytest.mark.delta
def test_value_not_fitting_the_inferred_type_is_rescued(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = inferred_project(tmp_path)
    land(project, "a.csv", CSV_A)
    ingest_file_source(context(spark, project, "r1"), "drop")
    land(
        project,
        "b.csv",
        "id,name,amount,day,seen_at,active\n"
        "4,Di,lots,2024-13-01,2024-01-05T08:00:00,maybe\n"
        "5,Ed,,, ,\n",  # empty CSV values are NULL, not rescued
    )
    ctx = context(spark, project, "r2")
    summary = ingest_file_source(ctx, "drop")
    assert (summary.rows, summary.rescued_rows, summary.new_columns) == (2, 1, [])
    blank = ctx.tables.read("c.bronze.events").where("id = 5").collect()[0]
    assert [blank[c] for c in DATA_COLUMNS] == [5, "Ed", None, None, None, None]
    assert blank["_rescued_data"] is None
    row = ctx.tables.read("c.bronze.events").where("id = 4").collect()[0]
    assert (row["amount"], row["day"], row["active"]) == (None, None, None)
    assert json.loads(row["_rescued_data"]) == {
        "amount": "lots",
        "day": "2024-13-01",
        "active": "maybe",
    }
    assert [v.version for v in read_versions(schema_location(project, "drop"))] == [0]


@pytest.mark.delta
def test_explicit_drift_policy_wins_over_the_inferred_default(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = inferred_project(tmp_path, extra="    schema_drift: rescue")
    land(project, "a.csv", CSV_A)
    ingest_file_source(context(spark, project, "r1"), "drop")
    land(project, "b.csv", "id,name,amount,day,seen_at,active,score\n5,Ed,1,,,true,9\n")
    ctx = context(spark, project, "r2")
    assert ingest_file_source(ctx, "drop").new_columns == []
    row = ctx.tables.read("c.bronze.events").where("id = 5").collect()[0]
    assert json.loads(row["_rescued_data"])["score"] == "9"
    assert [v.version for v in read_versions(schema_location(project, "drop"))] == [0]


@pytest.mark.delta
def test_nothing_landed_creates_no_table_and_a_reset_table_comes_back_from_the_schema(
    spark: SparkSession, tmp_path: Path
) -> None:
    import shutil

    project = inferred_project(tmp_path)
    ctx = context(spark, project)
    assert ingest_file_source(ctx, "drop").units == 0
    assert not ctx.tables.exists("c.bronze.events")
    land(project, "a.csv", CSV_A)
    ingest_file_source(context(spark, project, "r1"), "drop")
    shutil.rmtree(project.table("c.bronze.events").location)  # a reset: data and registration
    spark.sql("DROP TABLE IF EXISTS bronze.events")
    land(project, "b.csv", "id,name\n9,Zed\n")
    ctx = context(spark, project, "r2")
    ingest_file_source(ctx, "drop")
    assert [c for c, _ in data_schema(ctx)] == DATA_COLUMNS  # from schema version 0


@pytest.mark.delta
def test_json_document_parquet_and_excel_sources_are_inferred(
    spark: SparkSession, tmp_path: Path
) -> None:
    import pandas as pd

    project = inferred_project(tmp_path / "js", fmt="json", glob="*.json")
    land(project, "a.json", '[{"id": 1, "ok": true, "at": "2024-02-03T04:05:06Z"}, 7]')
    ctx = context(spark, project)
    assert ingest_file_source(ctx, "drop").rows == 2
    assert data_schema(ctx) == [("id", "bigint"), ("ok", "boolean"), ("at", "timestamp")]

    project = inferred_project(tmp_path / "pq", fmt="parquet", glob="*.parquet")
    pd.DataFrame(
        {
            "id": [1, 2],
            "price": [1.5, 2.0],
            "day": pd.to_datetime(["2024-01-01", "2024-01-02"]).astype("datetime64[us]"),
        }
    ).to_parquet(project.data_root / "landing" / "a.parquet")
    ctx = context(spark, project)
    assert ingest_file_source(ctx, "drop").rows == 2
    assert data_schema(ctx) == [("id", "bigint"), ("price", "double"), ("day", "timestamp")]
    rows = ctx.tables.read("c.bronze.events").orderBy("id").collect()
    assert [(r["id"], r["price"], r["day"], r["_rescued_data"]) for r in rows] == [
        (1, 1.5, datetime(2024, 1, 1), None),
        (2, 2.0, datetime(2024, 1, 2), None),
    ]

    project = inferred_project(tmp_path / "xl", fmt="excel", glob="*.xlsx")
    pd.DataFrame({"id": ["1", "2"], "qty": ["7", None], "who": ["a", "b"]}).to_excel(
        project.data_root / "landing" / "a.xlsx", index=False
    )
    ctx = context(spark, project)
    assert ingest_file_source(ctx, "drop").rows == 2
    assert data_schema(ctx) == [("id", "bigint"), ("qty", "bigint"), ("who", "string")]


def test_sample_limits_and_type_merging(tmp_path: Path) -> None:
    from lakehouse.pipelines.bronze.files import list_landed_files
    from lakehouse.pipelines.bronze.infer import column_type, infer_schema, merged_type

    columns = [
        ["1", " 2 ", None, ""],
        ["1", "2.5"],
        ["1e400"],
        ["true", "FALSE"],
        ["2024-02-28"],
        ["2024-02-30"],
        ["2024-01-01", "2024-01-01T10:00:00Z"],
        ["2024-01-01T25:00:00"],
        ["x", "1"],
        [None, ""],
        ["99999999999999999999"],
    ]
    assert [column_type(values) for values in columns] == [
        "bigint",
        "double",
        "string",
        "boolean",
        "date",
        "string",
        "timestamp",
        "string",
        "string",
        None,
        "double",
    ]
    assert merged_type("bigint", "double") == "double"
    assert merged_type("date", "timestamp") == "timestamp"
    assert merged_type("bigint", "string") == "string"
    assert merged_type("boolean", "bigint") == "string"
    project = inferred_project(tmp_path, extra="    infer_max_files: 2\n    infer_max_bytes: 1000")
    land(project, "a.csv", "id,v\n1,2\n")
    land(project, "b.csv", "id,v\n2,2.5\n")
    land(project, "c.csv", "id,v\n3,x\n")  # beyond infer_max_files
    source = project.sources["drop"]
    files = list_landed_files(str(project.data_root / "landing"), "*.csv")
    inference = infer_schema(source, files)  # type: ignore[arg-type]
    assert inference.columns() == [("id", "bigint"), ("v", "double")]
    assert [Path(f).name for f in inference.files] == ["a.csv", "b.csv"]
    big = "id,v\n" + "".join(f"{i},{i}\n" for i in range(300)) + "x,y\n"
    land(project, "a.csv", big)  # the 1000-byte sample stops before the last line
    files = list_landed_files(str(project.data_root / "landing"), "*.csv")
    assert infer_schema(source, files).columns() == [("id", "bigint"), ("v", "bigint")]  # type: ignore[arg-type]


SILVER_SCHEMA = """    silver:
      tables:
        people:
          layer: silver
          columns:
            - {name: id, type: int, nullable: false}
            - {name: name, type: string}
            - {name: amount, type: "decimal(10,2)"}
            - {name: day, type: date}
          keys: [id]
"""
SILVER_SECTION = """silver:
  c.silver.people:
    source: c.bronze.events
    keys: [id]
"""


@pytest.mark.delta
def test_silver_refines_an_inferred_bronze_table(spark: SparkSession, tmp_path: Path) -> None:
    from decimal import Decimal

    from lakehouse.pipelines.silver.refine import refine_table

    project = inferred_project(tmp_path)
    conf = project.root / "conf" / "c.yml"
    text = conf.read_text().replace("sources:\n", SILVER_SCHEMA + "sources:\n")
    conf.write_text(text + SILVER_SECTION)
    project = load_project(project.root)
    land(project, "a.csv", CSV_A)
    ctx = context(spark, project)
    ingest_file_source(ctx, "drop")
    refine_table(ctx, "c.silver.people")
    rows = ctx.tables.read("c.silver.people").orderBy("id").collect()
    assert [(r["id"], r["name"], r["amount"], r["day"]) for r in rows] == [
        (1, "Ann", Decimal("2.50"), date(2024, 1, 2)),
        (2, "Bo", Decimal("3.00"), date(2024, 1, 3)),
    ]
