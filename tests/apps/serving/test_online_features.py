"""The online copy of a model's feature tables: latest row per key, shaped as training shapes
it, overrides, unknown keys and missing features per record, reloads by Delta version.

Real Delta tables (written with deltalake); the served app's key lookups against batch
scoring are tested in ``test_app.py``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse.apps.serving.online_features import (
    FeatureLookupSource,
    FeaturesUnavailableError,
    MissingFeaturesError,
    OnlineFeatures,
    UnknownKeysError,
    online_table,
)
from lakehouse.apps.serving.schemas import InputColumn
from lakehouse.pipelines.ml.train import model_input

COLUMNS = (
    InputColumn("plan", "string", True),
    InputColumn("spend", "number", True),
    InputColumn("visits", "number", False),
    InputColumn("score", "number", True),
)
DAY = dt.datetime(2026, 1, 1)


def _source(location: str, **kw: object) -> FeatureLookupSource:
    spec = {
        "table": "c.gold.customer_features",
        "location": location,
        "request_keys": ("customer_id",),
        "table_keys": ("id",),
        "timestamp_key": "ts",
        "features": ("plan", "spend", "visits"),
    }
    spec.update(kw)
    return FeatureLookupSource(**spec)  # type: ignore[arg-type]


def _features_table() -> pa.Table:
    """Three customers over time; 2's latest plan is NULL, 3's visits are NULL."""
    return pa.table(
        {
            "id": pa.array([1, 1, 2, 2, 3, None], pa.int64()),
            "ts": [DAY, DAY + dt.timedelta(days=2), DAY + dt.timedelta(days=5), DAY, DAY, DAY],
            "plan": ["basic", "pro", None, "basic", "pro", "x"],
            "spend": pa.array(["1.5", "2.5", "7", "8", "9.25", "0"]).cast(pa.decimal128(6, 2)),
            "visits": pa.array([1, 2, 3, 4, None, 0], pa.int32()),
            "other": ["a", "b", "c", "d", "e", "f"],
        }
    )


def test_the_copy_holds_the_latest_row_per_key_shaped_as_training_shapes_it() -> None:
    arrow = _features_table()
    table = online_table(arrow, _source("unused"), ["plan"], version=4)
    assert (table.version, sorted(table.index)) == (4, [("1",), ("2",), ("3",)])  # NULL key out
    assert table.row(("1",), ["plan", "spend", "visits"]) == {
        "plan": "pro",
        "spend": 2.5,
        "visits": 2.0,
    }
    assert table.row(("2",), ["plan", "spend"]) == {"plan": None, "spend": 7.0}
    assert table.row(("3",), ["visits"]) == {"visits": None}
    assert table.row(("9",), ["plan"]) is None
    # the same values model_input gives for those rows in training and batch scoring
    latest = arrow.to_pandas().iloc[[1, 2, 4]].reset_index(drop=True)
    shaped = model_input(latest, ["plan", "spend", "visits"], ["plan"])
    for i, key in enumerate(["1", "2", "3"]):
        row = table.row((key,), ["plan", "spend", "visits"])
        assert row is not None
        for name, expected in shaped.iloc[i].items():
            got = row[name]
            assert (got is None and pd.isna(expected)) or got == expected


def test_a_table_without_a_timestamp_key_is_indexed_by_its_keys_alone() -> None:
    frame = pa.table({"region": ["n", "s"], "k": [1, 2], "plan": ["a", "b"]})
    source = _source(
        "unused",
        table_keys=("region", "k"),
        request_keys=("r", "kk"),
        timestamp_key=None,
        features=("plan",),
    )
    table = online_table(frame, source, ["plan"], version=0)
    assert table.row(("s", "2"), ["plan"]) == {"plan": "b"}


def _online(location: Path) -> OnlineFeatures:
    return OnlineFeatures((_source(str(location)),), COLUMNS)


def test_key_only_records_are_completed_and_overrides_win(tmp_path: Path) -> None:
    write_deltalake(tmp_path / "f", _features_table())
    features = _online(tmp_path / "f")
    assert features.refresh() == ["c.gold.customer_features"]
    rows = [
        {"plan": None, "spend": None, "visits": None, "score": 1.0},
        {"plan": "gold", "spend": None, "visits": None, "score": 2.0},
        {"plan": "basic", "spend": 3.0, "visits": 1.0, "score": 3.0},  # nothing to look up
    ]
    keys = [{"customer_id": "1"}, {"customer_id": "2"}, {}]
    done = features.complete(rows, keys)
    assert done.rows == [
        {"plan": "pro", "spend": 2.5, "visits": 2.0, "score": 1.0},
        {"plan": "gold", "spend": 7.0, "visits": 3.0, "score": 2.0},
        rows[2],
    ]
    assert done.versions == [{"c.gold.customer_features": 0}, {"c.gold.customer_features": 0}, {}]
    assert rows[0]["plan"] is None  # the request's records are not changed in place


def test_unknown_keys_and_missing_features_are_named_per_record(tmp_path: Path) -> None:
    write_deltalake(tmp_path / "f", _features_table())
    features = _online(tmp_path / "f")
    features.refresh()
    empty = {"plan": None, "spend": None, "visits": None, "score": 1.0}
    with pytest.raises(UnknownKeysError) as unknown:
        features.complete(
            [empty, empty, empty],
            [{"customer_id": "1"}, {"customer_id": "7"}, {"customer_id": "x"}],
        )
    assert unknown.value.unknown == [
        {"record_index": 1, "keys": {"customer_id": "7"}, "table": "c.gold.customer_features"},
        {"record_index": 2, "keys": {"customer_id": "x"}, "table": "c.gold.customer_features"},
    ]
    assert "record 1: customer_id='7' not in c.gold.customer_features" in str(unknown.value)
    with pytest.raises(MissingFeaturesError) as missing:
        features.complete([empty, {**empty, "plan": "pro"}], [{}, {}])
    # visits is optional in the signature: leaving it out without keys is allowed (imputed)
    assert [(p["record_index"], p["feature"]) for p in missing.value.problems] == [
        (0, "plan"),
        (0, "spend"),
        (1, "spend"),
    ]
    assert "give it, or customer_id to look it up in c.gold.customer_features" in str(missing.value)


def test_a_moved_table_is_reloaded_and_an_unreadable_one_keeps_its_copy(tmp_path: Path) -> None:
    location = tmp_path / "f"
    write_deltalake(location, _features_table())
    features = _online(location)
    features.refresh()
    assert features.refresh() == []  # unchanged: told from the log's file names
    newer = pa.table(
        {
            "id": pa.array([1], pa.int64()),
            "ts": [DAY + dt.timedelta(days=30)],
            "plan": ["enterprise"],
            "spend": pa.array(["100"]).cast(pa.decimal128(6, 2)),
            "visits": pa.array([9], pa.int32()),
            "other": ["z"],
        }
    )
    write_deltalake(location, newer, mode="append")
    assert features.refresh() == ["c.gold.customer_features"]
    empty = {"plan": None, "spend": None, "visits": None, "score": 0.0}
    done = features.complete([empty], [{"customer_id": "1"}])
    assert (done.rows[0]["plan"], done.rows[0]["spend"]) == ("enterprise", 100.0)
    assert done.versions == [{"c.gold.customer_features": 1}]
    status = features.status()["c.gold.customer_features"]
    assert (status["version"], status["rows"], status["error"]) == (1, 3, None)

    shutil.rmtree(location)  # gone: the loaded copy keeps answering, the error is reported
    assert features.refresh() == []
    assert features.complete([empty], [{"customer_id": "1"}]).versions == [
        {"c.gold.customer_features": 1}
    ]
    assert features.status()["c.gold.customer_features"]["error"] is not None


def test_a_table_never_loaded_answers_unavailable_only_to_records_that_need_it(
    tmp_path: Path,
) -> None:
    features = _online(tmp_path / "missing")
    assert features.refresh() == []
    full = {"plan": "pro", "spend": 1.0, "visits": 1.0, "score": 0.0}
    assert features.complete([full], [{"customer_id": "1"}]).rows == [full]
    with pytest.raises(
        FeaturesUnavailableError, match=r"c\.gold\.customer_features is not available"
    ):
        features.complete([{**full, "spend": None}], [{"customer_id": "1"}])
