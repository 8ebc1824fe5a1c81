"""Batch scoring: the champion model over a Gold table, predictions into a Gold Delta table.

The champion is loaded once (``models:/NAME@champion``) on the driver and shipped to the
workers inside a ``mapInPandas`` function, so scoring scales with the engine rather than
the driver's memory. Each run replaces the predictions table (one row per input key, with
the model version and the scoring time); earlier runs stay readable by Delta time travel.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.bundle.context import TaskContext
from lakehouse.config.project import ModelHandle
from lakehouse.core.errors import LakehouseError
from lakehouse.core.params import TaskParams
from lakehouse.pipelines.ml.registry import CHAMPION, connect, model_uri, version_by_alias
from lakehouse.pipelines.ml.train import feature_kinds, model_input

log = logging.getLogger(__name__)


def latest_rows(df: DataFrame, keys: list[str], ts_key: str | None) -> DataFrame:
    """The newest row per key of a time series table (the table itself without a ts key)."""
    if ts_key is None:
        return df
    newest = Window.partitionBy(*keys).orderBy(F.col(ts_key).desc())
    return df.withColumn("__rank", F.row_number().over(newest)).where("__rank = 1").drop("__rank")


@dataclass(frozen=True)
class ScoringModel:
    """What the workers need: the fitted model and how to shape its input."""

    model: Any
    features: list[str]
    categorical: list[str]


def score_frame(rows: DataFrame, scorer: ScoringModel, passthrough: list[str]) -> DataFrame:
    """``passthrough`` columns plus ``prediction`` (int) and ``probability`` (of class 1)."""
    in_schema = {f.name: f for f in rows.schema.fields}
    out_schema = T.StructType(
        [in_schema[c] for c in passthrough]
        + [
            T.StructField("prediction", T.IntegerType(), False),
            T.StructField("probability", T.DoubleType(), False),
        ]
    )
    model, features, categorical = scorer.model, scorer.features, scorer.categorical

    def predict(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            x = model_input(batch, features, categorical)
            out = batch[passthrough].copy()
            out["prediction"] = model.predict(x).astype("int32")
            out["probability"] = model.predict_proba(x)[:, 1].astype("float64")
            yield out

    columns = list(dict.fromkeys([*passthrough, *features]))
    return rows.select(*columns).mapInPandas(predict, out_schema)


def score_batch(ctx: TaskContext) -> None:
    """Task: score every model that has a ``scoring`` section with its champion."""
    TaskParams.parse(ctx.parameters, task=ctx.task_key)  # takes none
    scored = 0
    for model in ctx.project.model_handles.values():
        if model.scoring is not None:
            score_model(ctx, model)
            scored += 1
    if not scored:
        ctx.report.notes.append("no model has a 'scoring' section: nothing scored")


def score_model(ctx: TaskContext, name: str | ModelHandle) -> None:
    """Score the model's scoring input with its champion; overwrite the predictions table.

    The model by name (looked up once, here) or by handle.
    """
    import mlflow

    handle = name if isinstance(name, ModelHandle) else ctx.project.model_handle(name)
    spec, scoring = handle.spec, handle.scoring
    if scoring is None:
        raise LakehouseError(f"model {handle.name!r} has no 'scoring' section in conf/")
    client = connect(ctx.project)
    champion = version_by_alias(client, spec.registered_name, CHAMPION)
    if champion is None:
        raise LakehouseError(
            f"{spec.registered_name} has no @{CHAMPION} version to score with; train it first"
        )
    model = mlflow.sklearn.load_model(model_uri(spec.registered_name, CHAMPION))
    source = scoring.input.table
    keys, ts_key = list(scoring.input.keys), scoring.input.timestamp_key
    table = ctx.tables.read(source)
    _, categorical = feature_kinds(table.schema, spec.features)
    rows = latest_rows(table, keys, ts_key)
    passthrough = [*keys, *([ts_key] if ts_key else [])]
    predictions = score_frame(rows, ScoringModel(model, spec.features, categorical), passthrough)
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = predictions.select(
        *passthrough,
        "prediction",
        "probability",
        F.lit(spec.registered_name).alias("model_name"),
        F.lit(str(champion.version)).alias("model_version"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(ctx.run_id).alias("run_id"),
    )
    ctx.tables.evolve(scoring.output, result.schema, step="scoring")
    ctx.tables.overwrite(scoring.output, result)
    log.info("%s v%s scored %s", spec.registered_name, champion.version, source.full_name)
