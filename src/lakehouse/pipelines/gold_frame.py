"""A Gold table's rows and their write, shared by every refresh strategy
(:mod:`lakehouse.pipelines.gold_refresh`): the transform or SQL query over the inputs plus
``features``, and the checked overwrite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.bundle.context import TaskContext
from lakehouse.config.loader import import_callable
from lakehouse.config.pipelines import GoldSpec
from lakehouse.config.project import GoldHandle
from lakehouse.core.errors import LakehouseError
from lakehouse.io.results import WriteResult
from lakehouse.transforms.quality import duplicate_keys

GoldTransform = Callable[..., DataFrame]


def load_transform(dotted: str) -> GoldTransform:
    """Import ``package.module:function``."""
    return cast(GoldTransform, import_callable(dotted))


@contextmanager
def gold_frame(
    spark: SparkSession, spec: GoldSpec, inputs: dict[str, DataFrame]
) -> Iterator[DataFrame]:
    """The Gold table's rows: the transform (or SQL query) over ``inputs``, then ``features``.

    A query sees each input as a temporary view named by its alias. Spark resolves a SQL
    plan lazily, so the views live until the ``with`` block that uses the result ends.
    """
    views: list[str] = []
    try:
        if spec.transform is not None:
            result = load_transform(spec.transform)(**inputs, **spec.params)
        else:
            for alias, df in inputs.items():
                df.createOrReplaceTempView(alias)
                views.append(alias)
            result = spark.sql(str(spec.query))
        if spec.features:
            result = result.withColumns({name: F.expr(sql) for name, sql in spec.features.items()})
        yield result
    finally:
        for view in views:
            spark.catalog.dropTempView(view)


def write_gold(ctx: TaskContext, t: GoldHandle, result: DataFrame, *, replace: bool) -> WriteResult:
    """Check a feature table's keys, evolve the table to ``result``'s columns, overwrite it."""
    keys = t.table.spec.keys
    if t.spec.timestamp_key is not None and keys:
        dupes = duplicate_keys(result, keys)
        if dupes:
            raise LakehouseError(
                f"{t.name}: the transform produced more than one row per "
                f"({', '.join(keys)}), e.g. {dupes[0]}; a feature table needs unique keys"
            )
    ctx.tables.evolve(t.table, result.schema, step="Gold transform", replace=replace)
    return ctx.tables.overwrite(t.table, result)
