"""Monitoring checks as pure functions: result rows, DQ pass rates, metrics, the A/B report.

Each check returns :class:`MetricRow` objects: one row of ``meta.model_monitoring`` without
the run's own columns (when, run id, model), which the job adds.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lakehouse.config.ml import MONITORED_BY_TASK
from lakehouse.pipelines.ml.kinds import (
    ModelKind,
    evaluation_metrics,
    improvement,
    lower_is_better,
    probability_matrix,
    worse_than,
)
from lakehouse.pipelines.monitoring.stats import FeatureDrift

METRIC_NAMES = MONITORED_BY_TASK["classification"]


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


def labelled_metrics(kind: ModelKind, labelled: pd.DataFrame) -> dict[str, float]:
    """The metrics of ``kind`` for labelled predictions: ``label`` and ``prediction``, plus
    ``probability`` (binary) or ``probabilities`` (multiclass, a map per row)."""
    if kind == "regression":
        return evaluation_metrics(
            kind, labelled["label"].astype("float64"), labelled["prediction"].astype("float64")
        )
    y = labelled["label"].astype("int64").to_numpy()
    p = labelled["prediction"].astype("int64").to_numpy()
    if kind == "multiclass":
        classes, matrix = probability_matrix(list(labelled["probabilities"]))
        return evaluation_metrics(kind, y, p, matrix, classes)
    return evaluation_metrics(kind, y, p, labelled["probability"].astype("float64").to_numpy())


def prediction_kind(task: str, frame: pd.DataFrame) -> ModelKind:
    """The kind of the model behind these predictions: regression by task, else multiclass
    when they carry per-class probabilities."""
    if task == "regression":
        return "regression"
    if "probabilities" in frame.columns and frame["probabilities"].notna().any():
        return "multiclass"
    return "binary"


def metric_floor(
    metric: str,
    minimums: dict[str, float],
    max_drop: dict[str, float],
    training: dict[str, float],
) -> tuple[float | None, str]:
    """The worst acceptable value of ``metric`` and how it was set (limit or drop).

    For most metrics a floor: the higher of the minimum and the training value less
    ``max_drop``. For rmse and mae (lower is better) a ceiling: the lower of the maximum
    and the training value plus ``max_drop``.
    """
    lower = lower_is_better(metric)
    candidates = []
    if metric in minimums:
        word = "maximum" if lower else "minimum"
        candidates.append((minimums[metric], f"{word} {minimums[metric]}"))
    if metric in max_drop and metric in training and not math.isnan(training[metric]):
        if lower:
            bound = training[metric] + max_drop[metric]
            how = f"training {training[metric]:.4f} + max rise {max_drop[metric]}"
        else:
            bound = training[metric] - max_drop[metric]
            how = f"training {training[metric]:.4f} - max drop {max_drop[metric]}"
        candidates.append((bound, how))
    if not candidates:
        return None, ""
    return min(candidates) if lower else max(candidates)


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
    kind: ModelKind = "binary",
) -> list[MetricRow]:
    """Metrics of one scoring run's labelled predictions (label, prediction and the
    probabilities of ``kind``, see :func:`labelled_metrics`).

    A metric alerts when it is worse than its bound (:func:`metric_floor`) and at least
    ``min_labeled`` predictions have labels.
    """
    values = labelled_metrics(kind, labelled)
    n = len(labelled)
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
            details={**(details or {}), **_label_summary(kind, labelled["label"])},
        )
    ]
    for metric in metrics:
        value = _finite(values[metric])
        floor, how = metric_floor(metric, minimums, max_drop, training)
        enough = n >= min_labeled
        alert = bool(
            floor is not None and value is not None and enough and worse_than(metric, value, floor)
        )
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
                    f"{metric} of {subject} (v{model_version}) {value:.4f} "
                    f"{'>' if lower_is_better(metric) else '<'} {floor:.4f} ({how})"
                    if alert and value is not None and floor is not None
                    else ""
                ),
            )
        )
    return out


def _label_summary(kind: ModelKind, label: pd.Series) -> dict[str, Any]:
    """What the labelled rows hold: positives (binary), rows per class, or the mean."""
    if label.empty:
        return {"positives": 0} if kind == "binary" else {}
    if kind == "binary":
        return {"positives": int(label.sum())}
    if kind == "multiclass":
        counts = label.astype("int64").value_counts().sort_index()
        return {"classes": {str(k): int(v) for k, v in counts.items()}}
    return {"label_mean": float(np.mean(label.astype("float64")))}


def _served_version_rows(
    group: pd.DataFrame,
    alias: str,
    version: str,
    values: dict[str, float],
    labelled_rows: int,
    total: int,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    metrics: Sequence[str] = METRIC_NAMES,
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
        *(replace(base, metric=m, value=_finite(values[m])) for m in metrics),
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
    task: str = "classification",
) -> list[MetricRow]:
    """Per served (alias, version): requests, records, share, labelled rows and metrics.

    ``served`` has request_id, alias, model_version, prediction, probability (and for a
    multiclass model probabilities) and ``label`` (NaN where no label arrived). A last row
    compares challenger with champion on ``metric`` (over labelled rows); it alerts when the
    challenger leads (scores higher, or lower for rmse and mae) by at least
    ``min_improvement`` with ``min_labeled`` labelled rows on both sides.
    """
    if served.empty:
        return []
    total = len(served)
    out: list[MetricRow] = []
    by_alias: dict[str, _AliasScores] = {}
    for (alias, version), group in served.groupby(["alias", "model_version"], sort=True):
        labelled = group[group["label"].notna()]
        kind = prediction_kind(task, group)
        values = labelled_metrics(kind, labelled)
        n = len(labelled)
        out.extend(
            _served_version_rows(
                group,
                str(alias),
                str(version),
                values,
                n,
                total,
                window_start,
                window_end,
                MONITORED_BY_TASK["regression" if kind == "regression" else "classification"],
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
    lift = _finite(improvement(metric, chall[metric], champ[metric]))
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
