"""Silver bookkeeping: one commit per job run to each of ``meta.silver_runs``,
``meta.dq_results`` and ``meta.silver_batches``.

A Silver table's refine records its row accounting, its rule results and the Bronze batches
it refined in a :class:`SilverLedger`; the job run appends them when it is done with its
tables (:meth:`SilverLedger.flush`, also on the way out of a failing run), instead of a
keyed MERGE per table and system table (0.1-0.5 s each on Sail, more on JVM Spark).

What a crash leaves: a table's batches are added to the ledger only after its data (and
quarantine) MERGE committed, so a run killed before the flush has refined them without
recording them, and the next run refines them again, which the MERGEs make harmless
(:mod:`lakehouse.pipelines.silver.progress`). ``silver_runs`` is appended first,
``silver_batches`` last: a run killed between them is described (its run row says what it
refined) and its batches are refined again by the next run, whose run row says so too.

Keys: ``silver_runs`` and ``dq_results`` are keyed by run id and table (and rule). A job run
writes one row per key, unless the same run id flushes twice (a task attempt retried under
its run's id, or ``refine_table`` called twice with one context): the flush reads which of
its tables ``silver_runs`` already holds for the run id (one small read) and, if any, MERGEs
on the keys as before (the later attempt's row replaces the earlier one); otherwise it
appends. ``silver_batches`` is appended to with the batches the ledger did not hold when the
run read it (:attr:`~lakehouse.pipelines.silver.progress.PendingBatches.unrecorded`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import functions as F

from lakehouse.bundle.context import TaskContext
from lakehouse.config.system_tables import (
    DqResultRow,
    SilverBatchRow,
    SilverRunRow,
    SystemTable,
    rows_frame,
)

log = logging.getLogger(__name__)


@dataclass
class SilverLedger:
    """The bookkeeping rows of the Silver tables a job run refined, until :meth:`flush`."""

    runs: dict[str, SilverRunRow] = field(default_factory=dict)  # table -> its run row
    results: dict[tuple[str, str], DqResultRow] = field(default_factory=dict)  # (table, rule)
    batches: dict[tuple[str, str], SilverBatchRow] = field(default_factory=dict)  # (table, id)

    @property
    def empty(self) -> bool:
        return not (self.runs or self.results or self.batches)

    def record_run(self, row: SilverRunRow) -> None:
        """The table's row accounting (a later row for the table replaces an earlier one)."""
        self.runs[row.table] = row

    def record_results(self, rows: list[DqResultRow]) -> None:
        """The table's rule results."""
        for row in rows:
            self.results[(row.table, row.rule)] = row

    def record_refined(self, rows: list[SilverBatchRow]) -> None:
        """Batches whose rows the table's MERGE has committed."""
        for row in rows:
            self.batches[(row.table, row.batch_id)] = row

    def flush(self, ctx: TaskContext) -> None:
        """Write the rows: one commit per system table that has any (run rows first, the
        batches last), then forget them."""
        if self.empty:
            return
        keyed = self._run_flushed_before(ctx)
        runs, results, batches = (
            list(self.runs.values()),
            list(self.results.values()),
            list(self.batches.values()),
        )
        self.runs, self.results, self.batches = {}, {}, {}
        _write(ctx, SystemTable.SILVER_RUNS, runs, ["run_id", "table"] if keyed else None)
        _write(ctx, SystemTable.DQ_RESULTS, results, ["run_id", "table", "rule"] if keyed else None)
        _write(ctx, SystemTable.SILVER_BATCHES, batches, None)

    def _run_flushed_before(self, ctx: TaskContext) -> bool:
        """True when ``silver_runs`` already has a row of this run id for one of the tables
        (the same run id flushing again: the rows must replace, not add to, those)."""
        tables = {*self.runs, *(table for table, _ in self.results)}
        if not tables:
            return False
        runs = ctx.tables.read(ctx.project.system_table(SystemTable.SILVER_RUNS))
        earlier = runs.where((F.col("run_id") == ctx.run_id) & F.col("table").isin(sorted(tables)))
        return bool(earlier.limit(1).count())


def _write(
    ctx: TaskContext, table: SystemTable, rows: Sequence[object], keys: list[str] | None
) -> None:
    """Append ``rows`` (MERGE them on ``keys`` when given) in one commit."""
    if not rows:
        return
    name = ctx.project.system_table(table)
    frame = rows_frame(ctx.spark, table, rows)
    if keys is None:
        ctx.tables.append(name, frame)
    else:
        log.info("%s: run %s flushed before, merging on %s", name.full_name, ctx.run_id, keys)
        ctx.tables.merge(name, frame, keys)
