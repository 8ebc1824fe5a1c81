"""``lakehouse catalog infer`` pins inferred columns into the YAML; ``catalog show`` shows
inferred columns and those of tables registered by location alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from lakehouse.cli import app as cli
from lakehouse.config import load_project
from lakehouse.pipelines.bronze.ingest import ingest_file_source
from lakehouse.pipelines.silver.refine import refine_table
from tests.pipelines.bronze.test_infer import CSV_A, context, inferred_project, land

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables:
  data_root: {default: ./data}
  catalog: {default: c}
targets: {local: {default: true}}
"""
CONF = """# the catalog of the test: comments stay
catalog:
  name: ${var.catalog}
  storage_root: ${var.data_root}/tables
  schemas:
    bronze:
      tables:
        events:   # no columns: inferred
          layer: bronze
          description: inferred from the files
          tags: {domain: test}
sources:
  drop:
    kind: files
    path: ${var.data_root}/landing
    glob: "*.csv"
    format: csv
    target: ${var.catalog}.bronze.events
"""


def _invoke(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "-C", str(root)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.mark.delta
def test_catalog_infer_pins_the_columns_and_the_project_still_runs(
    spark: SparkSession, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE)
    (root / "conf" / "c.yml").write_text(CONF)
    (root / "data" / "landing").mkdir(parents=True)
    (root / "data" / "landing" / "a.csv").write_text(CSV_A)

    dry = _invoke(root, "catalog", "infer", "drop", "--dry-run")
    assert "- {name: id, type: bigint}" in dry
    assert (root / "conf" / "c.yml").read_text() == CONF
    assert not (root / "data" / "_schemas").exists()  # a dry run stores nothing

    out = _invoke(root, "catalog", "infer", "drop")
    assert "pinned 6 columns of c.bronze.events in conf/c.yml" in out
    assert (root / "conf" / "c.yml").read_text() == CONF.replace(
        "          tags: {domain: test}\n",
        "          tags: {domain: test}\n"
        "          columns:\n"
        "            - {name: id, type: bigint}\n"
        "            - {name: name, type: string}\n"
        "            - {name: amount, type: double}\n"
        "            - {name: day, type: date}\n"
        "            - {name: seen_at, type: timestamp}\n"
        "            - {name: active, type: boolean}\n",
    )
    project = load_project(root)
    assert [c.name for c in project.table("c.bronze.events").spec.columns][:6] == [
        "id",
        "name",
        "amount",
        "day",
        "seen_at",
        "active",
    ]
    ctx = context(spark, project)
    assert ingest_file_source(ctx, "drop").rows == 2
    rows = ctx.tables.read("c.bronze.events").orderBy("id").select("id", "amount").collect()
    assert [tuple(r) for r in rows] == [(1, 2.5), (2, 3.0)]

    again = CliRunner().invoke(cli, ["catalog", "infer", "drop", "-C", str(root)])
    assert again.exit_code != 0
    assert str(again.exception) == "c.bronze.events already declares its columns"


@pytest.mark.delta
def test_catalog_show_marks_inferred_columns_with_their_schema_version(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = inferred_project(tmp_path)
    root = project.root
    before = _invoke(root, "catalog", "show", "bronze.events")
    assert "inferred from the files of source drop at its first ingest" in before
    land(project, "a.csv", CSV_A)
    ingest_file_source(context(spark, project, "r1"), "drop")
    land(project, "b.csv", "id,name,amount,day,seen_at,active,note\n3,Cy,1,,,true,hi\n")
    ingest_file_source(context(spark, project, "r2"), "drop")
    shown = _invoke(root, "catalog", "show", "bronze.events")
    lines = [" ".join(line.replace("│", " ").split()) for line in shown.splitlines()]
    assert "id bigint yes inferred (schema v0)" in lines
    assert "note string yes inferred (schema v1)" in lines
    assert "_rescued_data string yes" in lines
    assert any("schema version 1" in line for line in lines)
    tree = _invoke(root, "catalog", "show")
    assert "columns inferred" in tree


LOCATED = """
catalog:
  name: c
  storage_root: ${var.data_root}/tables
  schemas:
    bronze:
      tables:
        legacy:
          layer: bronze
          location: ${var.data_root}/existing/legacy
    silver:
      tables:
        people:
          layer: silver
          columns:
            - {name: id, type: int, nullable: false}
            - {name: name, type: string}
          keys: [id]
silver:
  c.silver.people:
    source: c.bronze.legacy
    keys: [id]
"""


@pytest.mark.delta
def test_table_registered_by_location_takes_its_schema_from_the_delta_log(
    spark: SparkSession, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE.replace("  catalog: {default: c}\n", ""))
    (root / "conf" / "c.yml").write_text(LOCATED)
    existing = root / "data" / "existing" / "legacy"
    spark.createDataFrame([("1", " Ann "), ("2", "Bo")], "id string, name string").write.format(
        "delta"
    ).save(str(existing))
    project = load_project(root)
    assert project.table("c.bronze.legacy").spec.columns == []
    ctx = context(spark, project)
    assert [(f.name, f.dataType.simpleString()) for f in ctx.tables.schema("c.bronze.legacy")] == [
        ("id", "string"),
        ("name", "string"),
    ]
    refine_table(ctx, "c.silver.people")
    rows = ctx.tables.read("c.silver.people").orderBy("id").collect()
    assert [(r["id"], r["name"]) for r in rows] == [(1, "Ann"), (2, "Bo")]
    shown = _invoke(root, "catalog", "show", "bronze.legacy")
    lines = [" ".join(line.replace("│", " ").split()) for line in shown.splitlines()]
    assert "id string yes from the Delta log" in lines
    assert "name string yes from the Delta log" in lines
