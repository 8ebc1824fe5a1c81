"""The monitoring job: drift, data quality, performance and A/B per model, into a Delta table.

For each model under ``monitoring.models`` (conf/monitoring.yml):

* **drift**: a reference taken when the champion was trained, rebuilt by Delta time travel
  from the table versions recorded on its MLflow run (``lakehouse.input_tables``), against a
  current window: the rows the latest batch scoring run scored (``current: gold``) or the
  features of online predictions logged in the last ``window_days`` (``current: served``);
  PSI plus KS or chi-square per feature (:mod:`lakehouse.pipelines.monitoring.stats`).
  The reference (``drift.reference``) is by default the scoring input as scoring reads it
  (latest row per key) at those versions, i.e. what the champion would have been fed on its
  training day: the same query as the current window, so an unchanged table shows no drift.
  ``reference: training`` uses the point-in-time training set instead, whose cumulative
  features (counts as of each label day) differ from any latest snapshot by construction.
* **quality**: pass rates per rule of each table's latest Silver run (``meta.dq_results``).
* **performance**: the last scoring runs of the predictions table (one Delta version each)
  joined by key to the labels, against limits and the champion's training metrics; the
  metrics are those of the model's kind (binary, multiclass or regression, see
  :mod:`lakehouse.pipelines.ml.kinds`).
* **ab**: online predictions of the window per alias and version, joined to the labels.

Every value becomes a row of ``<catalog>.meta.model_monitoring`` (long format); alerts are
printed, noted in the run report and, with ``monitoring.webhook_url``, POSTed as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.bundle.context import TaskContext
from lakehouse.config.ml import DriftSpec, ModelMonitorSpec, ModelSpec
from lakehouse.config.project import ModelHandle, TableRef
from lakehouse.config.system_tables import ModelMonitoringRow, SystemTable, rows_frame
from lakehouse.core.errors import LakehouseError
from lakehouse.core.params import TaskParams
from lakehouse.pipelines.ml.registry import CHAMPION, connect, version_by_alias
from lakehouse.pipelines.ml.score import latest_rows
from lakehouse.pipelines.ml.train import feature_kinds
from lakehouse.pipelines.ml.training_set import LABEL_TS, label_column, label_rows, training_frame
from lakehouse.pipelines.monitoring.checks import (
    MetricRow,
    ab_rows,
    drift_rows,
    performance_rows,
    prediction_kind,
    quality_rows,
)
from lakehouse.pipelines.monitoring.stats import DriftThresholds, drift_report
from lakehouse.pipelines.monitoring.webhook import post_json

log = logging.getLogger(__name__)

INPUT_TABLES_TAG = "lakehouse.input_tables"


@dataclass
class MonitorResult:
    """What one model's monitoring run measured."""

    model_name: str
    model_version: str
    monitor_run_id: str
    monitored_at: dt.datetime
    rows: list[MetricRow]
    seconds: float = 0.0

    @property
    def alerts(self) -> list[MetricRow]:
        """One row per alerting (kind, subject): the first of its rows."""
        seen: set[tuple[str, str]] = set()
        out = []
        for row in self.rows:
            if row.alert and (row.kind, row.subject) not in seen:
                seen.add((row.kind, row.subject))
                out.append(row)
        return out


# ---------------------------------------------------------------- reading


def reference_frame(
    ctx: TaskContext, model: ModelHandle, input_versions: dict[str, int]
) -> DataFrame:
    """The training set of a model version, rebuilt at the Delta versions it was trained on."""
    tables = ctx.tables

    def pinned(table: TableRef) -> DataFrame:
        name = table.full_name
        if name not in input_versions:
            raise LakehouseError(
                f"the training run recorded no version of {name}; cannot rebuild its training set"
            )
        return tables.read(table, version=int(input_versions[name]))

    return training_frame(model, pinned)


