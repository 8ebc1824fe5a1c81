"""Silver conform and dedupe (pure, both engines)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from lakehouse.config import TableRef, load_project
from lakehouse.transforms.conform import conform_rows, latest_per_key

pytestmark = pytest.mark.delta

BRONZE = "order_id string, qty string, ts string, _corrupt string, _source_file string, _ingested_at timestamp"


@pytest.fixture()
def target_and_spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(
        "bundle: {name: t}\ninclude: [conf/*.yml]\ntargets: {local: {default: true}}\n"
    )
    (tmp_path / "conf" / "c.yml").write_text(
        textwrap.dedent(
            """
            catalog:
              name: c
              storage_root: ./data/tables
              schemas:
                b:
                  tables:
                    orders:
                      layer: bronze
                      columns: [{name: order_id, type: string}, {name: qty, type: string}, {name: ts, type: string}]
                s:
                  tables:
                    orders:
                      layer: silver
                      keys: [order_id]
                      columns:
                        - {name: order_id, type: string, nullable: false}
                        - {name: quantity, type: int}
                        - {name: ts, type: timestamp, nullable: false}
            silver:
              c.s.orders: {source: c.b.orders, keys: [order_id], sequence_by: ts, rename: {quantity: qty}}
            """
        )
    )
    project = load_project(tmp_path)
    target: TableRef = project.table("c.s.orders")
    return target, project.silver["c.s.orders"]


@pytest.mark.transform
def test_conform_rows_splits_valid_and_rejected_with_reasons(
    spark: SparkSession, target_and_spec
) -> None:  # type: ignore[no-untyped-def]
    target, spec = target_and_spec
    at = dt.datetime(2026, 1, 1)
    bronze = spark.createDataFrame(
        [
            ("A", " 2 ", "2026-01-01T10:00:00", None, "f1", at),
            ("B", "two", "2026-01-01T10:00:00", None, "f1", at),
            ("", "1", None, None, "f1", at),
            (None, None, None, "malformed JSON: not a JSON object", "f2", at),
        ],
        BRONZE,
    )
    split = conform_rows(bronze, target, spec)
    valid = split.valid.drop("_source_file", "_ingested_at", "_lh_delete")
    expected = spark.createDataFrame(
        [("A", 2, dt.datetime(2026, 1, 1, 10))], "order_id string, quantity int, ts timestamp"
    )
    assert_df_equality(valid, expected, ignore_nullable=True)
    reasons = {tuple(r["_reasons"]) for r in split.rejected.collect()}
    assert reasons == {
        ("not_a_int: quantity",),
        ("missing_key: order_id", "missing_sequence: ts"),
        (
            "corrupt_record: malformed JSON: not a JSON object",
            "missing_key: order_id",
            "missing_sequence: ts",
        ),
    }
    hashes = [r["_row_hash"] for r in split.rejected.collect()]
    assert len(set(hashes)) == 3


@pytest.mark.transform
def test_latest_per_key_keeps_highest_sequence(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("A", 1, "old"), ("A", 3, "newest"), ("A", 2, "mid"), ("B", 1, "only")],
        "k string, seq int, v string",
    )
    out = latest_per_key(df, ["k"], "seq")
    expected = spark.createDataFrame(
        [("A", 3, "newest"), ("B", 1, "only")], "k string, seq int, v string"
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
