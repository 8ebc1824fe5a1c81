"""Point-in-time correct training sets: labels joined to feature values as of the label time.

A training example is a label row (keys, label time, label). For a time series feature
table, each example gets the feature row with the same keys and the latest timestamp at or
before the label time (an *as-of join*), so no value computed after the label was observed
can leak into training. A feature table without a timestamp key is joined on keys alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.config.ml import LabelSpec
from lakehouse.config.project import ModelHandle, TableRef
from lakehouse.io.store import TableStore

LABEL_TS = "label_ts"
_MATCHED_TS = "__feature_ts"


def label_column(spec: LabelSpec) -> str:
    """The label's column name in the training set: the column itself, or ``label``."""
    return spec.label if spec.label.isidentifier() else "label"


def label_rows(table: DataFrame, spec: LabelSpec, task: str = "classification") -> DataFrame:
    """Keys, label time (as ``label_ts``) and the label from the label table: an int class,
    or a double for ``task: regression``."""
    if spec.where:
        table = table.where(F.expr(spec.where))
    columns = [F.col(k) for k in spec.keys]
    if spec.timestamp:
        columns.append(F.col(spec.timestamp).cast("timestamp").alias(LABEL_TS))
    label_type = "double" if task == "regression" else "int"
    columns.append(F.expr(spec.label).cast(label_type).alias(label_column(spec)))
    return table.select(*columns)


def point_in_time_join(
    labels: DataFrame,
    features: DataFrame,
    *,
    label_keys: list[str],
    feature_keys: list[str],
    feature_ts: str | None,
    columns: list[str],
    lookback_days: int | None = None,
) -> DataFrame:
    """``labels`` plus ``columns`` from ``features`` as of each row's ``label_ts``.

    Every label row is kept (a label without a feature value at or before its time gets
    NULLs); duplicate label rows stay duplicates. With ``lookback_days``, feature values older
    than that at label time count as missing.
    """
    renamed = features.select(
        *[F.col(f).alias(k) for f, k in zip(feature_keys, label_keys, strict=True)],
        *([F.col(feature_ts).alias(_MATCHED_TS)] if feature_ts else []),
        *columns,
    )
    if feature_ts is None:
        return labels.join(renamed, label_keys, "left")
    moments = labels.select(*label_keys, LABEL_TS).distinct()
    candidates = renamed.select(*label_keys, _MATCHED_TS)
    on = [moments[k] == candidates[k] for k in label_keys] + [
        candidates[_MATCHED_TS] <= moments[LABEL_TS]
    ]
    if lookback_days is not None:
        on.append(
            candidates[_MATCHED_TS]
            >= moments[LABEL_TS] - F.expr(f"INTERVAL {int(lookback_days)} DAYS")
        )
    as_of = (
        moments.join(candidates, on, "inner")
        .groupBy(*[moments[k] for k in label_keys], moments[LABEL_TS])
        .agg(F.max(candidates[_MATCHED_TS]).alias(_MATCHED_TS))
    )
    return (
        labels.join(as_of, [*label_keys, LABEL_TS], "left")
        .join(renamed, [*label_keys, _MATCHED_TS], "left")
        .drop(_MATCHED_TS)
    )


@dataclass(frozen=True)
class TrainingSet:
    """The joined examples, the Delta version of every table they were read from, and
    where those tables are (both by ``catalog.schema.table``)."""

    frame: DataFrame
    label: str
    keys: list[str]
    timestamp: str | None
    input_versions: dict[str, int]
    input_locations: dict[str, str] = field(default_factory=dict)


def training_frame(model: ModelHandle, read: Callable[[TableRef], DataFrame]) -> DataFrame:
    """The label rows joined point-in-time to every feature lookup; ``read`` gives each table."""
    labels_spec = model.spec.training_set.labels
    frame = label_rows(read(model.labels), labels_spec, model.spec.task)
    for feature in model.features:
        lookup, source = feature.spec, feature.source
        frame = point_in_time_join(
            frame,
            read(source.table),
            label_keys=feature.label_keys,
            feature_keys=list(source.keys),
            feature_ts=source.timestamp_key,
            columns=lookup.features,
            lookback_days=lookup.lookback_days,
        )
    return frame


def build_training_set(tables: TableStore, model: ModelHandle) -> TrainingSet:
    """Read the label and feature tables (each at one pinned version) and join them."""
    versions: dict[str, int] = {}

    def pinned(table: TableRef) -> DataFrame:
        if table.full_name not in versions:
            versions[table.full_name] = tables.version(table)
        return tables.read(table, version=versions[table.full_name])

    frame = training_frame(model, pinned)
    labels_spec = model.spec.training_set.labels
    return TrainingSet(
        frame=frame,
        label=label_column(labels_spec),
        keys=list(labels_spec.keys),
        timestamp=LABEL_TS if labels_spec.timestamp else None,
        input_versions=versions,
        input_locations={t.full_name: t.location for t in model.inputs},
    )
