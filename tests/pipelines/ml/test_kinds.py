"""Model kinds: outputs of fitted scikit-learn models and metrics with hand-checked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.metrics import roc_auc_score

from lakehouse.config.ml import PromotionSpec
from lakehouse.pipelines.ml.kinds import (
    evaluation_metrics,
    improvement,
    model_kind,
    model_outputs,
    probability_matrix,
    worse_than,
)
from lakehouse.pipelines.ml.train import build_estimator, decide_promotion


def _iris() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris(as_frame=True)
    return data.data, data.target


def test_each_kind_gives_its_outputs() -> None:
    x, y = _iris()
    features = list(x.columns)
    multi = build_estimator("logistic_regression", {}, 0, features, []).fit(x, y)
    out = model_outputs(multi, x)
    proba = multi.predict_proba(x)
    assert (model_kind(multi), out.kind, out.classes) == (
        "multiclass",
        "multiclass",
        ("0", "1", "2"),
    )
    assert list(out.prediction) == list(multi.predict(x))
    assert np.array_equal(out.probability, proba.max(axis=1))
    maps = out.probabilities()
    assert maps is not None and maps[0] == dict(zip(("0", "1", "2"), proba[0], strict=True))

    binary_y = (y == 2).astype(int)
    binary = build_estimator("random_forest", {"n_estimators": 5}, 0, features, []).fit(x, binary_y)
    out = model_outputs(binary, x)
    assert out.kind == "binary" and out.probabilities() is None and out.matrix is None
    assert np.array_equal(out.probability, binary.predict_proba(x)[:, 1])
    assert list(out.prediction) == list(binary.predict(x))

    d = load_diabetes(as_frame=True)
    regressor = build_estimator(
        "linear_regression", {}, 0, list(d.data.columns), [], task="regression"
    ).fit(d.data, d.target)
    assert list(regressor.named_steps) == ["preprocess", "regressor"]
    out = model_outputs(regressor, d.data)
    assert (out.kind, out.probability, out.probabilities()) == ("regression", None, None)
    assert np.array_equal(out.prediction, regressor.predict(d.data))


def test_multiclass_metrics_are_macro_weighted_and_one_vs_rest() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    matrix = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.3, 0.6, 0.1],
            [0.1, 0.8, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.1, 0.8],
            [0.5, 0.1, 0.4],
        ]
    )
    got = evaluation_metrics("multiclass", y, p, matrix, [0, 1, 2])
    # per class precision 1/2, 2/3, 1; recall 1/2, 1, 1/2; f1 1/2, 4/5, 2/3 (2 rows each)
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["precision"] == got["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert got["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert got["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert got["f1_weighted"] == pytest.approx(got["f1_macro"])  # equal class sizes
    expected_auc = roc_auc_score(y, matrix, multi_class="ovr", average="macro")
    assert got["roc_auc"] == pytest.approx(expected_auc)
    # a class missing from the labelled rows: averaged over the classes present
    two = evaluation_metrics("multiclass", y[:4], p[:4], matrix[:4], [0, 1, 2])
    assert two["roc_auc"] == pytest.approx(
        np.mean([roc_auc_score(y[:4] == c, matrix[:4, c]) for c in (0, 1)])
    )
    assert math.isnan(
        evaluation_metrics("multiclass", y[:2], p[:2], matrix[:2], [0, 1, 2])["roc_auc"]
    )


def test_binary_metrics_keep_class_one_and_regression_metrics() -> None:
    got = evaluation_metrics("binary", [1, 1, 0, 0], [1, 0, 0, 0], np.array([0.9, 0.4, 0.3, 0.1]))
    assert (got["precision"], got["recall"], got["roc_auc"]) == (1.0, 0.5, 1.0)
    assert got["recall_macro"] == pytest.approx(0.75)
    reg = evaluation_metrics("regression", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    assert reg == {"rmse": 1.0, "mae": 0.5, "r2": pytest.approx(1 - 4 / 5)}
    assert all(math.isnan(v) for v in evaluation_metrics("regression", [], []).values())


def test_probability_maps_become_a_matrix_with_int_classes() -> None:
    classes, matrix = probability_matrix([{"10": 0.5, "2": 0.5}, [("2", 0.1), ("10", 0.9)], None])
    assert classes == [2, 10]
    assert matrix.tolist() == [[0.5, 0.5], [0.1, 0.9], [0.0, 0.0]]


def test_direction_of_metrics_and_regression_promotion() -> None:
    assert improvement("rmse", 40.0, 50.0) == 10.0 and improvement("r2", 0.4, 0.5) == pytest.approx(
        -0.1
    )
    assert worse_than("mae", 3.0, 2.0) and not worse_than("accuracy", 3.0, 2.0)
    rule = PromotionSpec(metric="rmse", min_improvement=1.0, thresholds={"rmse": 60.0, "r2": 0.3})
    assert decide_promotion({"rmse": 55.0, "r2": 0.4}, None, rule).promote
    too_high = decide_promotion({"rmse": 65.0, "r2": 0.4}, None, rule)
    assert (too_high.promote, too_high.reason) == (
        False,
        "below the threshold: rmse 65.0000 > 60.0000",
    )
    better = decide_promotion({"rmse": 50.0, "r2": 0.4}, {"rmse": 52.0}, rule, "1")
    assert better.promote
    assert better.reason == "rmse 50.0000 vs champion v1 52.0000: +2.0000 >= margin 1.0"
    slight = decide_promotion({"rmse": 51.5, "r2": 0.4}, {"rmse": 52.0}, rule, "1")
    assert not slight.promote
