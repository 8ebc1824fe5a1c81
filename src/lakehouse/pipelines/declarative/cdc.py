"""AUTO CDC flows: a batch of change rows applied to a Delta target (thin I/O).

The semantics are in :mod:`lakehouse.transforms.cdc`; this module reads the target and the
flow's state table, writes the target first and the state second (so a batch interrupted
between the two writes gives the same tables when it is applied again), and reports counts.

The state table is a Delta table in the target's directory (``<location>/_auto_cdc_state``,
registered as ``<schema>.<table>__auto_cdc_state``): the target keeps exactly Databricks'
visible columns, deleting the target's data (a full refresh) deletes the state with it, and
Delta ignores ``_``-prefixed directories when it reads or vacuums the target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from pyspark.sql import DataFrame

from lakehouse.config.project import Project, TableRef
from lakehouse.io.store import TableName, TableStore
from lakehouse.pipelines.declarative.model import AutoCdc
from lakehouse.transforms.cdc import (
    DELETED,
    SEQUENCE,
    START_AT,
    TRUNCATE,
    CdcChanges,
    cdc_events,
    plan_columns,
    scd1_changes,
    scd2_changes,
    state_schema,
    target_schema,
)
from lakehouse.transforms.scd import DELETE_FLAG

log = logging.getLogger(__name__)

STATE_DIR = "_auto_cdc_state"
STATE_SUFFIX = "__auto_cdc_state"


@dataclass(frozen=True)
class AutoCdcResult:
    """What one batch did to the target.

    ``upserted``: SCD1 rows inserted or changed, SCD2 upsert events applied; ``deleted``:
    SCD1 rows deleted, SCD2 delete events applied; ``history_rows``: SCD2 versions
    inserted, changed or removed (0 for SCD1); ``version``: the target's Delta version after.
    """

    target: str
    upserted: int
    deleted: int
    history_rows: int
    version: int


def state_table(target: TableRef, project: Project | None = None) -> TableRef:
    """The handle of a target's AUTO CDC state table; with ``project``, registered in its
    catalog (as Databricks lists an AUTO CDC target's backing table), so its writes are
    governed and traced like the target's."""
    ref = replace(
        target,
        name=f"{target.name}{STATE_SUFFIX}",
        spec=target.spec.model_copy(
            update={
                "columns": [],
                "keys": [],
                "partition_by": [],
                "grants": [],
                "description": f"AUTO CDC state of {target.full_name}",
                "location": f"{target.location.rstrip('/')}/{STATE_DIR}",
            }
        ),
        location=f"{target.location.rstrip('/')}/{STATE_DIR}",
    )
    if project is None or target.catalog != project.catalog.name:
        return ref
    return project.tables.get(ref.full_name) or project.add_table(ref.full_name, ref.spec)


def _ref(store: TableStore, target: TableName) -> TableRef:
    return target if isinstance(target, TableRef) else store.project.table(target)


def apply_auto_cdc(
    store: TableStore, target: TableName, changes: DataFrame, spec: AutoCdc
) -> AutoCdcResult:
    """Apply one batch of change rows to ``target`` as ``spec`` says (SCD type 1 or 2).

    The target is created from the first batch's columns (plus ``__START_AT`` /
    ``__END_AT`` for SCD2) when it does not exist. Nothing is committed to a table the
    batch does not change (a replayed batch commits nothing).
    """
    ref = _ref(store, target)
    plan = plan_columns(changes.columns, spec)
    events = cdc_events(changes, spec, plan)
    scd = spec.stored_as_scd_type
    ref = store.evolve(ref, target_schema(events, plan, scd), step=f"AUTO CDC {spec.flow_name}")
    state_ref = state_table(ref, store.project)
    wanted = state_schema(events, plan, scd)
    if store.exists(state_ref):
        state = store.read(state_ref)
    else:
        state = store.spark.createDataFrame([], wanted)
    # Pinned: the state rows are computed after the target's MERGE, from this same snapshot.
    current = store.read(ref, store.version(ref))
    if scd == 1:
        batch = scd1_changes(
            events, state, current, plan, ignore_null_updates=spec.ignore_null_updates
        )
        merge_keys = plan.keys
        state_keys, insert_only = [*plan.keys, TRUNCATE], False
    else:
        batch = scd2_changes(
            events, state, current, plan, ignore_null_updates=spec.ignore_null_updates
        )
        merge_keys = [*plan.keys, START_AT]
        state_keys, insert_only = [*plan.keys, SEQUENCE], True
    counts = _counts(batch)
    if counts["rows"]:
        store.merge(ref, batch.rows, merge_keys, delete_flag=DELETE_FLAG)
    if counts["state"]:
        if not store.exists(state_ref):
            store.evolve(state_ref, wanted, step=f"AUTO CDC {spec.flow_name} state")
        store.merge(state_ref, batch.state, state_keys, insert_only=insert_only)
    result = _result(ref, scd, counts, store.version(ref))
    log.info(
        "AUTO CDC %s -> %s: %d upserted, %d deleted, %d history rows, version %d",
        spec.flow_name,
        ref.full_name,
        result.upserted,
        result.deleted,
        result.history_rows,
        result.version,
    )
    return result


def _counts(batch: CdcChanges) -> dict[str, int]:
    """Rows of the target's merge (upserts / deletes) and of the state's, in two queries."""
    by_flag = {bool(r[0]): int(r[1]) for r in batch.rows.groupBy(DELETE_FLAG).count().collect()}
    state_by_flag = {bool(r[0]): int(r[1]) for r in batch.state.groupBy(DELETED).count().collect()}
    return {
        "upserts": by_flag.get(False, 0),
        "deletes": by_flag.get(True, 0),
        "rows": sum(by_flag.values()),
        "state": sum(state_by_flag.values()),
        "state_upserts": state_by_flag.get(False, 0),
        "state_deletes": state_by_flag.get(True, 0),
    }


def _result(ref: TableRef, scd: int, counts: dict[str, int], version: int) -> AutoCdcResult:
    if scd == 1:
        return AutoCdcResult(ref.full_name, counts["upserts"], counts["deletes"], 0, version)
    return AutoCdcResult(
        ref.full_name, counts["state_upserts"], counts["state_deletes"], counts["rows"], version
    )


def reset_auto_cdc(store: TableStore, target: TableName) -> bool:
    """Forget what the flow into ``target`` applied (its state table); for a full refresh,
    with the target's own data. False when there was no state."""
    return store.drop_data(state_table(_ref(store, target), store.project))
