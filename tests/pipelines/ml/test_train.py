"""Training pieces without MLflow: data preparation, splits, estimators, the promotion rule."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.config.ml import ModelSpec, PromotionSpec, SplitSpec
from lakehouse.core.errors import LakehouseError
from lakehouse.pipelines.ml.train import (
    best_candidate,
    build_estimator,
    decide_promotion,
    evaluate,
    fingerprint_settings,
    holdout_split,
    model_input,
    train_candidates,
    training_data,
)
from lakehouse.pipelines.ml.training_set import TrainingSet

SPEC = ModelSpec.model_validate(
    {
        "registered_name": "m",
        "training_set": {
            "labels": {"table": "c.s.labels", "keys": ["id"], "timestamp": "t", "label": "y"},
            "features": [{"table": "c.g.f", "features": ["x", "cat"]}],
        },
        "candidates": {
            "logistic_regression": {},
            "random_forest": {"params": {"n_estimators": 10}},
            "gradient_boosting": {"params": {"n_estimators": 10}},
        },
        "split": {"by": "time", "test_size": 0.25},
    }
)


def _training_set(spark: SparkSession, flip: bool = False, n: int = 40) -> TrainingSet:
    start = dt.datetime(2026, 1, 1)
    rows = [
        (
            f"k{i:02d}",
            start + dt.timedelta(days=(i * 7) % n),  # label times not in key order
            float(i % 20) if i != 3 else None,  # one missing number
            ("a" if i % 2 else "b") if i != 5 else None,  # one missing category
            int((i % 20 > 10) != flip),
        )
        for i in range(n)
    ]
    frame = spark.createDataFrame(
        rows, "id string, label_ts timestamp, x double, cat string, y int"
    )
    return TrainingSet(frame, "y", ["id"], "label_ts", {"c.s.labels": 3, "c.g.f": 7})


@pytest.mark.transform
def test_training_data_is_ordered_by_label_time_and_fingerprinted(spark: SparkSession) -> None:
    data = training_data(_training_set(spark), SPEC)
    assert data.numeric == ["x"]
    assert data.categorical == ["cat"]
    assert data.frame["label_ts"].is_monotonic_increasing
    assert list(data.x.columns) == ["x", "cat"]
    assert data.x["x"].dtype == "float64"
    assert data.x["x"].isna().sum() == 1
    assert data.x["cat"].isna().sum() == 1
    shuffled = _training_set(spark)
    shuffled = TrainingSet(
        shuffled.frame.orderBy("x", ascending=False), "y", ["id"], "label_ts", {}
    )
    assert data.fingerprint == training_data(shuffled, SPEC).fingerprint
    assert data.fingerprint != training_data(_training_set(spark, flip=True), SPEC).fingerprint
    other = SPEC.model_copy(update={"seed": 43})
    assert data.fingerprint != training_data(_training_set(spark), other).fingerprint
    # a double summed in another order (another engine) differs in its last bits only
    base = _training_set(spark)
    noisy = base.frame.withColumn("x", F.col("x") + F.col("x") * F.lit(1e-15))
    same = TrainingSet(noisy, "y", ["id"], "label_ts", {})
    assert data.fingerprint == training_data(same, SPEC).fingerprint
    changed = TrainingSet(
        base.frame.withColumn("x", F.col("x") * 1.001), "y", ["id"], "label_ts", {}
    )
    assert data.fingerprint != training_data(changed, SPEC).fingerprint


@pytest.mark.transform
def test_time_split_holds_out_the_latest_label_times(spark: SparkSession) -> None:
    data = training_data(_training_set(spark), SPEC)
    train, test = holdout_split(data, SplitSpec(by="time", test_size=0.25), seed=1)
    assert len(test) == 10 and len(train) == 30
    times = data.frame["label_ts"]
    assert times.iloc[train].max() <= times.iloc[test].min()
    random_train, random_test = holdout_split(data, SplitSpec(by="random", test_size=0.25), 1)
    assert len(random_test) == 10
    assert set(random_train) | set(random_test) == set(range(40))
    again = holdout_split(data, SplitSpec(by="random", test_size=0.25), 1)
    assert list(again[1]) == list(random_test)


@pytest.mark.transform
def test_candidates_train_on_missing_values_reproducibly(spark: SparkSession) -> None:
    data = training_data(_training_set(spark), SPEC)
    first, test_rows = train_candidates(data, SPEC)
    second, _ = train_candidates(data, SPEC)
    assert [c.name for c in first] == list(SPEC.candidates)
    for a, b in zip(first, second, strict=True):
        assert a.estimator == a.name
        timeless = {k: v for k, v in a.metrics.items() if not k.endswith("_seconds")}
        assert timeless == {k: v for k, v in b.metrics.items() if not k.endswith("_seconds")}
        assert set(a.metrics) >= {
            "accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "training_seconds",
            "prediction_seconds",
        }
        x_test = data.x.iloc[test_rows]
        assert np.allclose(a.model.predict_proba(x_test), b.model.predict_proba(x_test))


def test_model_input_gives_training_dtypes() -> None:
    raw = pd.DataFrame({"n": ["1", None, "2.5"], "c": ["a", None, "b"], "extra": [1, 2, 3]})
    out = model_input(raw, ["n", "c"], ["c"])
    assert list(out.columns) == ["n", "c"]
    assert out["n"].dtype == "float64" and math.isnan(out["n"][1])
    assert out["c"].dtype == object and out["c"].isna().tolist() == [False, True, False]


def test_every_estimator_is_a_pipeline_with_preprocessing() -> None:
    x = pd.DataFrame({"n": [1.0, 2.0, np.nan, 4.0] * 5, "c": ["a", "b", np.nan, "a"] * 5})
    y = pd.Series([0, 1, 0, 1] * 5)
    for name in ("logistic_regression", "random_forest", "gradient_boosting"):
        model = build_estimator(name, {}, 7, ["n"], ["c"]).fit(x, y)
        assert list(model.named_steps) == ["preprocess", "classifier"]
        assert evaluate(model, x, y)["roc_auc"] == pytest.approx(1.0)
    with pytest.raises(LakehouseError, match="unknown estimator"):
        build_estimator("svm", {}, 7, ["n"], ["c"])


RULE = PromotionSpec(metric="roc_auc", min_improvement=0.01, thresholds={"roc_auc": 0.7})


def test_promotion_rule() -> None:
    good = {"roc_auc": 0.80, "f1": 0.5}
    first = decide_promotion(good, None, RULE)
    assert first.promote and "no champion yet" in first.reason
    better = decide_promotion({"roc_auc": 0.82}, {"roc_auc": 0.80}, RULE, "3")
    assert better.promote and "champion v3" in better.reason
    marginal = decide_promotion({"roc_auc": 0.805}, {"roc_auc": 0.80}, RULE, "3")
    assert not marginal.promote and "< margin 0.01" in marginal.reason
    worse = decide_promotion({"roc_auc": 0.75}, {"roc_auc": 0.80}, RULE, "3")
    assert not worse.promote
    low = decide_promotion({"roc_auc": 0.65}, None, RULE)
    assert not low.promote and "below the threshold: roc_auc 0.6500 < 0.7000" in low.reason
    nan = decide_promotion({"roc_auc": float("nan")}, None, RULE)
    assert not nan.promote


def test_best_candidate_ignores_nan_and_keeps_config_order_on_ties() -> None:
    from lakehouse.pipelines.ml.train import Candidate

    cands = [
        Candidate("a", "logistic_regression", None, {"roc_auc": float("nan")}),
        Candidate("b", "random_forest", None, {"roc_auc": 0.7}),
        Candidate("c", "gradient_boosting", None, {"roc_auc": 0.7}),
    ]
    assert best_candidate(cands, "roc_auc").name == "b"


def test_the_default_task_leaves_fingerprints_as_they_were() -> None:
    """A model trained before ``task`` existed is not retrained because of it."""
    before = SPEC.model_dump(mode="json")
    del before["task"]
    assert fingerprint_settings(SPEC) == before
    regression = SPEC.model_copy(
        update={
            "task": "regression",
            "candidates": {"linear_regression": SPEC.candidates["logistic_regression"]},
        }
    )
    assert fingerprint_settings(regression)["task"] == "regression"


def test_regression_candidates_train_on_numbers_split_without_strata(spark: SparkSession) -> None:
    spec = SPEC.model_copy(
        update={
            "task": "regression",
            "split": SplitSpec(by="random", test_size=0.25),
            "candidates": {
                "linear_regression": SPEC.candidates["logistic_regression"],
                "random_forest": SPEC.candidates["random_forest"],
            },
        }
    )
    data = training_data(_training_set(spark), spec)
    assert data.y.dtype == "float64"
    candidates, test_rows = train_candidates(data, spec)
    assert len(test_rows) == 10
    assert [list(c.model.named_steps) for c in candidates] == [["preprocess", "regressor"]] * 2
    for c in candidates:
        assert set(c.metrics) == {"rmse", "mae", "r2", "prediction_seconds", "training_seconds"}
    best = best_candidate(candidates, "rmse")
    assert best.metrics["rmse"] == min(c.metrics["rmse"] for c in candidates)