def drift_reference(
    ctx: TaskContext,
    model: ModelHandle,
    drift: DriftSpec,
    input_versions: dict[str, int],
    training: DataFrame,
) -> tuple[DataFrame, str]:
    """The drift reference and how it was taken (``scoring <table>@v<N>`` or ``training``)."""
    scoring = model.scoring
    kind = drift.reference
    if kind == "auto":
        kind = "scoring" if scoring is not None else "training"
    if kind == "training":
        return training, "training"
    if scoring is None:
        raise LakehouseError(
            "drift.reference 'scoring' needs the model's 'scoring' section (or use 'training')"
        )
    table = scoring.input.table
    if table.full_name not in input_versions:
        raise LakehouseError(
            f"the training run recorded no version of the scoring input {table.full_name}; "
            "set drift.reference: training"
        )
    version = int(input_versions[table.full_name])
    rows = latest_rows(
        ctx.tables.read(table, version=version),
        list(scoring.input.keys),
        scoring.input.timestamp_key,
    )
    return rows, f"scoring {table.full_name}@v{version}"


def gold_window(ctx: TaskContext, model: ModelHandle) -> tuple[DataFrame, dict[str, Any]]:
    """Feature values of the rows the latest batch scoring run scored."""
    spec, scoring = model.spec, model.scoring
    if scoring is None:
        raise LakehouseError(
            "drift.current 'gold' needs the model's 'scoring' section (or use 'served')"
        )
    keys, ts_key = list(scoring.input.keys), scoring.input.timestamp_key
    version = ctx.tables.version(scoring.output)
    predictions = ctx.tables.read(scoring.output, version=version)
    on = [*keys, *([ts_key] if ts_key else [])]
    inputs = ctx.tables.read(scoring.input.table).select(*on, *spec.features)
    frame = predictions.select(*on, "scored_at").join(inputs, on, "left")
    span = frame.agg(
        F.min(ts_key or "scored_at").alias("start"), F.max(ts_key or "scored_at").alias("end")
    ).first()
    return frame, {
        "source": "gold",
        "table": scoring.output.full_name,
        "version": version,
        "start": span["start"] if span else None,
        "end": span["end"] if span else None,
    }


def served_predictions(
    ctx: TaskContext,
    spec: ModelSpec,
    start: dt.datetime,
    end: dt.datetime,
    categorical: list[str],
) -> DataFrame:
    """Logged online predictions of the model in ``[start, end)``, features and keys parsed."""
    table = predictions_table(ctx)
    if table not in ctx.project.tables:
        raise LakehouseError(
            f"{table}: no such table for the served predictions "
            "(set monitoring.predictions_table or use drift.current 'gold')"
        )
    raw = ctx.tables.read(table)
    schema = T.StructType(
        [
            T.StructField(f, T.StringType() if f in categorical else T.DoubleType())
            for f in spec.features
        ]
    )
    ts = F.to_timestamp(F.regexp_replace("ts", "Z$", ""))
    keys_json = (
        F.col("keys")
        if "keys" in raw.columns
        else F.get_json_object("_rescued_data", "$.keys").cast("string")
    )
    # multiclass lines carry probabilities: a column where the catalog declares it, else
    # kept by Bronze in _rescued_data
    probabilities_json = (
        F.col("probabilities").cast("string")
        if "probabilities" in raw.columns
        else F.get_json_object("_rescued_data", "$.probabilities")
    )
    prediction_type = "double" if spec.task == "regression" else "int"
    parsed = (
        raw.where(F.col("model_name") == spec.registered_name)
        .where(F.col("_corrupt").isNull())
        .select(
            "request_id",
            F.col("record_index").cast("int").alias("record_index"),
            ts.alias("ts"),
            "model_version",
            "alias",
            F.col("prediction").cast(prediction_type).alias("prediction"),
            F.col("probability").cast("double").alias("probability"),
            F.from_json(probabilities_json, "map<string,double>").alias("probabilities"),
            F.from_json("features", schema).alias("__features"),
            keys_json.alias("__keys"),
        )
        .where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end)))
    )
    label_keys = list(spec.training_set.labels.keys)
    return parsed.select(
        "request_id",
        "record_index",
        "ts",
        "model_version",
        "alias",
        "prediction",
        "probability",
        "probabilities",
        *[F.col("__features").getField(f).alias(f) for f in spec.features],
        *[F.get_json_object("__keys", f"$.{k}").alias(f"__key_{k}") for k in label_keys],
    )


def predictions_table(ctx: TaskContext) -> str:
    """The Bronze table the serving API's prediction log is ingested into."""
    monitoring = ctx.project.monitoring
    return monitoring.predictions_table or f"{ctx.project.catalog.name}.bronze.predictions"


