"""Batch scoring: the champion model over a Gold table, predictions into a Gold Delta table.

The champion is loaded once (``models:/NAME@champion``) on the driver and shipped to the
workers inside a ``mapInPandas`` function, so scoring scales with the engine rather than
the driver's memory. Each run replaces the predictions table (one row per input key, with
the model version and the scoring time); earlier runs stay readable by Delta time travel.

The prediction columns follow the champion's kind (:mod:`lakehouse.pipelines.ml.kinds`):
binary ``prediction`` (int) and ``probability`` (of class 1); multiclass the same plus
``probabilities`` (map of class to probability; ``probability`` is the predicted class's);
regression ``prediction`` (double) alone.
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
from lakehouse.pipelines.ml.kinds import ModelKind, model_kind, model_outputs
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

    @property
    def kind(self) -> ModelKind:
        return model_kind(self.model)


def prediction_fields(kind: ModelKind) -> list[T.StructField]:
    """The prediction columns a model of ``kind`` writes (see the module docstring)."""
    if kind == "regression":
        return [T.StructField("prediction", T.DoubleType(), False)]
    fields = [
        T.StructField("prediction", T.IntegerType(), False),
        T.StructField("probability", T.DoubleType(), False),
    ]
    if kind == "multiclass":
        probabilities = T.MapType(T.StringType(), T.DoubleType(), False)
        fields.append(T.StructField("probabilities", probabilities, False))
    return fields


def score_frame(rows: DataFrame, scorer: ScoringModel, passthrough: list[str]) -> DataFrame:
    """``passthrough`` columns plus the prediction columns of the model's kind."""
    in_schema = {f.name: f for f in rows.schema.fields}
    kind = scorer.kind
    out_schema = T.StructType([in_schema[c] for c in passthrough] + prediction_fields(kind))
    model, features, categorical = scorer.model, scorer.features, scorer.categorical

    def predict(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            outputs = model_outputs(model, model_input(batch, features, categorical))
            out = batch[passthrough].copy()
            if kind == "regression":
                out["prediction"] = outputs.prediction.astype("float64")
            else:
                out["prediction"] = outputs.prediction.astype("int32")
                assert outputs.probability is not None
                out["probability"] = outputs.probability.astype("float64")
            if kind == "multiclass":
                out["probabilities"] = outputs.probabilities()
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
    scorer = ScoringModel(model, spec.features, categorical)
    predictions = score_frame(rows, scorer, passthrough)
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = predictions.select(
        *passthrough,
        *[f.name for f in prediction_fields(scorer.kind)],
        F.lit(spec.registered_name).alias("model_name"),
        F.lit(str(champion.version)).alias("model_version"),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(ctx.run_id).alias("run_id"),
    )
    ctx.tables.evolve(scoring.output, result.schema, step="scoring")
    ctx.tables.overwrite(scoring.output, result)
    log.info("%s v%s scored %s", spec.registered_name, champion.version, source.full_name)
