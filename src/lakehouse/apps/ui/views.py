"""Pure data shaping for the UI pages: plain values in, small view dataclasses out.

Nothing here touches Spark, MLflow or HTTP, so every page's content is testable on its own;
:mod:`lakehouse.apps.ui.sources` does the I/O and :mod:`lakehouse.apps.ui.app` the HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakehouse.pipelines.ml.registry import CHAMPION, VersionInfo, metric_columns

PROMOTION_TAG = "lakehouse.promotion"

# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class VersionRow:
    """One registered model version as the models page shows it."""

    version: str
    aliases: tuple[str, ...]
    created: str  # "YYYY-MM-DD HH:MM UTC"
    metrics: tuple[tuple[str, str], ...]  # (metric, formatted value or "-") in metric_columns order
    promotion: str
    run_id: str

    @property
    def is_champion(self) -> bool:
        return CHAMPION in self.aliases


def version_rows(
    versions: Iterable[VersionInfo], metric_names: Sequence[str] | None = None
) -> list[VersionRow]:
    """Versions newest first, with formatted holdout metrics and the promotion reason.

    The metrics shown default to those of the versions' kind (see ``metric_columns``).
    """
    out = []
    versions = list(versions)
    if metric_names is None:
        metric_names = metric_columns([v.metrics for v in versions])
    for v in sorted(versions, key=lambda i: -int(i.version)):
        created = dt.datetime.fromtimestamp(v.created / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        out.append(
            VersionRow(
                version=v.version,
                aliases=tuple(sorted(v.aliases)),
                created=created,
                metrics=tuple(
                    (m, f"{v.metrics[m]:.3f}" if m in v.metrics else "-") for m in metric_names
                ),
                promotion=v.tags.get(PROMOTION_TAG, ""),
                run_id=v.run_id,
            )
        )
    return out


def champion_of(rows: Iterable[VersionRow]) -> VersionRow | None:
    return next((r for r in rows if r.is_champion), None)


# ---------------------------------------------------------------- prediction form


@dataclass(frozen=True)
class FormField:
    """One input of the prediction form, from the serving API's input schema."""

    name: str
    kind: str  # "number" | "string"
    required: bool
    value: str = ""
    error: str | None = None


