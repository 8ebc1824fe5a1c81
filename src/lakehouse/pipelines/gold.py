"""Build the configured Gold tables: each refreshed in full or from its inputs' changes
(:mod:`lakehouse.pipelines.gold_refresh`), equal to a full rebuild either way."""

from __future__ import annotations

from typing import ClassVar

from lakehouse.bundle.context import TaskContext
from lakehouse.config.project import GoldHandle
from lakehouse.core.errors import TaskError
from lakehouse.core.params import TaskParams
from lakehouse.pipelines.gold_refresh import RefreshLedger, refresh_gold_table


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
    ledger = RefreshLedger(ctx, list(names))
    try:
        for name in names:
            refresh_gold_table(
                ctx, ctx.project.gold_handle(name), ledger, full_refresh=params.full_refresh
            )
    finally:
        ledger.flush()
        ledger.discard_staged()


def build_gold_table(ctx: TaskContext, t: GoldHandle, *, full_refresh: bool = False) -> None:
    """Refresh one Gold table from its inputs (a feature table's keys checked unique).

    The strategy (:mod:`lakehouse.pipelines.gold_refresh`) is chosen from the query and the
    input's changes since the last refresh; the table equals a full rebuild either way.
    The table takes the result's columns: new ones are added, safe type widenings applied;
    an unsafe type change needs ``full_refresh``."""
    ledger = RefreshLedger(ctx, [t.name])
    try:
        refresh_gold_table(ctx, t, ledger, full_refresh=full_refresh)
    finally:
        ledger.flush()
        ledger.discard_staged()
