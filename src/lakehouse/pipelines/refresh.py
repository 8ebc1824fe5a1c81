"""Full refreshes and table resets: forget what a layer has done so its next run redoes it.

* A source's full refresh (``lakehouse ingest SOURCE --full-refresh``) deletes its rows from
  its Bronze table and its ``meta.processed_files`` entries, so every landed file is ingested
  again. An http source's API is read again as it is now: a paginated API serves all of its
  pages again; a rotating one (batches that expire) is refused, since its older batches
  would be lost.
* A table reset (``lakehouse table reset NAME``) deletes the table's Delta data and its
  bookkeeping: the processed files of the sources that land in a Bronze table, the refined
  batches of a Silver table (its quarantine is kept: raw rows are never lost). The next run
  creates the table again, from the catalog or from the data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lakehouse.bundle.context import TaskContext
from lakehouse.config.sources import FileSource, HttpSource
from lakehouse.config.system_tables import SystemTable
from lakehouse.core.errors import TaskError
from lakehouse.io.sql import sql_string

log = logging.getLogger(__name__)


def forget_source(ctx: TaskContext, source_name: str) -> None:
    """Delete a source's Bronze rows and its processed-files entries (before a re-ingest)."""
    handle = ctx.project.source_handle(source_name)
    source = handle.spec
    if isinstance(source, HttpSource) and source.rotating is not None:
        raise TaskError(
            f"{source_name}: --full-refresh would lose the batches the API no longer serves "
            f"(a rotating http source); to start over anyway: "
            f"lakehouse table reset {handle.target.full_name} --yes"
        )
    name = sql_string(source_name)
    ctx.tables.delete_where(handle.target, f"`_source` = {name}")
    if isinstance(source, FileSource):
        log_table = ctx.project.system_table(SystemTable.PROCESSED_FILES)
        ctx.tables.delete_where(log_table, f"`source` = {name}")
    log.info("%s: Bronze rows and processed files forgotten", source_name)


@dataclass
class ResetSummary:
    """What a reset deleted."""

    table: str
    layer: str
    had_data: bool = False
    bookkeeping: list[str] = field(default_factory=list)  # "meta.x: rows of ..."


def reset_table(ctx: TaskContext, name: str) -> ResetSummary:
    """Delete the table's data and its bookkeeping so the next run rebuilds it."""
    ref = ctx.project.table(name)
    summary = ResetSummary(ref.full_name, ref.spec.layer)
    if ref.spec.layer == "system":
        raise TaskError(f"{ref.full_name}: a system table is not reset")
    summary.had_data = ctx.tables.drop_data(ref)
    if ref.spec.layer == "bronze":
        log_table = ctx.project.system_table(SystemTable.PROCESSED_FILES)
        sources = [
            n
            for n, s in ctx.project.sources.items()
            if isinstance(s, FileSource)
            and ctx.project.source_handle(n).target.full_name == ref.full_name
        ]
        if sources:
            names = ", ".join(sql_string(s) for s in sources)
            ctx.tables.delete_where(log_table, f"`source` IN ({names})")
            summary.bookkeeping.append(
                f"{log_table.full_name}: files of {', '.join(sorted(sources))}"
            )
    elif ref.spec.layer == "silver" and ref.full_name in ctx.project.silver:
        batches = ctx.project.system_table(SystemTable.SILVER_BATCHES)
        ctx.tables.delete_where(batches, f"`table` = {sql_string(ref.full_name)}")
        summary.bookkeeping.append(f"{batches.full_name}: batches refined into {ref.full_name}")
    return summary
