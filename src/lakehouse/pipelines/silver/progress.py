"""Incremental Silver: which Bronze rows a Silver table has not refined yet.

Bronze is append-only and each ingest commit writes whole batches, every row carrying its
``_batch_id``. A Silver table's progress is the set of batch ids it has refined, kept as rows
of ``meta.silver_batches`` (the role a streaming checkpoint plays for a Delta source, but as
data: it survives compaction and can be queried). A run refines the batches of one pinned
Bronze version that are not in that set, and records them once its MERGE has committed (in
the job run's one append to the ledger, :mod:`lakehouse.pipelines.silver.ledger`); a run
that dies in between refines them again next time, which the MERGE makes harmless (updates
need a newer sequence, quarantine inserts are keyed by row hash).

The ledger is appended to, not MERGEd: a run records only the batches the ledger did not
hold when the run read it (:attr:`PendingBatches.unrecorded`), so a table/batch pair is
recorded once. Readers take the batch ids as a set all the same, so a duplicate (two runs of
one table at the same time) changes nothing.

A Bronze table without ``_batch_id`` (not written by the project's ingest) is read whole
every run, as is any table on ``full_refresh``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.bundle.context import TaskContext
from lakehouse.config.project import SilverHandle
from lakehouse.config.system_tables import (
    SilverBatchRow,
    SystemTable,
)

BATCH_ID = "_batch_id"


@dataclass(frozen=True)
class PendingBatches:
    """The Bronze rows to refine this run and the batches they belong to."""

    rows: DataFrame
    batches: dict[str, int] = field(default_factory=dict)  # batch id -> Bronze rows
    refined_before: int = 0  # batches of the source refined by earlier runs
    incremental: bool = True
    earlier: DataFrame | None = None  # the rows of those batches (same Bronze version)
    full_refresh: bool = False  # all of Bronze, into the table created again
    recorded: frozenset[str] = frozenset()  # of ``batches``, those the ledger already holds

    @property
    def empty(self) -> bool:
        return self.incremental and not self.batches

    @property
    def unrecorded(self) -> dict[str, int]:
        """The batches to add to the ledger once refined (a full refresh re-refines
        recorded ones too)."""
        return batches_not_refined(self.batches, set(self.recorded))


def batches_not_refined(present: dict[str, int], refined: set[str]) -> dict[str, int]:
    """The batches of ``present`` (id -> rows) that are not in ``refined``."""
    return {b: n for b, n in present.items() if b not in refined}


def rows_of_batches(bronze: DataFrame, wanted: list[str], others: list[str]) -> DataFrame:
    """The Bronze rows of the ``wanted`` batches, where every batch of ``bronze`` is in
    ``wanted`` or ``others``: filtered by the shorter list; Delta file statistics on
    ``_batch_id`` prune the files of the rest."""
    if not others:
        return bronze
    if len(wanted) <= len(others):
        return bronze.where(F.col(BATCH_ID).isin(wanted))
    return bronze.where(~F.col(BATCH_ID).isin(others))


def pending_batches(
    ctx: TaskContext, t: SilverHandle, *, full_refresh: bool = False
) -> PendingBatches:
    """What ``t`` has to refine: the batches of its Bronze source (at its current version)
    that no earlier run of ``t`` refined."""
    tables = ctx.tables
    version = tables.version(t.source)
    bronze = tables.read(t.source, version=version)
    if BATCH_ID not in bronze.columns:
        return PendingBatches(bronze, incremental=False, full_refresh=full_refresh)
    present = {
        str(r[BATCH_ID]): int(r["rows"])
        for r in bronze.groupBy(BATCH_ID).agg(F.count("*").alias("rows")).collect()
    }
    ledger = tables.read(ctx.project.system_table(SystemTable.SILVER_BATCHES))
    recorded = {
        str(r["batch_id"])
        for r in ledger.where(F.col("table") == t.name).select("batch_id").collect()
    } & set(present)
    refined = set() if full_refresh else recorded
    todo = batches_not_refined(present, refined)
    return PendingBatches(
        rows_of_batches(bronze, sorted(todo), sorted(refined)),
        todo,
        refined_before=len(refined),
        earlier=rows_of_batches(bronze, sorted(refined), sorted(todo)),
        full_refresh=full_refresh,
        recorded=frozenset(recorded & set(todo)),
    )


def refined_rows(
    ctx: TaskContext, t: SilverHandle, pending: PendingBatches
) -> list[SilverBatchRow]:
    """The ``meta.silver_batches`` rows of the run's batches the ledger does not hold yet
    (to append once the table's MERGE has committed)."""
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    return [
        SilverBatchRow(t.name, t.source.full_name, b, n, ctx.run_id, now)
        for b, n in sorted(pending.unrecorded.items())
    ]
