"""AUTO CDC flows on real Delta tables: exact tables after each batch, SCD1 and SCD2.

The first batch of each scenario is the change feed of Databricks' AUTO CDC documentation
(users 123-126, ``operation``, ``sequenceNum``), whose target tables the documentation
shows; the later batches add late, duplicate, replayed and reopening events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import Project, load_project
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.declarative.cdc import (
    AutoCdcResult,
    apply_auto_cdc,
    reset_auto_cdc,
    state_table,
)
from lakehouse.pipelines.declarative.model import AutoCdc
from lakehouse.transforms.cdc import AutoCdcError
from tests.support import session_engine

pytestmark = pytest.mark.delta  # both engines

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
CONF = """
catalog:
  name: c
  storage_root: ${var.data_root}/tables
  schemas:
    s:
      tables:
        users: {layer: silver}
        history: {layer: silver}
"""
SCHEMA = "userId int, name string, city string, operation string, sequenceNum int"
# Databricks' documented example feed: a delete of 123 and out-of-order updates of 125.
FEED = [
    (124, "Raul", "Oaxaca", "INSERT", 1),
    (123, "Isabel", "Monterrey", "INSERT", 1),
    (125, "Mercedes", "Tijuana", "INSERT", 2),
    (126, "Lily", "Cancun", "INSERT", 2),
    (123, None, None, "DELETE", 6),
    (125, "Mercedes", "Guadalajara", "UPDATE", 6),
    (125, "Mercedes", "Mexicali", "UPDATE", 5),
    (123, "Isabel", "Chihuahua", "UPDATE", 5),
]
SCD1 = AutoCdc(
    target="c.s.users",
    source="users_cdc",
    keys=("userId",),
    sequence_by="sequenceNum",
    apply_as_deletes="operation = 'DELETE'",
    except_column_list=("operation", "sequenceNum"),
)
SCD2 = replace(SCD1, target="c.s.history", stored_as_scd_type=2)

Row = tuple[object, ...]


@pytest.fixture()
def store(spark: SparkSession, tmp_path: Path) -> DeltaStore:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(BUNDLE)
    (tmp_path / "conf" / "c.yml").write_text(CONF)
    project: Project = load_project(tmp_path)
    return DeltaStore(spark, project, session_engine(spark))


def _apply(
    store: DeltaStore, spec: AutoCdc, rows: Sequence[Row], schema: str = SCHEMA
) -> AutoCdcResult:
    changes = store.spark.createDataFrame(rows, schema)
    return apply_auto_cdc(store, spec.target, changes, spec)


def _table(store: DeltaStore, name: str) -> list[Row]:
    """The table's rows by key (and ``__START_AT``: a key's history in order)."""
    df = store.read(name)
    order = ["userId", "__START_AT"] if "__START_AT" in df.columns else df.columns
    return [tuple(r) for r in df.orderBy(*order).collect()]


def _counts(r: AutoCdcResult) -> tuple[int, int, int]:
    return (r.upserted, r.deleted, r.history_rows)


def test_scd1_latest_event_wins_and_deletes_leave_tombstones(store: DeltaStore) -> None:
    first = _apply(store, SCD1, FEED)
    assert store.read("c.s.users").columns == ["userId", "name", "city"]
    assert _table(store, "c.s.users") == [
        (124, "Raul", "Oaxaca"),
        (125, "Mercedes", "Guadalajara"),
        (126, "Lily", "Cancun"),
    ]
    assert _counts(first) == (3, 0, 0)
    late = [
        (123, "Isabel", "Leon", "UPDATE", 4),  # older than the delete of 123: stays deleted
        (125, "Mercedes", "Tepic", "UPDATE", 5),  # older than what the target has: ignored
        (124, "Raul", "Puebla", "UPDATE", 7),
        (124, "Raul", "Toluca", "UPDATE", 3),  # older than 7 in the same batch
        (126, None, None, "DELETE", 3),
    ]
    second = _apply(store, SCD1, late)
    assert _table(store, "c.s.users") == [(124, "Raul", "Puebla"), (125, "Mercedes", "Guadalajara")]
    assert _counts(second) == (1, 1, 0)
    version = store.version("c.s.users")
    replayed = _apply(store, SCD1, late)
    assert (_counts(replayed), replayed.version) == ((0, 0, 0), version)
    reopened = _apply(store, SCD1, [(123, "Isabel", "Juarez", "INSERT", 8)])
    assert _counts(reopened) == (1, 0, 0)
    assert _table(store, "c.s.users") == [
        (123, "Isabel", "Juarez"),
        (124, "Raul", "Puebla"),
        (125, "Mercedes", "Guadalajara"),
    ]


def test_scd1_truncate_empties_what_came_before_it(store: DeltaStore) -> None:
    spec = replace(SCD1, apply_as_truncates="operation = 'TRUNCATE'")
    _apply(store, spec, [*FEED, (None, None, None, "TRUNCATE", 3)])
    assert _table(store, "c.s.users") == [(125, "Mercedes", "Guadalajara")]
    _apply(store, spec, [(127, "Ana", "Leon", "INSERT", 2), (128, "Eva", "Colima", "INSERT", 4)])
    assert _table(store, "c.s.users") == [(125, "Mercedes", "Guadalajara"), (128, "Eva", "Colima")]
    second = _apply(store, spec, [(None, None, None, "TRUNCATE", 10)])
    assert (_counts(second), _table(store, "c.s.users")) == ((0, 2, 0), [])
    _apply(store, spec, [(128, "Eva", "Tepic", "UPDATE", 9)])  # before the truncate
    assert _table(store, "c.s.users") == []


def test_scd1_ignore_null_updates_keeps_stored_values(store: DeltaStore) -> None:
    spec = replace(SCD1, ignore_null_updates=True)
    _apply(store, spec, [(1, "a", "x", "INSERT", 1), (2, "p", "q", "INSERT", 1)])
    _apply(
        store,
        spec,
        [
            (1, None, "y", "UPDATE", 2),
            (1, "b", None, "UPDATE", 3),
            (2, None, None, "DELETE", 2),  # a delete: nothing carries over past it
            (2, None, "r", "INSERT", 3),
        ],
    )
    assert _table(store, "c.s.users") == [(1, "b", "y"), (2, None, "r")]
    _apply(store, spec, [(2, "s", None, "UPDATE", 4)])
    assert _table(store, "c.s.users") == [(1, "b", "y"), (2, "s", "r")]
    _apply(store, SCD1, [(2, None, "t", "UPDATE", 5)])  # without the option: nulls overwrite
    assert _table(store, "c.s.users") == [(1, "b", "y"), (2, None, "t")]


def test_scd1_column_list_and_except_column_list(store: DeltaStore) -> None:
    spec = replace(SCD1, column_list=("city",), except_column_list=None)
    _apply(store, spec, FEED[:4])
    assert store.read("c.s.users").columns == ["userId", "city"]  # keys are always kept
    assert _table(store, "c.s.users") == [
        (123, "Monterrey"),
        (124, "Oaxaca"),
        (125, "Tijuana"),
        (126, "Cancun"),
    ]
    reset_auto_cdc(store, "c.s.users")
    store.drop_data("c.s.users")
    kept = replace(SCD1, except_column_list=("operation",))
    _apply(store, kept, FEED)
    assert store.read("c.s.users").columns == ["userId", "name", "city", "sequenceNum"]
    assert _table(store, "c.s.users") == [
        (124, "Raul", "Oaxaca", 1),
        (125, "Mercedes", "Guadalajara", 6),
        (126, "Lily", "Cancun", 2),
    ]


def test_scd1_state_lives_beside_the_target(store: DeltaStore) -> None:
    _apply(store, SCD1, FEED)
    state = state_table(store.project.table("c.s.users"))
    assert state.location.endswith("/s/users/_auto_cdc_state")
    assert sorted(tuple(r) for r in store.read(state).collect()) == [
        (123, 6, True, False),
        (124, 1, False, False),
        (125, 6, False, False),
        (126, 2, False, False),
    ]
    _apply(store, SCD1, [(124, "Raul", "Puebla", "UPDATE", 7)])  # a file for VACUUM to remove
    store.vacuum("c.s.users", 0, enforce_retention_duration=False)
    assert store.read(state).count() == 4  # VACUUM of the target leaves the state alone
    assert _table(store, "c.s.users")[0] == (124, "Raul", "Puebla")
    assert reset_auto_cdc(store, "c.s.users") is True
    assert not store.exists(state)


def test_scd2_versions_from_the_documented_feed_then_late_events(store: DeltaStore) -> None:
    first = _apply(store, SCD2, FEED)
    assert store.read("c.s.history").columns == ["userId", "name", "city", "__START_AT", "__END_AT"]
    assert _table(store, "c.s.history") == [
        (123, "Isabel", "Monterrey", 1, 5),
        (123, "Isabel", "Chihuahua", 5, 6),
        (124, "Raul", "Oaxaca", 1, None),
        (125, "Mercedes", "Tijuana", 2, 5),
        (125, "Mercedes", "Mexicali", 5, 6),
        (125, "Mercedes", "Guadalajara", 6, None),
        (126, "Lily", "Cancun", 2, None),
    ]
    assert _counts(first) == (7, 1, 7)
    version = store.version("c.s.history")
    assert (_counts(_apply(store, SCD2, FEED)), store.version("c.s.history")) == (
        (0, 0, 0),
        version,
    )
    late = [
        (124, "Raul", "Veracruz", "INSERT", 0),  # before the first version
        (123, "Isabel", "Leon", "UPDATE", 3),  # inside the history of a deleted key
        (126, None, None, "DELETE", 4),
        (126, "Lily", "Cancun", "UPDATE", 4),  # same sequence as the delete: the delete wins
        (200, None, None, "DELETE", 5),  # a key never seen
    ]
    second = _apply(store, SCD2, late)
    assert _table(store, "c.s.history") == [
        (123, "Isabel", "Monterrey", 1, 3),
        (123, "Isabel", "Leon", 3, 5),
        (123, "Isabel", "Chihuahua", 5, 6),
        (124, "Raul", "Veracruz", 0, 1),
        (124, "Raul", "Oaxaca", 1, None),
        (125, "Mercedes", "Tijuana", 2, 5),
        (125, "Mercedes", "Mexicali", 5, 6),
        (125, "Mercedes", "Guadalajara", 6, None),
        (126, "Lily", "Cancun", 2, 4),
    ]
    assert _counts(second) == (2, 2, 4)
    _apply(
        store, SCD2, [(200, "Zoe", "Colima", "INSERT", 4), (123, "Isabel", "Juarez", "UPDATE", 9)]
    )
    assert [r for r in _table(store, "c.s.history") if r[0] in (123, 200)] == [
        (123, "Isabel", "Monterrey", 1, 3),
        (123, "Isabel", "Leon", 3, 5),
        (123, "Isabel", "Chihuahua", 5, 6),
        (123, "Isabel", "Juarez", 9, None),
        (200, "Zoe", "Colima", 4, 5),  # the delete seen earlier closes the late version
    ]


@pytest.mark.parametrize(
    "tracking",
    [{"track_history_except_column_list": ("city",)}, {"track_history_column_list": ("name",)}],
    ids=["except_city", "name_only"],
)
def test_scd2_untracked_changes_update_the_version_in_place(
    store: DeltaStore, tracking: dict[str, tuple[str, ...]]
) -> None:
    spec = replace(SCD2, **tracking)  # type: ignore[arg-type]
    _apply(store, spec, FEED)
    assert _table(store, "c.s.history") == [  # the documented result
        (123, "Isabel", "Chihuahua", 1, 6),
        (124, "Raul", "Oaxaca", 1, None),
        (125, "Mercedes", "Guadalajara", 2, None),
        (126, "Lily", "Cancun", 2, None),
    ]
    _apply(store, spec, [(125, "Mercedes", "Leon", "UPDATE", 4)])  # late, untracked
    assert _table(store, "c.s.history")[2] == (125, "Mercedes", "Guadalajara", 2, None)
    _apply(store, spec, [(125, "Mercy", "Tepic", "UPDATE", 7)])
    assert [r for r in _table(store, "c.s.history") if r[0] == 125] == [
        (125, "Mercedes", "Guadalajara", 2, 7),
        (125, "Mercy", "Tepic", 7, None),
    ]


def test_scd2_struct_sequence_and_ignore_null_updates(store: DeltaStore) -> None:
    spec = replace(
        SCD2,
        sequence_by="struct(day, n)",
        except_column_list=("operation", "day", "n"),
        ignore_null_updates=True,
    )
    schema = "userId int, name string, city string, operation string, day int, n int"
    rows = [
        (1, "a", "x", "INSERT", 1, 1),
        (1, None, "y", "UPDATE", 1, 2),  # name stays a
        (1, "b", None, "UPDATE", 2, 0),
    ]
    _apply(store, spec, rows, schema)
    assert str(store.schema("c.s.history")["__START_AT"].dataType.simpleString()) == (
        "struct<day:int,n:int>"
    )
    assert [
        (r["name"], r["city"], tuple(r["__START_AT"]), r["__END_AT"] and tuple(r["__END_AT"]))
        for r in store.read("c.s.history").orderBy("__START_AT").collect()
    ] == [
        ("a", "x", (1, 1), (1, 2)),
        ("a", "y", (1, 2), (2, 0)),
        ("b", "y", (2, 0), None),
    ]


def test_bad_options_fail_with_one_line_naming_the_flow(store: DeltaStore) -> None:
    with pytest.raises(AutoCdcError, match=r"AUTO CDC flow c\.s\.history: apply_as_truncates"):
        _apply(store, replace(SCD2, apply_as_truncates="operation = 'T'"), FEED)
    with pytest.raises(AutoCdcError, match="column_list names town, not a column of users_cdc"):
        _apply(store, replace(SCD1, column_list=("town",), except_column_list=None), FEED)
    assert not store.exists("c.s.users")
