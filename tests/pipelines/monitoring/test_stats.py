"""Drift statistics and pure checks: exact values on small inputs, calibrated alerting."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lakehouse.pipelines.monitoring.checks import (
    ab_rows,
    metric_floor,
    performance_rows,
    quality_rows,
)
from lakehouse.pipelines.monitoring.stats import (
    OTHER,
    DriftThresholds,
    bin_counts,
    categorical_bins,
    chi2_test,
    drift_report,
    ks_test,
    numeric_bins,
    psi,
    quantile_edges,
)


def test_psi_of_identical_shares_is_zero_and_matches_the_formula() -> None:
    assert psi(np.array([10, 20, 70]), np.array([1, 2, 7])) == 0.0
    # (0.5-0.25)*ln(0.5/0.25) + (0.5-0.75)*ln(0.5/0.75)
    expected = 0.25 * math.log(2) - 0.25 * math.log(2 / 3)
    assert psi(np.array([25, 75]), np.array([50, 50])) == pytest.approx(expected, abs=1e-12)


def test_psi_counts_an_empty_bin_as_epsilon() -> None:
    value = psi(np.array([50, 50]), np.array([100, 0]), epsilon=1e-4)
    expected = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert value == pytest.approx(expected, abs=1e-12)


def test_bins_follow_reference_quantiles_with_a_missing_bin() -> None:
    reference = pd.Series([float(i) for i in range(1, 101)] + [None])
    current = pd.Series([0.5, 50.0, 50.5, 1000.0, None, None])
    edges = quantile_edges(reference.dropna().to_numpy(), 4)
    assert edges.tolist() == [25.75, 50.5, 75.25]
    assert bin_counts(np.array([25.75, 25.76]), edges).tolist() == [1, 1, 0, 0]
    ref_counts, cur_counts, labels = numeric_bins(reference, current, 4)
    assert ref_counts.tolist() == [25, 25, 25, 25, 1]
    assert cur_counts.tolist() == [1, 2, 0, 1, 2]
    assert labels[-1] == "__missing__"


def test_categorical_bins_put_unseen_values_in_other() -> None:
    ref_counts, cur_counts, labels = categorical_bins(
        pd.Series(["a", "a", "b", None]), pd.Series(["a", "c", "c", "b"])
    )
    assert labels == ["__missing__", "a", "b", OTHER]
    assert ref_counts.tolist() == [1, 2, 1, 0]
    assert cur_counts.tolist() == [0, 1, 1, 2]


def test_ks_and_chi2_match_scipy_on_known_inputs() -> None:
    from scipy import stats

    a, b = pd.Series([1.0, 2.0, 3.0, 4.0, None]), pd.Series([3.0, 4.0, 5.0, 6.0])
    statistic, pvalue = ks_test(a, b)
    expected = stats.ks_2samp([1, 2, 3, 4], [3, 4, 5, 6])
    assert (statistic, pvalue) == (pytest.approx(0.5), pytest.approx(expected.pvalue))
    chi2, p = chi2_test(np.array([30, 70]), np.array([70, 30]))
    assert chi2 == pytest.approx(32.0)  # 4 cells of (20^2 / 50)
    assert p == pytest.approx(stats.chi2.sf(32.0, 1))
    assert chi2_test(np.array([5, 0]), np.array([7, 0])) == (0.0, 1.0)  # one category


def _frame(rng: np.random.Generator, n: int, spend_scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenure": rng.exponential(300.0, n),
            "spend": rng.lognormal(5.0, 0.8, n) * spend_scale,
            "tickets": rng.poisson(1.5, n).astype(float),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    )


FEATURES = ["tenure", "spend", "tickets", "plan"]


@pytest.mark.parametrize("n", [150, 1000, 20000])
def test_independent_samples_of_one_distribution_never_alert(n: int) -> None:
    """50 fresh samples per size: with Bonferroni and the PSI gate, not one false alarm."""
    rng = np.random.default_rng(7)
    reference = _frame(rng, 1000)
    false_alarms = 0
    for _ in range(50):
        report = drift_report(reference, _frame(rng, n), FEATURES, ["plan"], DriftThresholds())
        false_alarms += sum(d.alert for d in report)
    assert false_alarms == 0


def test_a_shifted_feature_raises_exactly_its_alert() -> None:
    rng = np.random.default_rng(11)
    reference = _frame(rng, 1000)
    current = _frame(rng, 500, spend_scale=1.6)
    current["plan"] = rng.choice(["basic", "plus", "pro"], 500, p=[0.5, 0.3, 0.2])
    report = drift_report(reference, current, FEATURES, ["plan"], DriftThresholds())
    assert [d.feature for d in report if d.alert] == ["spend"]
    spend = next(d for d in report if d.feature == "spend")
    assert spend.psi > 0.2 and spend.pvalue < 0.05 / 4 and spend.alpha == 0.0125


def test_a_shifted_category_raises_its_alert_with_chi_square() -> None:
    rng = np.random.default_rng(3)
    reference = _frame(rng, 1000)
    current = _frame(rng, 500)
    current["plan"] = rng.choice(["basic", "plus", "pro"], 500, p=[0.1, 0.3, 0.6])
    report = drift_report(reference, current, FEATURES, ["plan"], DriftThresholds())
    assert [(d.feature, d.test) for d in report if d.alert] == [("plan", "chi2")]


def test_a_small_window_never_alerts() -> None:
    rng = np.random.default_rng(5)
    reference = _frame(rng, 1000)
    report = drift_report(
        reference, _frame(rng, 50, spend_scale=5.0), FEATURES, ["plan"], DriftThresholds()
    )
    spend = next(d for d in report if d.feature == "spend")
    assert (spend.alert, spend.reason) == (False, "50 current rows < min_rows 100")


def test_quality_rows_judge_each_tables_latest_run() -> None:
    t0, t1 = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)
    results = pd.DataFrame(
        [
            ("r1", "cat.silver.orders", "amount_positive", 1000, 100, 0.9, t0),
            ("r2", "cat.silver.orders", "amount_positive", 1000, 5, 0.995, t1),
            ("r2", "cat.silver.orders", "id_not_null", 1000, 20, 0.98, t1),
            ("r1", "cat.silver.customers", "email_valid", 200, 1, 0.995, t0),
        ],
        columns=["run_id", "table", "rule", "evaluated", "failed", "pass_rate", "evaluated_at"],
    ).assign(expectation="e", action="warn", outcome="warned")
    rows = quality_rows(
        results, min_pass_rate=0.99, table_thresholds={"cat.silver.customers": 0.999}
    )
    assert [(r.subject, r.value, r.threshold, r.alert, r.current_rows) for r in rows] == [
        ("cat.silver.customers:email_valid", 0.995, 0.999, True, 200),
        ("cat.silver.orders:amount_positive", 0.995, 0.99, False, 1000),
        ("cat.silver.orders:id_not_null", 0.98, 0.99, True, 1000),
    ]
    assert rows[2].details["run_id"] == "r2" and rows[2].details["failed"] == 20


def test_performance_floor_is_the_stricter_of_minimum_and_drop() -> None:
    assert metric_floor("roc_auc", {"roc_auc": 0.7}, {"roc_auc": 0.05}, {"roc_auc": 0.9}) == (
        pytest.approx(0.85),
        "training 0.9000 - max drop 0.05",
    )
    assert metric_floor("f1", {"f1": 0.5}, {}, {}) == (0.5, "minimum 0.5")
    assert metric_floor("recall", {}, {}, {"recall": 0.8}) == (None, "")


def test_performance_rows_exact_metrics_and_alerts() -> None:
    # 8 labelled rows: 3 of 4 positives found, 1 false positive
    labelled = pd.DataFrame(
        {
            "label": [1, 1, 1, 1, 0, 0, 0, 0],
            "prediction": [1, 1, 1, 0, 1, 0, 0, 0],
            "probability": [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.4],
        }
    )
    rows = performance_rows(
        labelled,
        subject="cat.gold.preds@v1",
        model_version="3",
        metrics=["roc_auc", "accuracy", "precision", "recall", "f1"],
        minimums={"accuracy": 0.8},
        max_drop={"roc_auc": 0.05},
        training={"roc_auc": 0.95},
        min_labeled=5,
        scored_rows=10,
        window_start=None,
        window_end=None,
    )
    got = {r.metric: (r.value, r.threshold, r.alert) for r in rows}
    # AUC: of 16 (pos, neg) pairs only (0.3 vs 0.6) and (0.3 vs 0.4) are misordered
    assert got == {
        "labeled_rows": (8.0, None, False),
        "roc_auc": (pytest.approx(14 / 16), pytest.approx(0.9), True),
        "accuracy": (0.75, 0.8, True),
        "precision": (0.75, None, False),
        "recall": (0.75, None, False),
        "f1": (0.75, None, False),
    }


def test_ab_rows_exact_shares_and_a_lift_alert() -> None:
    served = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "c", "d", "d", "d", "e"],
            "alias": ["champion"] * 6 + ["challenger"] * 2,
            "model_version": ["1"] * 6 + ["2"] * 2,
            "label": [1, 0, 1, 0, None, 1, 0, 1],
            "prediction": [1, 1, 0, 0, 1, 1, 0, 1],
            "probability": [0.9, 0.6, 0.4, 0.2, 0.7, 0.8, 0.1, 0.9],
        }
    )
    served.loc[6:7, "request_id"] = ["x", "y"]
    rows = ab_rows(
        served,
        metric="accuracy",
        min_improvement=0.1,
        min_labeled=2,
        window_start=None,
        window_end=None,
    )
    got = {(r.subject, r.metric): r.value for r in rows}
    assert got[("champion v1", "requests")] == 4.0
    assert got[("champion v1", "share")] == 0.75
    assert got[("challenger v2", "share")] == 0.25
    assert got[("champion v1", "labeled_rows")] == 5.0
    assert got[("champion v1", "accuracy")] == 0.6
    assert got[("challenger v2", "accuracy")] == 1.0
    lift = rows[-1]
    assert (lift.subject, lift.metric, lift.value, lift.alert, lift.model_version) == (
        "challenger vs champion",
        "accuracy_lift",
        pytest.approx(0.4),
        True,
        "2",
    )


def test_error_metrics_get_a_ceiling_not_a_floor() -> None:
    assert metric_floor("rmse", {"rmse": 60.0}, {"rmse": 5.0}, {"rmse": 50.0}) == (
        55.0,
        "training 50.0000 + max rise 5.0",
    )
    assert metric_floor("mae", {"mae": 40.0}, {}, {}) == (40.0, "maximum 40.0")
    assert metric_floor("r2", {}, {"r2": 0.05}, {"r2": 0.5}) == (
        pytest.approx(0.45),
        "training 0.5000 - max drop 0.05",
    )


def test_performance_rows_of_a_regression_and_a_multiclass_model() -> None:
    regression = pd.DataFrame({"label": [1.0, 2.0, 3.0, 4.0], "prediction": [1.0, 2.0, 3.0, 6.0]})
    common: dict[str, Any] = {
        "subject": "cat.gold.preds@v1",
        "model_version": "1",
        "min_labeled": 4,
        "scored_rows": 4,
        "window_start": None,
        "window_end": None,
    }
    rows = performance_rows(
        regression,
        kind="regression",
        metrics=["rmse", "mae", "r2"],
        minimums={"rmse": 0.9, "r2": 0.1},
        max_drop={"mae": 0.2},
        training={"mae": 0.25},
        **common,
    )
    got = {r.metric: (r.value, r.threshold, r.alert) for r in rows}
    assert got == {
        "labeled_rows": (4.0, None, False),
        "rmse": (1.0, 0.9, True),  # above its maximum
        "mae": (0.5, pytest.approx(0.45), True),  # training 0.25 + 0.2
        "r2": (pytest.approx(0.2), 0.1, False),
    }
    assert rows[0].details == {"label_mean": 2.5}
    assert rows[1].message == "rmse of cat.gold.preds@v1 (v1) 1.0000 > 0.9000 (maximum 0.9)"

    multiclass = pd.DataFrame(
        {
            "label": [0, 1, 2, 2],
            "prediction": [0, 1, 2, 1],
            "probabilities": [
                {"0": 0.8, "1": 0.1, "2": 0.1},
                {"0": 0.1, "1": 0.8, "2": 0.1},
                {"0": 0.1, "1": 0.2, "2": 0.7},
                {"0": 0.1, "1": 0.5, "2": 0.4},
            ],
        }
    )
    rows = performance_rows(
        multiclass,
        kind="multiclass",
        metrics=["accuracy", "f1_macro", "roc_auc"],
        minimums={"accuracy": 0.8},
        max_drop={},
        training={},
        **common,
    )
    got = {r.metric: (r.value, r.alert) for r in rows}
    # class 2's AUC: 0.7 and 0.4 vs 0.1 and 0.1 -> 1.0; classes 0 and 1 are ranked perfectly
    assert got == {
        "labeled_rows": (4.0, False),
        "accuracy": (0.75, True),
        "f1_macro": (pytest.approx((1 + 2 / 3 + 2 / 3) / 3), False),
        "roc_auc": (1.0, False),
    }
    assert rows[0].details == {"classes": {"0": 1, "1": 1, "2": 2}}


def test_ab_lift_of_an_error_metric_is_a_fall() -> None:
    served = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d"],
            "alias": ["champion", "champion", "challenger", "challenger"],
            "model_version": ["1", "1", "2", "2"],
            "label": [10.0, 20.0, 10.0, 20.0],
            "prediction": [14.0, 16.0, 11.0, 19.0],
            "probability": [None] * 4,
        }
    )
    rows = ab_rows(
        served,
        metric="rmse",
        min_improvement=1.0,
        min_labeled=2,
        window_start=None,
        window_end=None,
        task="regression",
    )
    got = {(r.subject, r.metric): r.value for r in rows}
    assert (got[("champion v1", "rmse")], got[("challenger v2", "rmse")]) == (4.0, 1.0)
    assert ("champion v1", "roc_auc") not in got
    lift = rows[-1]
    assert (lift.metric, lift.value, lift.alert) == ("rmse_lift", 3.0, True)
