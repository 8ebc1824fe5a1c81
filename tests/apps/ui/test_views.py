"""The UI's pure data shaping and its SVG chart, without Spark, MLflow or HTTP."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from lakehouse.apps.ui import charts, views
from lakehouse.pipelines.ml.registry import VersionInfo

T = dt.datetime(2026, 11, 1, 6, 0)


def test_version_rows_newest_first_with_metrics_and_reason() -> None:
    created = int(dt.datetime(2026, 11, 2, 8, 30, tzinfo=dt.UTC).timestamp() * 1000)
    rows = views.version_rows(
        [
            VersionInfo("m", "1", ["champion"], created, "r1", {"roc_auc": 0.81234}, {}),
            VersionInfo(
                "m",
                "10",
                ["challenger"],
                created,
                "r10",
                {"roc_auc": 0.8, "f1": 0.5},
                {views.PROMOTION_TAG: "below margin"},
            ),
        ],
        metric_names=("roc_auc", "f1"),
    )
    assert [r.version for r in rows] == ["10", "1"]  # numeric order, not text
    assert rows[0].metrics == (("roc_auc", "0.800"), ("f1", "0.500"))
    assert rows[1].metrics == (("roc_auc", "0.812"), ("f1", "-"))
    assert (rows[0].promotion, rows[1].promotion) == ("below margin", "")
    assert rows[1].created == "2026-11-02 08:30 UTC"
    assert views.champion_of(rows) == rows[1]
    assert views.champion_of(rows[:1]) is None


INPUTS = [
    {"name": "plan", "type": "string", "required": True},
    {"name": "tenure", "type": "number", "required": True},
    {"name": "spend", "type": "number", "required": False},
]


def test_parse_record_types_nulls_and_errors() -> None:
    assert views.parse_record(INPUTS, {"plan": " pro ", "tenure": "12", "spend": ""}) == (
        {"plan": "pro", "tenure": 12.0, "spend": None},
        {},
    )
    record, errors = views.parse_record(INPUTS, {"plan": "", "tenure": "x", "spend": "inf"})
    assert record == {}
    assert errors == {
        "plan": "required",
        "tenure": "'x' is not a number",
        "spend": "'inf' is not a finite number",
    }
    fields = views.form_fields(INPUTS, {"tenure": "x"}, errors)
    assert [(f.name, f.kind, f.required, f.value, f.error) for f in fields] == [
        ("plan", "string", True, "", "required"),
        ("tenure", "number", True, "x", "'x' is not a number"),
        ("spend", "number", False, "", "'inf' is not a finite number"),
    ]


def test_prediction_view_and_api_errors() -> None:
    view = views.prediction_view(
        {
            "predictions": [{"prediction": 1, "probability": 0.834567}],
            "model_name": "m",
            "model_version": "3",
            "alias": "champion",
            "request_id": "abc",
        }
    )
    assert (view.prediction, view.probability, view.model_version) == (1, "0.8346", "3")
    assert view.probability_label == "probability (class 1)" and view.probabilities == ()
    detail = [{"loc": ["body", "record", "tenure"], "msg": "Input should be a valid number"}]
    assert views.api_errors(detail) == ["record.tenure: Input should be a valid number"]
    assert views.api_errors("boom") == ["boom"]


def dq(
    table: str, run: str, rule: str, at: dt.datetime, rate: float, outcome: str
) -> dict[str, Any]:
    return {
        "run_id": run,
        "table": table,
        "rule": rule,
        "expectation": "e",
        "action": "warn",
        "evaluated": 100,
        "failed": round(100 * (1 - rate)),
        "pass_rate": rate,
        "outcome": outcome,
        "evaluated_at": at,
    }


def test_dq_tables_keep_each_tables_latest_run() -> None:
    later = T + dt.timedelta(hours=1)
    rows = [
        dq("s.orders", "r1", "a", T, 0.5, "failed"),
        dq("s.orders", "r2", "b", later, 0.99, "warned"),
        dq("s.orders", "r2", "a", later, 1.0, "passed"),
        dq("s.customers", "r1", "x", T, 1.0, "passed"),
    ]
    tables = views.dq_tables(rows)
    assert [(t.table, t.run_id, [r.rule for r in t.rules]) for t in tables] == [
        ("s.customers", "r1", ["x"]),
        ("s.orders", "r2", ["a", "b"]),
    ]
    assert (tables[1].worst_outcome, tables[1].min_pass_rate) == ("warned", 0.99)
    assert tables[1].rules[1].pass_rate_text == "99.00%"
    assert tables[1].evaluated_at == "2026-11-01 07:00"
    assert views.dq_tables([]) == []


def mon(
    day: int, kind: str, subject: str, metric: str, value: float | None, alert: bool
) -> dict[str, Any]:
    at = T + dt.timedelta(days=day)
    return {
        "monitored_at": at,
        "monitor_run_id": f"run-{day}",
        "model_name": "m",
        "model_version": None if kind == "quality" else "2",
        "kind": kind,
        "subject": subject,
        "metric": metric,
        "value": value,
        "threshold": 0.2,
        "alert": alert,
        "window_start": at - dt.timedelta(days=7),
        "window_end": at,
        "reference_rows": 500,
        "current_rows": None,
        "details": json.dumps({"bins": 10}),
    }


MONITORING = [
    mon(1, "drift", "b", "psi", 0.3, True),
    mon(0, "drift", "b", "psi", 0.1, False),
    mon(0, "drift", "a", "psi", 0.05, False),
    mon(1, "drift", "a", "psi", 0.06, False),
    mon(1, "drift", "a", "ks_pvalue", 0.5, False),
    mon(1, "quality", "rule", "pass_rate", 0.97, False),
    mon(1, "drift", "c", "psi", None, False),  # not measurable: no point
]


def test_drift_series_per_feature_oldest_first_alerts_first() -> None:
    series = views.drift_series(MONITORING)
    assert [(s.feature, [p.value for p in s.points]) for s in series] == [
        ("b", [0.1, 0.3]),
        ("a", [0.05, 0.06]),
    ]
    assert (series[0].latest.alert, series[0].alerts, series[1].alerts) == (True, 1, 0)
    assert [s.feature for s in views.drift_series(MONITORING, "ks_pvalue")] == ["a"]


def test_latest_monitor_run_lists_its_rows_alerts_first() -> None:
    run = views.latest_monitor_run(MONITORING)
    assert run is not None
    assert (run.run_id, run.monitored_at, run.alerts) == ("run-1", "2026-11-02 06:00", 1)
    assert [(r.kind, r.subject, r.metric, r.value) for r in run.results] == [
        ("drift", "b", "psi", "0.3"),
        ("drift", "a", "ks_pvalue", "0.5"),
        ("drift", "a", "psi", "0.06"),
        ("drift", "c", "psi", "-"),
        ("quality", "rule", "pass_rate", "0.97"),
    ]
    quality = run.results[-1]
    assert (quality.model_version, quality.rows, quality.details) == ("-", "500 → -", "bins=10")
    assert quality.window == "2026-10-26 06:00 to 2026-11-02 06:00"
    assert views.latest_monitor_run([]) is None


def test_drift_chart_is_inline_svg_with_red_alert_points() -> None:
    alerting, quiet = views.drift_series(MONITORING)
    svg = charts.drift_chart_svg(alerting)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "<metadata>" not in svg and "http://purl" not in svg
    assert ">b<" in svg and "threshold 0.2" in svg  # text stays text
    assert charts.ALERT in svg
    assert charts.ALERT not in charts.drift_chart_svg(quiet)
    ids = set(re.findall(r'id="([^"]+)"', svg))
    assert not ids & set(re.findall(r'id="([^"]+)"', charts.drift_chart_svg(quiet)))


def test_prediction_view_of_a_multiclass_and_a_regression_model() -> None:
    meta = {"model_name": "m", "model_version": "2", "alias": "champion", "request_id": "r"}
    multi = views.prediction_view(
        {
            "predictions": [
                {
                    "prediction": 2,
                    "probability": 0.7,
                    "probabilities": {"0": 0.1, "1": 0.2, "2": 0.7},
                }
            ],
            **meta,
        }
    )
    assert (multi.prediction, multi.probability, multi.probability_label) == (
        2,
        "0.7000",
        "probability (predicted class)",
    )
    assert multi.probabilities == (("2", "0.7000"), ("1", "0.2000"), ("0", "0.1000"))
    regression = views.prediction_view({"predictions": [{"prediction": 151.25}], **meta})
    assert (regression.prediction, regression.probability, regression.probabilities) == (
        151.25,
        None,
        (),
    )


def test_version_rows_list_the_metrics_of_the_model_kind() -> None:
    regression = VersionInfo("m", "1", [], 0, "r1", {"rmse": 52.5, "mae": 41.0, "r2": 0.5}, {})
    rows = views.version_rows([regression])
    assert rows[0].metrics == (("rmse", "52.500"), ("mae", "41.000"), ("r2", "0.500"))
    classifier = VersionInfo("m", "1", [], 0, "r1", {"roc_auc": 0.9}, {})
    assert [m for m, _ in views.version_rows([classifier])[0].metrics] == [
        "roc_auc",
        "f1",
        "accuracy",
        "precision",
        "recall",
    ]