def collect(df: DataFrame, columns: list[str], max_rows: int, seed: int = 42) -> pd.DataFrame:
    """``columns`` of ``df`` in pandas, a seeded sample of about ``max_rows`` when larger."""
    selected = df.select(*columns)
    rows = selected.count()
    if rows > max_rows:
        selected = selected.sample(fraction=max_rows / rows, seed=seed)
    out: pd.DataFrame = selected.toPandas()
    return out


def latest_labels(ctx: TaskContext, model: ModelHandle) -> DataFrame:
    """Label keys and the label (a class, or a number) as ``label``: the latest labelled
    row per key."""
    labels = model.spec.training_set.labels
    rows = label_rows(ctx.tables.read(model.labels), labels, model.spec.task).withColumnRenamed(
        label_column(labels), "label"
    )
    rows = latest_rows(rows, list(labels.keys), LABEL_TS if labels.timestamp else None)
    return rows.select(*labels.keys, "label").where(F.col("label").isNotNull())


# ---------------------------------------------------------------- checks


def _training_metrics(client: Any, registered: str, version: str, cache: dict[str, Any]) -> Any:
    if version not in cache:
        try:
            mv = client.get_model_version(registered, version)
            run = client.get_run(mv.run_id)
            cache[version] = ({k: float(v) for k, v in run.data.metrics.items()}, run)
        except Exception as exc:  # a deleted version or run: judge by the minimums only
            log.warning("%s v%s: training metrics unavailable (%s)", registered, version, exc)
            cache[version] = ({}, None)
    return cache[version]


def drift_check(
    ctx: TaskContext,
    model: ModelHandle,
    monitor: ModelMonitorSpec,
    reference: DataFrame,
    categorical: list[str],
    champion_version: str,
    as_of: dt.datetime,
    reference_label: str = "training",
) -> list[MetricRow]:
    """Drift rows for every monitored feature (no rows when the window is empty)."""
    spec = model.spec
    drift = monitor.drift
    features = drift.features or spec.features
    if drift.current == "gold":
        current, window = gold_window(ctx, model)
    else:
        start = as_of - dt.timedelta(days=drift.window_days)
        current = served_predictions(ctx, spec, start, as_of, categorical)
        window = {"source": "served", "start": start, "end": as_of}
    ref_pdf = collect(reference, features, drift.max_rows)
    cur_pdf = collect(current, features, drift.max_rows)
    if cur_pdf.empty:
        ctx.report.notes.append(
            f"{spec.registered_name}: no {window['source']} rows in the window; drift not measured"
        )
        return []
    thresholds = DriftThresholds(
        psi_threshold=drift.psi_threshold,
        alpha=drift.alpha,
        bonferroni=drift.correction == "bonferroni",
        min_rows=drift.min_rows,
        bins=drift.bins,
        epsilon=drift.epsilon,
    )
    drifts = drift_report(ref_pdf, cur_pdf, features, categorical, thresholds)
    return drift_rows(
        drifts,
        model_version=champion_version,
        window_start=window["start"],
        window_end=window["end"],
        source=str(window["source"]),
        reference=reference_label,
    )


def quality_check(
    ctx: TaskContext, monitor: ModelMonitorSpec, champion_version: str
) -> list[MetricRow]:
    """DQ pass-rate rows of each table's latest Silver run."""
    results = ctx.tables.read(ctx.project.system_table(SystemTable.DQ_RESULTS)).toPandas()
    return quality_rows(
        results,
        min_pass_rate=monitor.quality.min_pass_rate,
        table_thresholds=monitor.quality.tables,
        only_listed=monitor.quality.only_listed,
        model_version=champion_version,
    )


