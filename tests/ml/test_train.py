"""Training helpers: deterministic fingerprints and estimators."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.models import ModelSpec
from lakehouse.ml.train import build_estimator, evaluate, training_data

SPEC = ModelSpec(
    registered_name="m",
    feature_table="c.g.f",
    key=["id"],
    label="y",
    features=["x", "cat"],
    estimator="random_forest",
    params={"n_estimators": 10},
)


def _features(spark: SparkSession, flip: bool = False):  # type: ignore[no-untyped-def]
    rows = [(f"k{i}", float(i), "a" if i % 2 else "b", int((i > 10) != flip)) for i in range(20)]
    return spark.createDataFrame(rows, "id string, x double, cat string, y int")


@pytest.mark.transform
def test_training_data_is_sorted_typed_and_fingerprinted(spark: SparkSession) -> None:
    data = training_data(_features(spark), SPEC)
    assert data.numeric == ["x"]
    assert data.categorical == ["cat"]
    assert list(data.features.columns) == ["x", "cat"]
    assert (
        data.fingerprint
        == training_data(_features(spark).orderBy("x", ascending=False), SPEC).fingerprint
    )
    assert data.fingerprint != training_data(_features(spark, flip=True), SPEC).fingerprint
    other_params = SPEC.model_copy(update={"params": {"n_estimators": 11}})
    assert data.fingerprint != training_data(_features(spark), other_params).fingerprint


@pytest.mark.transform
def test_estimators_train_and_evaluate_reproducibly(spark: SparkSession) -> None:
    data = training_data(_features(spark), SPEC)
    scores = []
    for estimator in ("logistic_regression", "random_forest", "gradient_boosting"):
        spec = SPEC.model_copy(update={"estimator": estimator, "params": {}})
        model = build_estimator(spec, data.numeric, data.categorical).fit(data.features, data.label)
        metrics = evaluate(model, data.features, data.label)
        assert metrics["roc_auc"] == pytest.approx(1.0)
        scores.append(model.predict_proba(data.features)[:, 1].round(6).tolist())
        again = build_estimator(spec, data.numeric, data.categorical).fit(data.features, data.label)
        assert again.predict_proba(data.features)[:, 1].round(6).tolist() == scores[-1]
