"""Bronze parsing (pure, both engines) and incremental file ingest (Delta, Sail)."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from lakehouse.bronze.ingest import parse_csv_lines, parse_json_lines, with_ingest_metadata

COLS = ["id", "name", "amount"]
OUT = "id string, name string, amount string, _corrupt string, _raw string"


def _lines(spark: SparkSession, *lines: str):  # type: ignore[no-untyped-def]
    return spark.createDataFrame([(line,) for line in lines], "value string")


@pytest.mark.transform
def test_parse_csv_lines_keeps_bad_rows_with_reason(spark: SparkSession) -> None:
    lines = _lines(
        spark,
        "id,name,amount",
        '1,"Smith, Al",3.50',
        "",
        "2,bo",
        '3,"open quote,1',
        "4,cy,x",
    )
    parsed = parse_csv_lines(lines, header=COLS, columns=COLS)
    expected = spark.createDataFrame(
        [
            ("1", "Smith, Al", "3.50", None, None),
            (None, None, None, "malformed CSV: expected 3 fields, got 2", "2,bo"),
            (None, None, None, "malformed CSV: broken quoting", '3,"open quote,1'),
            ("4", "cy", "x", None, None),
        ],
        OUT,
    )
    assert_df_equality(parsed, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.transform
def test_parse_csv_lines_maps_header_order_to_columns(spark: SparkSession) -> None:
    lines = _lines(spark, "amount;id", "9.5;7")
    parsed = parse_csv_lines(lines, header=["amount", "id"], columns=COLS, delimiter=";")
    expected = spark.createDataFrame([("7", None, "9.5", None, None)], OUT)
    assert_df_equality(parsed, expected, ignore_nullable=True)


@pytest.mark.transform
def test_parse_json_lines_flags_malformed_lines(spark: SparkSession) -> None:
    lines = _lines(
        spark,
        '{"id": 1, "name": "al", "amount": 3.5}',
        '{"id": 2, "name":',
        "   ",
        "[1, 2]",
        '{"id": "3", "extra": true}',
    )
    parsed = parse_json_lines(lines, COLS)
    expected = spark.createDataFrame(
        [
            ("1", "al", "3.5", None, None),
            (None, None, None, "malformed JSON: not a JSON object", '{"id": 2, "name":'),
            (None, None, None, "malformed JSON: not a JSON object", "[1, 2]"),
            ("3", None, None, None, None),
        ],
        OUT,
    )
    assert_df_equality(parsed, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.transform
def test_with_ingest_metadata_adds_bronze_columns(spark: SparkSession) -> None:
    df = spark.createDataFrame([("1",)], "id string")
    at = dt.datetime(2026, 1, 2, 3, 4, 5)
    out = with_ingest_metadata(
        df, source="s", source_file="/x/f.csv", batch_id="f.csv", run_id="r1", ingested_at=at
    )
    assert out.collect()[0].asDict() == {
        "id": "1",
        "_source": "s",
        "_source_file": "/x/f.csv",
        "_batch_id": "f.csv",
        "_ingested_at": at,
        "_run_id": "r1",
        "_rescued_data": None,
    }