def performance_check(
    ctx: TaskContext,
    model: ModelHandle,
    monitor: ModelMonitorSpec,
    labels: DataFrame,
    client: Any,
    cache: dict[str, Any],
) -> list[MetricRow]:
    """Metric rows per recent scoring run (Delta version) of the predictions table."""
    spec, scoring = model.spec, model.scoring
    if scoring is None:
        return []
    perf = monitor.performance
    output = scoring.output.full_name
    keys, label_keys = list(scoring.input.keys), list(scoring.label_keys)
    renamed = labels.select(
        *[F.col(lk).alias(k) for k, lk in zip(keys, label_keys, strict=True)], "label"
    )
    out: list[MetricRow] = []
    history = [
        h
        for h in ctx.tables.history(scoring.output)
        if h.version > 0 or h.operation != "CREATE TABLE"
    ]
    for entry in history[: perf.last_runs]:
        predictions = ctx.tables.read(scoring.output, version=entry.version)
        outputs = [c for c in ("probability", "probabilities") if c in predictions.columns]
        joined = predictions.join(renamed, keys, "left").select(
            "model_version", "prediction", *outputs, "label", "scored_at", "run_id"
        )
        pdf: pd.DataFrame = joined.toPandas()
        if pdf.empty:
            continue
        for version, group in pdf.groupby("model_version", sort=True):
            labelled = group[group["label"].notna()]
            training, _ = _training_metrics(client, spec.registered_name, str(version), cache)
            scored_at = pd.Timestamp(group["scored_at"].min()).to_pydatetime()
            out += performance_rows(
                labelled,
                kind=prediction_kind(spec.task, group),
                subject=f"{output}@v{entry.version}",
                model_version=str(version),
                metrics=perf.metrics_for(spec.task),
                minimums={str(k): v for k, v in perf.thresholds.items()},
                max_drop=perf.max_drop_for(spec.task),
                training=training,
                min_labeled=perf.min_labeled,
                scored_rows=len(group),
                window_start=scored_at,
                window_end=pd.Timestamp(group["scored_at"].max()).to_pydatetime(),
                details={"table_version": entry.version, "run_id": str(group["run_id"].iloc[0])},
            )
    return out


def ab_check(
    ctx: TaskContext,
    spec: ModelSpec,
    monitor: ModelMonitorSpec,
    labels: DataFrame,
    categorical: list[str],
    as_of: dt.datetime,
) -> list[MetricRow]:
    """The A/B report rows of the served predictions in the window."""
    ab = monitor.ab
    if predictions_table(ctx) not in ctx.project.tables:
        return []  # the project logs no served predictions
    start = as_of - dt.timedelta(days=ab.window_days)
    served = served_predictions(ctx, spec, start, as_of, categorical)
    label_keys = list(spec.training_set.labels.keys)
    joined = served.join(
        labels.select(*[F.col(k).alias(f"__key_{k}") for k in label_keys], "label"),
        [f"__key_{k}" for k in label_keys],
        "left",
    ).select(
        "request_id",
        "alias",
        "model_version",
        "prediction",
        "probability",
        "probabilities",
        "label",
    )
    return ab_rows(
        joined.toPandas(),
        metric=ab.metric_for(spec.task),
        min_improvement=ab.min_improvement,
        min_labeled=ab.min_labeled,
        window_start=start,
        window_end=as_of,
        task=spec.task,
    )


# ---------------------------------------------------------------- the job


def monitor_model(
    ctx: TaskContext, name: str, *, as_of: dt.datetime | None = None
) -> MonitorResult:
    """Run every check for model ``name``; write the rows; print and send the alerts."""
    started = time.perf_counter()
    if name not in ctx.project.models:
        known = ", ".join(sorted(ctx.project.models)) or "none"
        raise LakehouseError(f"no model {name!r} in conf/ (known: {known})")
    model = ctx.project.model_handle(name)
    spec = model.spec
    monitor = ctx.project.monitoring.models.get(name, ModelMonitorSpec())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    as_of = as_of or now
    client = connect(ctx.project)
    champion = version_by_alias(client, spec.registered_name, CHAMPION)
    if champion is None:
        raise LakehouseError(f"{spec.registered_name} has no @{CHAMPION} version to monitor")
    version = str(champion.version)
    cache: dict[str, Any] = {}
    _, run = _training_metrics(client, spec.registered_name, version, cache)
    tag = run.data.tags.get(INPUT_TABLES_TAG) if run is not None else None
    if not tag:
        raise LakehouseError(
            f"{spec.registered_name} v{version}: its training run has no {INPUT_TABLES_TAG} tag"
        )
    input_versions = {k: int(v) for k, v in json.loads(tag).items()}
    training = reference_frame(ctx, model, input_versions)
    _, categorical = feature_kinds(training.schema, spec.features)
    reference, described = drift_reference(ctx, model, monitor.drift, input_versions, training)
    labels = latest_labels(ctx, model)
    rows = [
        *drift_check(ctx, model, monitor, reference, categorical, version, as_of, described),
        *quality_check(ctx, monitor, version),
        *performance_check(ctx, model, monitor, labels, client, cache),
        *ab_check(ctx, spec, monitor, labels, categorical, as_of),
    ]
    result = MonitorResult(
        model_name=spec.registered_name,
        model_version=version,
        monitor_run_id=f"{ctx.run_id}-{name}",
        monitored_at=now,
        rows=rows,
    )
    write_results(ctx, result)
    result.seconds = time.perf_counter() - started
    announce(ctx, result)
    return result


