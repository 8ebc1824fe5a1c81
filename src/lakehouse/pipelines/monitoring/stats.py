"""Drift statistics per feature: PSI on reference quantile bins, KS and chi-square tests.

Pure functions on numpy / pandas values (no Spark): the monitoring job collects the
reference and current values of one feature and calls :func:`feature_drift`.

Alerting needs both a large change and a significant one: a feature alerts when its PSI
exceeds the threshold (the size of the shift, independent of sample size) AND the test's
p-value is below ``alpha`` divided by the number of features tested (Bonferroni), so an
unshifted sample of any size raises nothing (PSI stays small on big samples, p-values stay
large on small ones) and testing many features does not make a false alarm likely.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

MISSING = "__missing__"
OTHER = "__other__"


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates removed, for ties)."""
    if reference.size == 0:
        return np.array([], dtype="float64")
    inner = np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(inner)


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    positions = np.searchsorted(edges, values, side="left")
    return np.bincount(positions, minlength=edges.size + 1)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = 1e-4) -> float:
    """Population stability index of two count vectors over the same bins.

    ``sum((c - r) * ln(c / r))`` over the bins' shares, an empty bin counting as ``epsilon``.
    """
    ref = np.asarray(reference_counts, dtype="float64")
    cur = np.asarray(current_counts, dtype="float64")
    if ref.sum() == 0 or cur.sum() == 0:
        return float("nan")
    r = np.clip(ref / ref.sum(), epsilon, None)
    c = np.clip(cur / cur.sum(), epsilon, None)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_bins(
    reference: pd.Series, current: pd.Series, bins: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reference and current counts over reference-quantile bins, plus a missing bin if any."""
    ref = pd.to_numeric(reference, errors="coerce").astype("float64")
    cur = pd.to_numeric(current, errors="coerce").astype("float64")
    ref_values, cur_values = ref.dropna().to_numpy(), cur.dropna().to_numpy()
    edges = quantile_edges(ref_values, bins)
    ref_counts = bin_counts(ref_values, edges)
    cur_counts = bin_counts(cur_values, edges)
    labels = [f"<= {edges[0]:.6g}"] if edges.size else ["all"]
    labels += [f"({a:.6g}, {b:.6g}]" for a, b in itertools.pairwise(edges)]
    if edges.size:
        labels.append(f"> {edges[-1]:.6g}")
    ref_missing, cur_missing = int(ref.isna().sum()), int(cur.isna().sum())
    if ref_missing or cur_missing:
        ref_counts = np.append(ref_counts, ref_missing)
        cur_counts = np.append(cur_counts, cur_missing)
        labels.append(MISSING)
    return ref_counts, cur_counts, labels


def categorical_bins(
    reference: pd.Series, current: pd.Series
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts per reference category; unseen current values go to ``__other__``."""
    ref = reference.astype(object).where(reference.notna(), MISSING).astype(str)
    cur = current.astype(object).where(current.notna(), MISSING).astype(str)
    categories = sorted(set(ref))
    cur = cur.where(cur.isin(categories), OTHER)
    if (cur == OTHER).any():
        categories.append(OTHER)
    ref_counts = ref.value_counts().reindex(categories, fill_value=0).to_numpy()
    cur_counts = cur.value_counts().reindex(categories, fill_value=0).to_numpy()
    return ref_counts, cur_counts, categories


def ks_test(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value of the non-missing values."""
    ref = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype="float64")
    cur = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype="float64")
    if ref.size == 0 or cur.size == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def chi2_test(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors (categories empty on both dropped)."""
    table = np.vstack([reference_counts, current_counts]).astype("float64")
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature alerts (see the module docstring)."""

    psi_threshold: float = 0.2
    alpha: float = 0.05
    bonferroni: bool = True
    min_rows: int = 100
    bins: int = 10
    epsilon: float = 1e-4

    def alpha_for(self, features_tested: int) -> float:
        """The per-feature significance level."""
        return self.alpha / max(features_tested, 1) if self.bonferroni else self.alpha


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift statistics and the alert decision."""

    feature: str
    kind: str  # numeric | categorical
    psi: float
    test: str  # ks | chi2
    statistic: float
    pvalue: float
    alpha: float
    psi_threshold: float
    alert: bool
    reference_rows: int
    current_rows: int
    reason: str
    bins: dict[str, Any] = field(default_factory=dict)

    @property
    def pvalue_metric(self) -> str:
        return f"{self.test}_pvalue"


def feature_drift(
    feature: str,
    reference: pd.Series,
    current: pd.Series,
    *,
    categorical: bool,
    thresholds: DriftThresholds,
    features_tested: int,
) -> FeatureDrift:
    """PSI plus KS (numbers) or chi-square (categories) for one feature, with the decision."""
    if categorical:
        ref_counts, cur_counts, labels = categorical_bins(reference, current)
        statistic, pvalue = chi2_test(ref_counts, cur_counts)
        test = "chi2"
    else:
        ref_counts, cur_counts, labels = numeric_bins(reference, current, thresholds.bins)
        statistic, pvalue = ks_test(reference, current)
        test = "ks"
    value = psi(ref_counts, cur_counts, thresholds.epsilon)
    alpha = thresholds.alpha_for(features_tested)
    n_cur = len(current)
    significant = math.isnan(pvalue) or pvalue < alpha  # no test possible: PSI decides
    if n_cur < thresholds.min_rows:
        alert, reason = False, f"{n_cur} current rows < min_rows {thresholds.min_rows}"
    elif math.isnan(value):
        alert, reason = False, "no values to compare"
    elif value > thresholds.psi_threshold and significant:
        alert = True
        reason = (
            f"PSI {value:.4f} > {thresholds.psi_threshold} and {test} p {pvalue:.3g} < {alpha:.3g}"
        )
    else:
        alert = False
        reason = (
            f"PSI {value:.4f} <= {thresholds.psi_threshold}"
            if value <= thresholds.psi_threshold
            else f"{test} p {pvalue:.3g} >= {alpha:.3g}"
        )
    return FeatureDrift(
        feature=feature,
        kind="categorical" if categorical else "numeric",
        psi=value,
        test=test,
        statistic=statistic,
        pvalue=pvalue,
        alpha=alpha,
        psi_threshold=thresholds.psi_threshold,
        alert=alert,
        reference_rows=len(reference),
        current_rows=n_cur,
        reason=reason,
        bins={
            "labels": labels,
            "reference": [int(x) for x in ref_counts],
            "current": [int(x) for x in cur_counts],
        },
    )


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    thresholds: DriftThresholds,
) -> list[FeatureDrift]:
    """:func:`feature_drift` for every feature (Bonferroni over ``len(features)``)."""
    return [
        feature_drift(
            f,
            reference[f],
            current[f],
            categorical=f in categorical,
            thresholds=thresholds,
            features_tested=len(features),
        )
        for f in features
    ]
