"""Point-in-time joins (pure, both engines)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config.ml import LabelSpec
from lakehouse.pipelines.ml.training_set import LABEL_TS, label_rows, point_in_time_join

ts = dt.datetime
LABELS = "customer_id string, label_ts timestamp, churned int"
FEATURES = "id string, feature_ts timestamp, days_since_last_order int, plan string"


def _features(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            # C1 ordered regularly until it churned in February; after the label time its
            # inactivity keeps growing. A latest-value join would hand the model 150 days.
            ("C1", ts(2026, 1, 1), 3, "basic"),
            ("C1", ts(2026, 2, 1), 34, "basic"),
            ("C1", ts(2026, 3, 1), 62, "basic"),
            ("C1", ts(2026, 6, 1), 150, "premium"),
            ("C2", ts(2026, 1, 1), 5, "plus"),
            ("C2", ts(2026, 3, 1), 2, "plus"),
            # C3's only values come after its label time
            ("C3", ts(2026, 5, 1), 1, "basic"),
        ],
        FEATURES,
    )


def _labels(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            ("C1", ts(2026, 2, 15, 12), 1),
            ("C2", ts(2026, 3, 1), 0),  # exactly at a snapshot: that snapshot counts
            ("C2", ts(2026, 3, 1), 0),  # a duplicate label row stays a duplicate
            ("C3", ts(2026, 4, 1), 0),
        ],
        LABELS,
    )


def _join(spark: SparkSession, lookback_days: int | None = None) -> list[tuple[object, ...]]:
    joined = point_in_time_join(
        _labels(spark),
        _features(spark),
        label_keys=["customer_id"],
        feature_keys=["id"],
        feature_ts="feature_ts",
        columns=["days_since_last_order", "plan"],
        lookback_days=lookback_days,
    )
    assert joined.columns == [
        "customer_id",
        LABEL_TS,
        "churned",
        "days_since_last_order",
        "plan",
    ]
    return sorted(tuple(r) for r in joined.collect())


@pytest.mark.transform
def test_features_are_taken_as_of_the_label_time_not_the_latest(spark: SparkSession) -> None:
    rows = _join(spark)
    assert rows == [
        ("C1", ts(2026, 2, 15, 12), 1, 34, "basic"),
        ("C2", ts(2026, 3, 1), 0, 2, "plus"),
        ("C2", ts(2026, 3, 1), 0, 2, "plus"),
        ("C3", ts(2026, 4, 1), 0, None, None),
    ]
    # the leak the as-of join prevents: the newest value per key differs for C1
    latest = {
        r["id"]: r["days_since_last_order"]
        for r in _features(spark).orderBy("feature_ts").collect()
    }
    assert latest["C1"] == 150
    assert all(row[3] != 150 for row in rows)


@pytest.mark.transform
def test_lookback_treats_stale_values_as_missing(spark: SparkSession) -> None:
    rows = _join(spark, lookback_days=10)
    assert [r[3] for r in rows] == [None, 2, 2, None]  # C1's value is 14.5 days old


@pytest.mark.transform
def test_a_table_without_timestamp_joins_on_keys(spark: SparkSession) -> None:
    static = spark.createDataFrame([("C1", "north"), ("C9", "east")], "id string, region string")
    joined = point_in_time_join(
        _labels(spark),
        static,
        label_keys=["customer_id"],
        feature_keys=["id"],
        feature_ts=None,
        columns=["region"],
    )
    assert sorted((r["customer_id"], r["region"]) for r in joined.collect()) == [
        ("C1", "north"),
        ("C2", None),
        ("C2", None),
        ("C3", None),
    ]


@pytest.mark.transform
def test_label_rows_filter_rename_and_compute_the_label(spark: SparkSession) -> None:
    table = spark.createDataFrame(
        [
            ("C1", ts(2026, 1, 1), "yes", True),
            ("C2", ts(2026, 1, 2), "no", True),
            ("C3", ts(2026, 1, 3), "yes", False),
        ],
        "customer_id string, updated_at timestamp, status string, is_current boolean",
    )
    spec = LabelSpec(
        table="c.s.t",
        keys=["customer_id"],
        timestamp="updated_at",
        label="CASE WHEN status = 'yes' THEN 1 ELSE 0 END",
        where="is_current",
    )
    rows = label_rows(table, spec)
    assert rows.columns == ["customer_id", LABEL_TS, "label"]
    assert sorted(tuple(r) for r in rows.collect()) == [
        ("C1", ts(2026, 1, 1), 1),
        ("C2", ts(2026, 1, 2), 0),
    ]