def form_fields(
    inputs: Sequence[Mapping[str, Any]],
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[FormField]:
    """The form's fields from ``GET /model``'s ``inputs`` (name, type, required)."""
    values = values or {}
    errors = errors or {}
    return [
        FormField(
            name=str(i["name"]),
            kind="number" if i.get("type") == "number" else "string",
            required=bool(i.get("required", True)),
            value=values.get(str(i["name"]), ""),
            error=errors.get(str(i["name"])),
        )
        for i in inputs
    ]


def parse_record(
    inputs: Sequence[Mapping[str, Any]], form: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A request record from the submitted form, and errors per field.

    Numbers become floats; an empty optional field becomes ``None`` (the API's null); an
    empty required field or a non-number is an error.
    """
    record: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in form_fields(inputs):
        raw = form.get(spec.name, "").strip()
        if not raw:
            if spec.required:
                errors[spec.name] = "required"
            else:
                record[spec.name] = None
            continue
        if spec.kind == "number":
            try:
                number = float(raw)
            except ValueError:
                errors[spec.name] = f"{raw!r} is not a number"
                continue
            if not math.isfinite(number):
                errors[spec.name] = f"{raw!r} is not a finite number"
                continue
            record[spec.name] = number
        else:
            record[spec.name] = raw
    return record, errors


@dataclass(frozen=True)
class PredictionView:
    prediction: int | float
    probability: str | None  # formatted, 4 decimals; None for a regression model
    model_name: str
    model_version: str
    alias: str
    request_id: str
    probability_label: str = "probability (class 1)"
    probabilities: tuple[tuple[str, str], ...] = ()  # multiclass: (class, formatted), best first


def prediction_view(response: Mapping[str, Any]) -> PredictionView:
    """The first prediction of a ``POST /predict`` response, by the model's kind: the class
    and the class-1 probability (binary), the class, its probability and every class's
    (multiclass), or the number (regression)."""
    first = response["predictions"][0]
    probability = first.get("probability")
    probabilities = first.get("probabilities") or {}
    value = first["prediction"]
    return PredictionView(
        prediction=int(value) if probability is not None else float(value),
        probability=None if probability is None else f"{float(probability):.4f}",
        model_name=str(response["model_name"]),
        model_version=str(response["model_version"]),
        alias=str(response["alias"]),
        request_id=str(response["request_id"]),
        probability_label=(
            "probability (predicted class)" if probabilities else "probability (class 1)"
        ),
        probabilities=tuple(
            (str(c), f"{float(q):.4f}")
            for c, q in sorted(probabilities.items(), key=lambda item: -float(item[1]))
        ),
    )


def api_errors(detail: Any) -> list[str]:
    """FastAPI's 422 ``detail`` (or any error body) as readable lines."""
    if isinstance(detail, list):
        out = []
        for item in detail:
            if isinstance(item, Mapping):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                out.append(f"{where}: {item.get('msg', item)}" if where else str(item.get("msg")))
            else:
                out.append(str(item))
        return out
    return [str(detail)]


# ---------------------------------------------------------------- data quality


@dataclass(frozen=True)
class DqRule:
    rule: str
    expectation: str
    action: str
    evaluated: int
    failed: int
    pass_rate: float
    outcome: str

    @property
    def pass_rate_text(self) -> str:
        return f"{self.pass_rate:.2%}"


@dataclass(frozen=True)
class DqTable:
    """The latest data-quality run of one table."""

    table: str
    run_id: str
    evaluated_at: str
    rules: tuple[DqRule, ...]

    @property
    def worst_outcome(self) -> str:
        order = ("failed", "dropped", "warned", "passed")
        outcomes = {r.outcome for r in self.rules}
        return next((o for o in order if o in outcomes), "passed")

    @property
    def min_pass_rate(self) -> float:
        return min((r.pass_rate for r in self.rules), default=1.0)


def dq_tables(rows: Iterable[Mapping[str, Any]]) -> list[DqTable]:
    """Rows of ``meta.dq_results`` -> per table, the rules of its latest run (by evaluated_at)."""
    by_run: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        by_run.setdefault((str(r["table"]), str(r["run_id"])), []).append(r)
    latest: dict[str, tuple[dt.datetime, str]] = {}
    for (table, run_id), run_rows in by_run.items():
        at = max(_ts(r["evaluated_at"]) for r in run_rows)
        if table not in latest or (at, run_id) > latest[table]:
            latest[table] = (at, run_id)
    out = []
    for table in sorted(latest):
        at, run_id = latest[table]
        rules = tuple(
            DqRule(
                rule=str(r["rule"]),
                expectation=str(r["expectation"]),
                action=str(r["action"]),
                evaluated=int(r["evaluated"]),
                failed=int(r["failed"]),
                pass_rate=float(r["pass_rate"]),
                outcome=str(r["outcome"]),
            )
            for r in sorted(by_run[(table, run_id)], key=lambda r: str(r["rule"]))
        )
        out.append(DqTable(table, run_id, _fmt_ts(at), rules))
    return out


# ---------------------------------------------------------------- monitoring


@dataclass(frozen=True)
class DriftPoint:
    at: dt.datetime
    value: float
    threshold: float | None
    alert: bool
    model_version: str


@dataclass(frozen=True)
class DriftSeries:
    """One feature's drift metric over monitoring runs, oldest first."""

    feature: str
    metric: str
    points: tuple[DriftPoint, ...]

    @property
    def latest(self) -> DriftPoint:
        return self.points[-1]

    @property
    def alerts(self) -> int:
        return sum(p.alert for p in self.points)


def drift_series(rows: Iterable[Mapping[str, Any]], metric: str = "psi") -> list[DriftSeries]:
    """Drift rows of one metric -> one series per feature (subject), features with alerts first."""
    by_feature: dict[str, list[DriftPoint]] = {}
    for r in rows:
        if r["kind"] != "drift" or r["metric"] != metric or r["value"] is None:
            continue
        by_feature.setdefault(str(r["subject"]), []).append(
            DriftPoint(
                at=_ts(r["monitored_at"]),
                value=float(r["value"]),
                threshold=None if r["threshold"] is None else float(r["threshold"]),
                alert=bool(r["alert"]),
                model_version=_text(r["model_version"]),
            )
        )
    series = [
        DriftSeries(feature, metric, tuple(sorted(points, key=lambda p: p.at)))
        for feature, points in by_feature.items()
    ]
    return sorted(series, key=lambda s: (not s.latest.alert, -s.alerts, s.feature))


@dataclass(frozen=True)
class MonitorRow:
    kind: str
    subject: str
    metric: str
    value: str
    threshold: str
    alert: bool
    model_version: str
    window: str
    rows: str
    details: str


@dataclass(frozen=True)
class MonitorRun:
    """All results of the latest monitoring run of a model."""

    run_id: str
    monitored_at: str
    results: tuple[MonitorRow, ...] = field(default_factory=tuple)

    @property
    def alerts(self) -> int:
        return sum(r.alert for r in self.results)


def latest_monitor_run(rows: Iterable[Mapping[str, Any]]) -> MonitorRun | None:
    """The rows of the most recent ``monitor_run_id`` (alerts first, then kind and subject)."""
    rows = list(rows)
    if not rows:
        return None
    last = max(rows, key=lambda r: (_ts(r["monitored_at"]), str(r["monitor_run_id"])))
    run_id = str(last["monitor_run_id"])
    mine = [r for r in rows if str(r["monitor_run_id"]) == run_id]
    results = tuple(
        MonitorRow(
            kind=str(r["kind"]),
            subject=str(r["subject"]),
            metric=str(r["metric"]),
            value=_num(r["value"]),
            threshold=_num(r["threshold"]),
            alert=bool(r["alert"]),
            model_version=_text(r["model_version"]),
            window=f"{_fmt_ts(r['window_start'])} to {_fmt_ts(r['window_end'])}",
            rows=f"{_int(r['reference_rows'])} → {_int(r['current_rows'])}",
            details=_details(r.get("details")),
        )
        for r in sorted(
            mine,
            key=lambda r: (not r["alert"], str(r["kind"]), str(r["subject"]), str(r["metric"])),
        )
    )
    return MonitorRun(run_id, _fmt_ts(last["monitored_at"]), results)


# ---------------------------------------------------------------- helpers


def _ts(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return (
            value.replace(tzinfo=None)
            if value.tzinfo is None
            else value.astimezone(dt.UTC).replace(tzinfo=None)
        )
    if isinstance(value, str):
        return _ts(dt.datetime.fromisoformat(value))
    raise TypeError(f"not a timestamp: {value!r}")


def _fmt_ts(value: Any) -> str:
    if value is None:
        return "-"
    return _ts(value).strftime("%Y-%m-%d %H:%M")


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


def _int(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def _details(raw: Any) -> str:
    """A details JSON object as ``key=value`` pairs (the raw text when it is not JSON)."""
    if not raw:
        return ""
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return str(raw)
    if isinstance(parsed, dict):
        return ", ".join(f"{k}={v}" for k, v in parsed.items())
    return json.dumps(parsed)
