"""SCD2 history (pure, both engines): versions, late rows, deletes, replays."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import DataFrame, SparkSession

from lakehouse.transforms.scd import scd2_history, scd2_merge_source

# also in the distributed invocation (make test-cluster: Sail local-cluster, 2 workers)
pytestmark = pytest.mark.distributed

D = dt.datetime
DATA = ["id", "plan", "seen"]
CHANGES = "id string, plan string, seen timestamp, _lh_delete boolean"
STORED = "id string, plan string, seen timestamp, valid_from timestamp, valid_to timestamp, is_current boolean"


def _history(spark: SparkSession, existing: list[tuple], changes: list[tuple]) -> list[tuple]:  # type: ignore[type-arg]
    out = scd2_history(
        spark.createDataFrame(existing, STORED),
        spark.createDataFrame(changes, CHANGES),
        keys=["id"],
        sequence_by="seen",
        tracked=["plan"],
        data_columns=DATA,
    )
    return sorted(
        (r["id"], r["plan"], r["valid_from"], r["valid_to"], r["is_current"]) for r in out.collect()
    )


@pytest.mark.transform
def test_two_changes_make_three_contiguous_versions(spark: SparkSession) -> None:
    rows = _history(
        spark,
        [],
        [
            ("A", "basic", D(2026, 1, 1), False),
            ("A", "basic", D(2026, 1, 5), False),  # no change in a tracked column
            ("A", "plus", D(2026, 2, 1), False),
            ("A", "premium", D(2026, 3, 1), False),
        ],
    )
    assert rows == [
        ("A", "basic", D(2026, 1, 1), D(2026, 2, 1), False),
        ("A", "plus", D(2026, 2, 1), D(2026, 3, 1), False),
        ("A", "premium", D(2026, 3, 1), None, True),
    ]


@pytest.mark.transform
def test_late_row_is_placed_by_sequence_and_replay_is_stable(spark: SparkSession) -> None:
    stored = [
        ("A", "basic", D(2026, 1, 1), D(2026, 1, 1), D(2026, 3, 1), False),
        ("A", "premium", D(2026, 3, 1), D(2026, 3, 1), None, True),
    ]
    late = [("A", "plus", D(2026, 2, 1), False)]
    assert _history(spark, stored, late) == [
        ("A", "basic", D(2026, 1, 1), D(2026, 2, 1), False),
        ("A", "plus", D(2026, 2, 1), D(2026, 3, 1), False),
        ("A", "premium", D(2026, 3, 1), None, True),
    ]
    replay = [("A", "basic", D(2026, 1, 1), False), ("A", "premium", D(2026, 3, 1), False)]
    assert _history(spark, stored, replay) == [
        ("A", "basic", D(2026, 1, 1), D(2026, 3, 1), False),
        ("A", "premium", D(2026, 3, 1), None, True),
    ]


@pytest.mark.transform
def test_delete_closes_the_open_version_and_a_reinsert_opens_one(spark: SparkSession) -> None:
    rows = _history(
        spark,
        [],
        [
            ("A", "basic", D(2026, 1, 1), False),
            ("A", None, D(2026, 2, 1), True),
            ("A", "basic", D(2026, 4, 1), False),
            ("B", None, D(2026, 1, 1), True),  # a delete of something never seen: nothing
        ],
    )
    assert rows == [
        ("A", "basic", D(2026, 1, 1), D(2026, 2, 1), False),
        ("A", "basic", D(2026, 4, 1), None, True),
    ]


@pytest.mark.transform
def test_late_row_before_a_stored_delete_does_not_reopen_the_key(spark: SparkSession) -> None:
    # The delete's row was refined by an earlier run: only the closed version shows it.
    stored = [("A", "basic", D(2026, 1, 1), D(2026, 1, 1), D(2026, 3, 1), False)]
    late = [("A", "plus", D(2026, 2, 1), False)]
    assert _history(spark, stored, late) == [
        ("A", "basic", D(2026, 1, 1), D(2026, 2, 1), False),
        ("A", "plus", D(2026, 2, 1), D(2026, 3, 1), False),
    ]
    after = [("A", "premium", D(2026, 4, 1), False)]  # a row after the delete reopens it
    assert _history(spark, stored, after) == [
        ("A", "basic", D(2026, 1, 1), D(2026, 3, 1), False),
        ("A", "premium", D(2026, 4, 1), None, True),
    ]


@pytest.mark.transform
def test_merge_source_marks_stored_versions_that_disappeared(spark: SparkSession) -> None:
    stored: DataFrame = spark.createDataFrame(
        [
            ("A", "basic", D(2026, 1, 1), D(2026, 1, 1), D(2026, 2, 1), False),
            ("A", "basic", D(2026, 2, 1), D(2026, 2, 1), None, True),  # became a duplicate
        ],
        STORED,
    )
    history = scd2_history(
        stored,
        spark.createDataFrame([], CHANGES),
        keys=["id"],
        sequence_by="seen",
        tracked=["plan"],
        data_columns=DATA,
    )
    source = scd2_merge_source(stored, history, ["id"])
    assert sorted((r["valid_from"], r["_lh_delete"]) for r in source.collect()) == [
        (D(2026, 1, 1), False),
        (D(2026, 2, 1), True),
    ]
