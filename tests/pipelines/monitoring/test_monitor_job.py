"""The monitoring job on the demo project with a real MLflow registry, Delta tables and HTTP.

Served predictions are landed with the serving API's own prediction log, ingested by the
Bronze file source and monitored through ``monitor_model``: a window of rows drawn from the
scoring snapshot (the latest feature row per customer, what scoring and serving clients
read) raises no drift alert against the default reference (that snapshot at the versions
the champion was trained on); a window where only ``total_spend`` is shifted raises exactly
that feature's alert. The A/B and performance numbers are checked against values computed
here from the labels.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from sklearn.metrics import accuracy_score, roc_auc_score

from lakehouse.apps.serving.predictions import PredictionLog
from lakehouse.bundle.context import TaskContext
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.ml.score import latest_rows, score_model
from lakehouse.pipelines.ml.training_set import build_training_set
from lakehouse.pipelines.monitoring.monitor import MonitorResult, monitor_model, monitor_models
from tests.apps.serving.conftest import CATEGORICAL, MODEL, Registry, registry  # noqa: F401
from tests.pipelines.ml.conftest import _context, churn_project  # noqa: F401  (fixture)

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
SHIFTED = "total_spend"
BASE = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).replace(
    tzinfo=None, minute=0, second=0, microsecond=0
)


class Hook:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture(scope="module")
def hook() -> Iterator[Hook]:
    h = Hook()
    h.thread.start()
    yield h
    h.server.shutdown()
    h.server.server_close()


def _records(
    frame: pd.DataFrame, features: list[str], ts: dt.datetime, alias: str, version: str, right: bool
) -> list[dict[str, Any]]:
    """Prediction-log lines for ``frame`` (10 records per request); right: prediction = label."""
    out = []
    stamp = ts.isoformat(timespec="milliseconds") + "Z"
    for i, (_, row) in enumerate(frame.iterrows()):
        label = int(row["churned"])
        predicted = label if right else 1 - label
        out.append(
            {
                "request_id": f"{alias}-{ts:%Y%m%d}-{i // 10}",
                "record_index": i % 10,
                "ts": stamp,
                "model_name": "churn_model",
                "model_version": version,
                "alias": alias,
                "keys": {"customer_id": row["customer_id"]},
                "features": {
                    f: (
                        None
                        if pd.isna(row[f])
                        else (str(row[f]) if f in CATEGORICAL else float(row[f]))
                    )
                    for f in features
                },
                "prediction": predicted,
                "probability": 0.1 + 0.8 * predicted,
            }
        )
    return out


class Monitored:
    """The project with served predictions landed and ingested, and the training frame."""

    def __init__(self, spark: SparkSession, registry: Registry, hook: Hook) -> None:  # noqa: F811
        self.spark = spark
        self.root = registry.project.root
        self.overrides = {
            "data_root": str(registry.project.data_root),
            "mlflow_tracking_uri": str(registry.project.variables["mlflow_tracking_uri"]),
            "monitoring_webhook_url": hook.url,
        }
        ctx = self.context()
        spec = ctx.project.models[MODEL]
        self.features = spec.features
        model = ctx.project.model_handle(MODEL)
        training = build_training_set(ctx.tables, model).frame.toPandas()
        self.training = training.sort_values("customer_id").reset_index(drop=True)
        score_model(ctx, MODEL)
        # what a serving client sends: the latest feature row per customer (+ its label)
        scoring = model.scoring
        assert scoring is not None
        features = ctx.tables.read(scoring.input.table)
        self.feature_version = ctx.tables.version(scoring.input.table)
        latest = latest_rows(features, ["customer_id"], scoring.input.timestamp_key)
        snapshot = latest.select("customer_id", *self.features).toPandas()
        snapshot = snapshot.merge(self.training[["customer_id", "churned"]], on="customer_id")
        self.snapshot = snapshot.sort_values("customer_id").reset_index(drop=True)
        rng = np.random.default_rng(20261122)
        unshifted = self.snapshot.iloc[rng.integers(0, len(self.snapshot), 800)]
        shifted = self.snapshot.iloc[rng.integers(0, len(self.snapshot), 800)].copy()
        shifted[SHIFTED] = shifted[SHIFTED] * 2.0  # e.g. amounts now in another unit
        self.first, self.second = unshifted, shifted
        log = PredictionLog(registry.project.data_root / "landing" / "predictions")
        f = self.features
        log.append(_records(unshifted.iloc[:600], f, BASE, "champion", "1", right=True))
        log.append(_records(unshifted.iloc[600:], f, BASE, "challenger", "2", right=False))
        later = BASE + dt.timedelta(days=10)
        log.append(_records(shifted.iloc[:400], f, later, "champion", "1", right=False))
        log.append(_records(shifted.iloc[400:], f, later, "challenger", "2", right=True))
        log.flush()
        ingest_source(ctx, "predictions_log")

    def context(self, *, current: str = "served", reference: str = "auto") -> TaskContext:
        ctx = _context(self.spark, self.root, self.overrides)
        monitor = ctx.project.monitoring.models[MODEL]
        drift = monitor.drift.model_copy(update={"current": current, "reference": reference})
        ctx.project.monitoring.models[MODEL] = monitor.model_copy(update={"drift": drift})
        return ctx


@pytest.fixture(scope="module")
def monitored(spark: SparkSession, registry: Registry, hook: Hook) -> Monitored:  # noqa: F811
    return Monitored(spark, registry, hook)


def _by(result: MonitorResult, kind: str) -> dict[tuple[str, str], Any]:
    return {(r.subject, r.metric): r for r in result.rows if r.kind == kind}


def _drift_numbers(result: MonitorResult) -> dict[str, tuple[float, float]]:
    rows = _by(result, "drift")
    return {
        s: (round(r.value, 4), float(f"{rows[(s, p)].value:.3g}"))
        for (s, m), r in rows.items()
        if m == "psi"
        for p in ("ks_pvalue", "chi2_pvalue")
        if (s, p) in rows
    }


def test_unshifted_window_raises_no_drift_alert_and_ab_is_exact(
    monitored: Monitored, hook: Hook
) -> None:
    before = len(hook.received)
    result = monitor_model(monitored.context(), MODEL, as_of=BASE + dt.timedelta(hours=1))
    print("unshifted (psi, p):", _drift_numbers(result))
    drift = [r for r in result.rows if r.kind == "drift"]
    assert len(drift) == 2 * len(monitored.features)
    assert [r for r in drift if r.alert] == []
    assert {r.current_rows for r in drift} == {800}
    assert {r.reference_rows for r in drift} == {len(monitored.snapshot)} == {1000}
    assert {r.details["reference"] for r in drift} == {
        f"scoring lakehouse.gold.customer_features@v{monitored.feature_version}"
    }
    ab = _by(result, "ab")
    assert ab[("champion v1", "requests")].value == 60.0
    assert ab[("champion v1", "share")].value == 0.75
    assert ab[("challenger v2", "requests")].value == 20.0
    assert ab[("challenger v2", "share")].value == 0.25
    assert ab[("champion v1", "accuracy")].value == 1.0
    assert ab[("champion v1", "roc_auc")].value == 1.0
    assert ab[("challenger v2", "accuracy")].value == 0.0
    lift = ab[("challenger vs champion", "roc_auc_lift")]
    assert (lift.value, lift.alert) == (-1.0, False)
    # no drift or A/B alert -> what reached the webhook holds no drift/ab alert either
    posted = hook.received[before:]
    assert all(a["kind"] not in ("drift", "ab") for p in posted for a in p["alerts"])


def test_shifted_feature_raises_exactly_its_alert_and_the_webhook_gets_it(
    monitored: Monitored, hook: Hook
) -> None:
    before = len(hook.received)
    as_of = BASE + dt.timedelta(days=10, hours=1)
    result = monitor_model(monitored.context(), MODEL, as_of=as_of)
    print("shifted (psi, p):", _drift_numbers(result))
    drift_alerts = [a for a in result.alerts if a.kind == "drift"]
    assert [a.subject for a in drift_alerts] == [SHIFTED]
    psi_row = _by(result, "drift")[(SHIFTED, "psi")]
    assert psi_row.value > 0.2 and psi_row.window_end == as_of
    assert _by(result, "drift")[(SHIFTED, "ks_pvalue")].value < 0.05 / len(monitored.features)
    lift = _by(result, "ab")[("challenger vs champion", "roc_auc_lift")]
    assert (lift.value, lift.alert, lift.model_version) == (1.0, True, "2")
    # one POST for this run, carrying exactly the run's alerts
    posted = hook.received[before:]
    assert len(posted) == 1
    assert posted[0]["monitor_run_id"] == result.monitor_run_id
    assert [(a["kind"], a["subject"]) for a in posted[0]["alerts"]] == [
        (a.kind, a.subject) for a in result.alerts
    ]
    assert ("drift", SHIFTED) in {(a["kind"], a["subject"]) for a in posted[0]["alerts"]}


def test_quality_and_performance_rows_match_the_tables(monitored: Monitored) -> None:
    ctx = monitored.context(current="gold")
    ctx.report.run_id = "r-gold"
    started = time.perf_counter()
    monitor_models(ctx)  # the job's task function, as jobs/monitor_model.py runs it
    seconds = time.perf_counter() - started
    print(f"monitor_model task on the demo data: {seconds:.2f} s")
    table = system_table_name("lakehouse", SystemTable.MODEL_MONITORING)
    stored = ctx.tables.read(table).toPandas()
    run = stored[stored["monitor_run_id"] == f"r-gold-{MODEL}"]
    assert list(stored.columns) == [
        "monitored_at", "monitor_run_id", "model_name", "model_version", "kind", "subject",
        "metric", "value", "threshold", "alert", "window_start", "window_end",
        "reference_rows", "current_rows", "details",
    ]  # fmt: skip
    # nothing was served in the last 7 days (the landed predictions are 20 and 30 days old)
    assert set(run["kind"]) == {"drift", "quality", "performance"}
    drift = run[run["kind"] == "drift"]
    assert set(drift["current_rows"]) == {1000}  # the latest scoring run: one row per customer
    assert {json.loads(d)["source"] for d in drift["details"]} == {"gold"}
    # nothing changed since training: the scored rows are the reference snapshot itself
    assert drift["alert"].tolist() == [False] * 2 * len(monitored.features)
    psi = drift[drift["metric"] == "psi"]
    assert psi["value"].tolist() == [0.0] * len(monitored.features)

    dq = ctx.tables.read("lakehouse.meta.dq_results").toPandas()
    quality = run[run["kind"] == "quality"].set_index("subject")
    expected = {f"{r.table}:{r.rule}": r.pass_rate for r in dq.itertuples()}
    assert quality["value"].to_dict() == expected  # one Silver run per table in the fixture
    assert quality["alert"].to_dict() == {k: v < 0.99 for k, v in expected.items()}

    predictions = ctx.tables.read("lakehouse.gold.churn_predictions").toPandas()
    labels = ctx.tables.read("lakehouse.silver.customers").where("is_current").toPandas()
    joined = predictions.merge(labels[["customer_id", "churned"]], on="customer_id")
    perf = run[run["kind"] == "performance"].set_index("metric")
    assert perf.loc["labeled_rows", "value"] == len(joined) == 1000
    y = joined["churned"].astype(int)
    assert perf.loc["accuracy", "value"] == pytest.approx(accuracy_score(y, joined["prediction"]))
    assert perf.loc["roc_auc", "value"] == pytest.approx(roc_auc_score(y, joined["probability"]))
    print("performance on the latest scoring run:", perf["value"].round(4).to_dict())


def test_training_set_reference_sees_cumulative_features_shifted(monitored: Monitored) -> None:
    """``reference: training``: the point-in-time training set (counts as of each label day)
    against the latest snapshot: the cumulative order counts differ though nothing changed,
    which is why the default reference is the scoring snapshot at the training versions."""
    ctx = monitored.context(current="gold", reference="training")
    result = monitor_model(ctx, MODEL)
    print("training reference vs gold window (psi, p):", _drift_numbers(result))
    drift = _by(result, "drift")
    assert {r.details["reference"] for r in drift.values()} == {"training"}
    assert {r.reference_rows for r in drift.values()} == {len(monitored.training)}
    assert sorted(a.subject for a in result.alerts if a.kind == "drift") == [
        "orders_count",
        "orders_last_90d",
    ]


def test_cli_monitor_prints_the_alerts_it_stores(monitored: Monitored) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_"))
    }
    env.update({f"LAKEHOUSE_VAR_{k}": v for k, v in monitored.overrides.items()})
    env["LAKEHOUSE_VAR_monitoring_webhook_url"] = ""
    done = subprocess.run(
        [LAKEHOUSE, "monitor", MODEL, "--project-dir", str(monitored.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    printed = sorted(
        line.split(") drift of ")[1].split(":")[0]
        for line in done.stdout.splitlines()
        if line.startswith("ALERT churn_model v1 (drift)")
    )
    ctx = monitored.context()
    stored = ctx.tables.read(
        system_table_name("lakehouse", SystemTable.MODEL_MONITORING)
    ).toPandas()
    latest = stored[stored["monitored_at"] == stored["monitored_at"].max()]
    assert set(latest["kind"]) == {"drift", "quality", "performance"}
    alerts = latest[latest["alert"] & (latest["kind"] == "drift")]
    assert printed == sorted(alerts["subject"].unique())
