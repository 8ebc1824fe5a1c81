"""Monitoring checks as pure functions: result rows, DQ pass rates, metrics, the A/B report.

Each check returns :class:`MetricRow` objects: one row of ``meta.model_monitoring`` without
the run's own columns (when, run id, model), which the job adds.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from lakehouse.pipelines.monitoring.stats import FeatureDrift

METRIC_NAMES = ("roc_auc", "accuracy", "precision", "recall", "f1")


@dataclass(frozen=True)
class MetricRow:
    """One monitored value (see the ``meta.model_monitoring`` table)."""

    kind: str  # drift | quality | performance | ab
    subject: str
    metric: str
    value: float | None
    threshold: float | None = None
    alert: bool = False
    model_version: str | None = None
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    reference_rows: int | None = None
    current_rows: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def details_json(self) -> str:
        return json.dumps(self.details, sort_keys=True, default=str, allow_nan=False)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def drift_rows(
    drifts: Sequence[FeatureDrift],
    *,
    model_version: str,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    source: str,
    reference: str = "training",
) -> list[MetricRow]:
    """Two rows per feature (``psi`` and ``ks_pvalue``/``chi2_pvalue``), both with its alert.

    ``source`` names the current window (gold or served), ``reference`` what it is compared
    with (see ``drift.reference``); both go into the rows' details.
    """
    out = []
    for d in drifts:
        details = {
            "source": source,
            "reference": reference,
            "feature_kind": d.kind,
            "test": d.test,
            "statistic": _finite(d.statistic),
            "reason": d.reason,
            "bins": d.bins,
        }
        psi_row = MetricRow(
            kind="drift",
            subject=d.feature,
            metric="psi",
            value=_finite(d.psi),
            threshold=d.psi_threshold,
            alert=d.alert,
            model_version=model_version,
            window_start=window_start,
            window_end=window_end,
            reference_rows=d.reference_rows,
            current_rows=d.current_rows,
            details=details,
            message=f"drift of {d.feature}: {d.reason}",
        )
        out.append(psi_row)
        out.append(
            replace(
                psi_row,
                metric=d.pvalue_metric,
                value=_finite(d.pvalue),
                threshold=d.alpha,
                details={
                    "source": source,
                    "reference": reference,
                    "test": d.test,
                    "statistic": _finite(d.statistic),
                },
            )
        )
    return out


def quality_rows(
    results: pd.DataFrame,
    *,
    min_pass_rate: float,
    table_thresholds: dict[str, float] | None = None,
    only_listed: bool = False,
    model_version: str | None = None,
) -> list[MetricRow]:
    """Pass rate per rule of each table's latest run (by ``evaluated_at``) vs its minimum.

    ``results`` has the DQ results table's columns (run_id, table, rule, expectation,
    action, evaluated, failed, pass_rate, outcome, evaluated_at).
    """
    thresholds = table_thresholds or {}
    if results.empty:
        return []
    latest_run = (
        results.sort_values(["evaluated_at", "run_id"]).groupby("table", sort=True).tail(1)
    )[["table", "run_id"]]
    latest = results.merge(latest_run, on=["table", "run_id"])
    out = []
    for r in latest.sort_values(["table", "rule"]).itertuples(index=False):
        table = str(r.table)
        if only_listed and table not in thresholds:
            continue
        threshold = thresholds.get(table, min_pass_rate)
        rate = float(r.pass_rate)
        alert = rate < threshold
        at = pd.Timestamp(r.evaluated_at).to_pydatetime()
        out.append(
            MetricRow(
                kind="quality",
                subject=f"{table}:{r.rule}",
                metric="pass_rate",
                value=rate,
                threshold=threshold,
                alert=alert,
                model_version=model_version,
                window_start=at,
                window_end=at,
                current_rows=int(r.evaluated),
                details={
                    "run_id": str(r.run_id),
                    "expectation": str(r.expectation),
                    "action": str(r.action),
                    "failed": int(r.failed),
                    "outcome": str(r.outcome),
                },
                message=(
                    f"data quality of {table} rule {r.rule}: pass rate {rate:.4%} "
                    f"{'<' if alert else '>='} {threshold:.4%}"
                ),
            )
        )
    return out


def classification_metrics(
    label: Iterable[int], prediction: Iterable[int], probability: Iterable[float]
) -> dict[str, float]:
    """ROC AUC (NaN with one class), accuracy, precision, recall and F1 of labelled rows."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = pd.Series(list(label), dtype="int64")
    p = pd.Series(list(prediction), dtype="int64")
    q = pd.Series(list(probability), dtype="float64")
    if y.empty:
        return {name: float("nan") for name in METRIC_NAMES}
    return {
        "roc_auc": float(roc_auc_score(y, q)) if y.nunique() > 1 else float("nan"),
        "accuracy": float(accuracy_score(y, p)),
        "precision": float(precision_score(y, p, zero_division=0)),
        "recall": float(recall_score(y, p, zero_division=0)),
        "f1": float(f1_score(y, p, zero_division=0)),
    }


def metric_floor(
    metric: str,
    minimums: dict[str, float],
    max_drop: dict[str, float],
    training: dict[str, float],
) -> tuple[float | None, str]:
    """The lowest acceptable value of ``metric`` and how it was set (minimum or drop)."""
    candidates = []
    if metric in minimums:
        candidates.append((minimums[metric], f"minimum {minimums[metric]}"))
    if metric in max_drop and metric in training and not math.isnan(training[metric]):
        floor = training[metric] - max_drop[metric]
        candidates.append((floor, f"training {training[metric]:.4f} - max drop {max_drop[metric]}"))
    if not candidates:
        return None, ""
    return max(candidates)


