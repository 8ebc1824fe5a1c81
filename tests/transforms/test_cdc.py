"""AUTO CDC transforms (pure, both engines): column plans, SCD1 against its state, SCD2
from its event log."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pyspark.sql import DataFrame, SparkSession

from lakehouse.pipelines.declarative.model import AutoCdc
from lakehouse.transforms.cdc import (
    AutoCdcError,
    CdcPlan,
    cdc_events,
    plan_columns,
    scd1_changes,
    scd2_changes,
)
from lakehouse.transforms.scd import AUTO_CDC_SCD2, scd2_history

# also in the distributed invocation (make test-cluster: Sail local-cluster, 2 workers)
pytestmark = pytest.mark.distributed

SOURCE = ["id", "plan", "region", "op", "seq"]
SPEC = AutoCdc(
    target="c.s.t",
    source="feed",
    keys=("id",),
    sequence_by="seq",
    apply_as_deletes="op = 'D'",
    apply_as_truncates="op = 'T'",
    except_column_list=("op",),
)
FEED = "id string, plan string, region string, op string, seq int"
PLAN = CdcPlan(["id"], ["id", "plan", "region"], ["plan", "region"])
SCD1_STATE = "id string, __sequence int, __deleted boolean, __truncate boolean"
TARGET = "id string, plan string, region string"
LOG = "id string, plan string, region string, __sequence int, __deleted boolean"
HISTORY = f"{TARGET}, __START_AT int, __END_AT int"

Rows = list[tuple[object, ...]]


def _sorted(df: DataFrame) -> Rows:
    return sorted((tuple(r) for r in df.collect()), key=lambda r: [(v is None, v) for v in r])


def _events(spark: SparkSession, rows: Rows, plan: CdcPlan = PLAN) -> DataFrame:
    return cdc_events(spark.createDataFrame(rows, FEED), SPEC, plan)


def test_plan_columns_keeps_keys_and_resolves_tracking() -> None:
    assert plan_columns(SOURCE, SPEC) == CdcPlan(
        ["id"], ["id", "plan", "region", "seq"], ["plan", "region", "seq"]
    )
    only = AutoCdc("t", "feed", ("id",), "seq", column_list=("region",))
    assert plan_columns(SOURCE, only).columns == ["id", "region"]
    scd2 = AutoCdc(
        "t",
        "feed",
        ("id",),
        "seq",
        stored_as_scd_type=2,
        except_column_list=("op", "seq"),
        track_history_except_column_list=("region",),
    )
    assert plan_columns(SOURCE, scd2) == CdcPlan(["id"], ["id", "plan", "region"], ["plan"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keys": ("key",)}, "AUTO CDC flow t: keys names key, not a column of feed"),
        (
            {"column_list": ("plan",), "except_column_list": ("op",)},
            "AUTO CDC flow t: give column_list or except_column_list, not both",
        ),
        (
            {"track_history_column_list": ("plan",)},
            "AUTO CDC flow t: track_history_* options need stored_as_scd_type 2",
        ),
        (
            {"stored_as_scd_type": 2, "track_history_column_list": ("plans",)},
            "AUTO CDC flow t: track_history_column_list names plans, not a column of feed",
        ),
    ],
)
def test_plan_columns_refuses_options_that_do_not_fit(
    options: dict[str, object], message: str
) -> None:
    base = AutoCdc(target="t", source="feed", keys=("id",), sequence_by="seq")
    spec = replace(base, **options)  # type: ignore[arg-type]
    with pytest.raises(AutoCdcError) as raised:
        plan_columns(SOURCE, spec)
    assert str(raised.value).startswith(message)


@pytest.mark.transform
def test_scd1_ignores_events_not_newer_than_the_state(spark: SparkSession) -> None:
    state = spark.createDataFrame(
        [("a", 5, False, False), ("b", 5, True, False), (None, 2, True, True)], SCD1_STATE
    )
    target = spark.createDataFrame([("a", "basic", "eu")], TARGET)
    events = _events(
        spark,
        [
            ("a", "plus", "eu", "U", 4),  # older than a's last event
            ("b", "plus", "eu", "I", 4),  # older than b's delete
            ("c", "plus", "us", "I", 1),  # older than the truncate watermark
            ("d", "basic", "us", "I", 3),
            ("d", "plus", "us", "U", 3),  # a tie between upserts: one of them
            ("d", None, None, "D", 3),  # a delete wins the tie
            ("a", "basic", "eu", "U", 6),  # newer, but the row does not change
        ],
    )
    out = scd1_changes(events, state, target, PLAN)
    assert _sorted(out.rows) == []  # the delete of d matches no row
    assert _sorted(out.state) == [("a", 6, False, False), ("d", 3, True, False)]


@pytest.mark.transform
def test_scd1_truncate_deletes_rows_changed_before_it(spark: SparkSession) -> None:
    state = spark.createDataFrame([("a", 1, False, False), ("b", 4, False, False)], SCD1_STATE)
    target = spark.createDataFrame([("a", "basic", "eu"), ("b", "plus", "us")], TARGET)
    events = _events(spark, [(None, None, None, "T", 3), ("c", "basic", "eu", "I", 2)])
    out = scd1_changes(events, state, target, PLAN)
    assert _sorted(out.rows.select("id", "_lh_delete")) == [("a", True)]
    assert _sorted(out.state) == [("a", 3, True, False), (None, 3, True, True)]


@pytest.mark.transform
def test_scd2_recomputes_history_from_the_log(spark: SparkSession) -> None:
    log = spark.createDataFrame(
        [("a", "basic", "eu", 1, False), ("a", "plus", "eu", 5, False), ("a", None, None, 9, True)],
        LOG,
    )
    target = spark.createDataFrame(
        [("a", "basic", "eu", 1, 5), ("a", "plus", "eu", 5, 9), ("z", "basic", "eu", 1, None)],
        HISTORY,
    )
    events = _events(
        spark,
        [("a", "premium", "eu", "U", 3), ("a", "plus", "eu", "U", 5)],  # late; a replay
    )
    out = scd2_changes(events, log, target, PLAN)
    assert _sorted(out.rows) == [
        ("a", "basic", "eu", 1, 3, False),
        ("a", "premium", "eu", 3, 5, False),
    ]
    assert _sorted(out.state) == [("a", "premium", "eu", 3, False)]


@pytest.mark.transform
def test_history_with_latest_untracked_values_and_null_updates(spark: SparkSession) -> None:
    changes = spark.createDataFrame(
        [
            ("a", "basic", "eu", 1, False),
            ("a", None, "us", 2, False),  # plan stays basic; region is untracked
            ("a", "plus", None, 4, False),  # region stays us
            ("a", None, None, 6, True),
            ("a", None, "eu", 7, False),  # after the delete nothing carries over
        ],
        "id string, plan string, region string, seq int, _lh_delete boolean",
    )
    history = scd2_history(
        None,
        changes,
        keys=["id"],
        sequence_by="seq",
        tracked=["plan"],
        data_columns=["id", "plan", "region"],
        columns=AUTO_CDC_SCD2,
        untracked="latest",
        ignore_null_updates=True,
    )
    assert history.columns == ["id", "plan", "region", "__START_AT", "__END_AT"]
    assert _sorted(history) == [
        ("a", "basic", "us", 1, 4),
        ("a", "plus", "us", 4, 6),
        ("a", None, "eu", 7, None),
    ]