def result_frame(ctx: TaskContext, result: MonitorResult) -> DataFrame:
    """The rows as a DataFrame of the ``meta.model_monitoring`` schema."""
    data = [
        ModelMonitoringRow(
            result.monitored_at,
            result.monitor_run_id,
            result.model_name,
            r.model_version,
            r.kind,
            r.subject,
            r.metric,
            r.value,
            r.threshold,
            r.alert,
            r.window_start,
            r.window_end,
            r.reference_rows,
            r.current_rows,
            r.details_json(),
        )
        for r in result.rows
    ]
    return rows_frame(ctx.spark, SystemTable.MODEL_MONITORING, data)


def write_results(ctx: TaskContext, result: MonitorResult) -> None:
    """Append the rows to ``<catalog>.meta.model_monitoring``."""
    if result.rows:
        table = ctx.project.system_table(SystemTable.MODEL_MONITORING)
        ctx.tables.append(table, result_frame(ctx, result))


def webhook_payload(result: MonitorResult, table: str) -> dict[str, Any]:
    """The JSON document POSTed for a monitoring run with alerts."""
    return {
        "monitor_run_id": result.monitor_run_id,
        "monitored_at": result.monitored_at.isoformat() + "Z",
        "model_name": result.model_name,
        "model_version": result.model_version,
        "table": table,
        "alert_count": len(result.alerts),
        "alerts": [
            {
                "kind": a.kind,
                "subject": a.subject,
                "metric": a.metric,
                "value": a.value,
                "threshold": a.threshold,
                "model_version": a.model_version,
                "message": a.message,
            }
            for a in result.alerts
        ],
    }


def announce(ctx: TaskContext, result: MonitorResult) -> None:
    """Print the alerts, note them in the run report, POST them to the webhook if set."""
    alerts = result.alerts
    ctx.report.count(f"monitor {result.model_name}", rows=len(result.rows), alerts=len(alerts))
    for a in alerts:
        line = f"ALERT {result.model_name} v{result.model_version} ({a.kind}) {a.message}"
        print(line, flush=True)
        ctx.report.notes.append(line)
    print(
        f"{result.model_name} v{result.model_version}: {len(result.rows)} monitoring rows, "
        f"{len(alerts) or 'no'} alert{'' if len(alerts) == 1 else 's'} ({result.seconds:.1f} s)",
        flush=True,
    )
    monitoring = ctx.project.monitoring
    if alerts and monitoring.webhook_url:
        table = ctx.project.system_table(SystemTable.MODEL_MONITORING).full_name
        try:
            post_json(
                monitoring.webhook_url,
                webhook_payload(result, table),
                timeout=monitoring.webhook_timeout_s,
            )
        except OSError as exc:  # results are stored already; a webhook outage is only noted
            note = f"monitoring webhook failed: {exc}"
            log.warning(note)
            ctx.report.notes.append(note)


class MonitorParams(TaskParams):
    """``[MODEL]... [--as-of ISO]``: the models to monitor (default: all) and the time."""

    positional: ClassVar[str | None] = "models"
    models: tuple[str, ...] = ()
    as_of: dt.datetime | None = None


def monitor_models(ctx: TaskContext) -> None:
    """Task: monitor every model under ``monitoring.models`` (``--as-of ISO`` optional)."""
    args = MonitorParams.parse(ctx.parameters, task=ctx.task_key)
    names = args.models or list(ctx.project.monitoring.models)
    if not names:
        ctx.report.notes.append("no model under monitoring.models: nothing monitored")
    for name in names:
        monitor_model(ctx, name, as_of=args.as_of)