def performance_rows(
    labelled: pd.DataFrame,
    *,
    subject: str,
    model_version: str,
    metrics: Sequence[str],
    minimums: dict[str, float],
    max_drop: dict[str, float],
    training: dict[str, float],
    min_labeled: int,
    scored_rows: int,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    details: dict[str, Any] | None = None,
) -> list[MetricRow]:
    """Metrics of one scoring run's labelled predictions (label, prediction, probability).

    A metric alerts when it is below its floor (:func:`metric_floor`) and at least
    ``min_labeled`` predictions have labels.
    """
    values = classification_metrics(
        labelled["label"], labelled["prediction"], labelled["probability"]
    )
    n = len(labelled)
    positives = int(labelled["label"].sum()) if n else 0
    out = [
        MetricRow(
            kind="performance",
            subject=subject,
            metric="labeled_rows",
            value=float(n),
            model_version=model_version,
            window_start=window_start,
            window_end=window_end,
            current_rows=scored_rows,
            details={**(details or {}), "positives": positives},
        )
    ]
    for metric in metrics:
        value = _finite(values[metric])
        floor, how = metric_floor(metric, minimums, max_drop, training)
        enough = n >= min_labeled
        alert = bool(floor is not None and value is not None and enough and value < floor)
        out.append(
            MetricRow(
                kind="performance",
                subject=subject,
                metric=metric,
                value=value,
                threshold=floor,
                alert=alert,
                model_version=model_version,
                window_start=window_start,
                window_end=window_end,
                current_rows=n,
                details={
                    **(details or {}),
                    "training": _finite(training.get(metric)),
                    "floor": how,
                    **({} if enough else {"note": f"{n} labelled rows < {min_labeled}"}),
                },
                message=(
                    f"{metric} of {subject} (v{model_version}) {value:.4f} < {floor:.4f} ({how})"
                    if alert and value is not None and floor is not None
                    else ""
                ),
            )
        )
    return out


def _served_version_rows(
    group: pd.DataFrame,
    alias: str,
    version: str,
    values: dict[str, float],
    labelled_rows: int,
    total: int,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
) -> list[MetricRow]:
    """One served (alias, version)'s requests, records, share, labelled rows and metrics."""
    base = MetricRow(
        kind="ab",
        subject=f"{alias} v{version}",
        metric="records",
        value=float(len(group)),
        model_version=version,
        window_start=window_start,
        window_end=window_end,
        current_rows=len(group),
        details={"alias": alias},
    )
    return [
        replace(base, metric="requests", value=float(group["request_id"].nunique())),
        base,
        replace(base, metric="share", value=len(group) / total),
        replace(base, metric="labeled_rows", value=float(labelled_rows)),
        *(replace(base, metric=m, value=_finite(values[m])) for m in METRIC_NAMES),
    ]


# an alias's most-labelled version: (version, metrics, labelled rows)
_AliasScores = tuple[str, dict[str, float], int]


def ab_rows(
    served: pd.DataFrame,
    *,
    metric: str,
    min_improvement: float,
    min_labeled: int,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
) -> list[MetricRow]:
    """Per served (alias, version): requests, records, share, labelled rows and metrics.

    ``served`` has request_id, alias, model_version, prediction, probability and ``label``
    (NaN where no label arrived). A last row compares challenger with champion on
    ``metric`` (over labelled rows); it alerts when the challenger leads by at least
    ``min_improvement`` with ``min_labeled`` labelled rows on both sides.
    """
    if served.empty:
        return []
    total = len(served)
    out: list[MetricRow] = []
    by_alias: dict[str, _AliasScores] = {}
    for (alias, version), group in served.groupby(["alias", "model_version"], sort=True):
        labelled = group[group["label"].notna()]
        values = classification_metrics(
            labelled["label"].astype(int), labelled["prediction"], labelled["probability"]
        )
        n = len(labelled)
        out.extend(
            _served_version_rows(
                group, str(alias), str(version), values, n, total, window_start, window_end
            )
        )
        if str(alias) in ("champion", "challenger"):
            previous = by_alias.get(str(alias))
            if previous is None or n > previous[2]:
                by_alias[str(alias)] = (str(version), values, n)
    if "champion" in by_alias and "challenger" in by_alias:
        out.append(
            _lift_row(
                by_alias["champion"],
                by_alias["challenger"],
                metric=metric,
                min_improvement=min_improvement,
                min_labeled=min_labeled,
                window_start=window_start,
                window_end=window_end,
                total=total,
            )
        )
    return out


def _lift_row(
    champion: _AliasScores,
    challenger: _AliasScores,
    *,
    metric: str,
    min_improvement: float,
    min_labeled: int,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    total: int,
) -> MetricRow:
    """The challenger's lead over the champion on ``metric``; alerts when it is enough."""
    champ_v, champ, champ_n = champion
    chall_v, chall, chall_n = challenger
    lift = _finite(chall[metric] - champ[metric])
    enough = min(champ_n, chall_n) >= min_labeled
    alert = bool(lift is not None and enough and lift >= min_improvement)
    return MetricRow(
        kind="ab",
        subject="challenger vs champion",
        metric=f"{metric}_lift",
        value=lift,
        threshold=min_improvement,
        alert=alert,
        model_version=chall_v,
        window_start=window_start,
        window_end=window_end,
        current_rows=total,
        details={
            "champion_version": champ_v,
            "challenger_version": chall_v,
            "champion": _finite(champ[metric]),
            "challenger": _finite(chall[metric]),
            "labeled": {"champion": champ_n, "challenger": chall_n},
        },
        message=(
            f"A/B: challenger v{chall_v} {metric} {chall[metric]:.4f} leads champion "
            f"v{champ_v} {champ[metric]:.4f} by {lift:.4f} >= {min_improvement}: "
            "consider promoting"
            if alert and lift is not None
            else ""
        ),
    )
