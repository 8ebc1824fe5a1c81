"""Build the configured Gold tables: read inputs, apply the transform or query, overwrite."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar, cast

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.bundle.context import TaskContext
from lakehouse.config.loader import import_callable
from lakehouse.config.pipelines import GoldSpec
from lakehouse.config.project import GoldHandle
from lakehouse.core.errors import LakehouseError, TaskError
from lakehouse.core.params import TaskParams
from lakehouse.io.results import WriteResult
from lakehouse.transforms.quality import duplicate_keys

log = logging.getLogger(__name__)

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


class BuildParams(TaskParams):
    """``[TABLE]... [--full-refresh]``: the Gold tables (default: all); a full refresh
    creates a table again when its columns changed type unsafely (as on a first run)."""

    positional: ClassVar[str | None] = "tables"
    tables: tuple[str, ...] = ()
    full_refresh: bool = False


def build_gold(ctx: TaskContext) -> None:
    """Rebuild every configured Gold table (or those named in the task parameters).

    Feature tables (those with a ``timestamp_key``) are checked for unique keys before the
    write: a point-in-time lookup needs exactly one row per key and time.
    """
    params = BuildParams.parse(ctx.parameters, task=ctx.task_key)
    names = params.tables or tuple(ctx.project.gold)
    unknown = [n for n in names if n not in ctx.project.gold]
    if unknown:
        raise TaskError(f"unknown Gold table(s): {', '.join(unknown)}")
    from lakehouse.pipelines.gold_refresh import RefreshLedger, refresh_gold_table

    ledger = RefreshLedger(ctx, list(names))
    try:
        for name in names:
            refresh_gold_table(
                ctx, ctx.project.gold_handle(name), ledger, full_refresh=params.full_refresh
            )
    finally:
        ledger.flush()


def build_gold_table(ctx: TaskContext, t: GoldHandle, *, full_refresh: bool = False) -> None:
    """Refresh one Gold table from its inputs (a feature table's keys checked unique).

    The strategy (:mod:`lakehouse.pipelines.gold_refresh`) is chosen from the query and the
    input's changes since the last refresh; the table equals a full rebuild either way.
    The table takes the result's columns: new ones are added, safe type widenings applied;
    an unsafe type change needs ``full_refresh``."""
    from lakehouse.pipelines.gold_refresh import RefreshLedger, refresh_gold_table

    ledger = RefreshLedger(ctx, [t.name])
    try:
        refresh_gold_table(ctx, t, ledger, full_refresh=full_refresh)
    finally:
        ledger.flush()


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
