"""The Sail side of the cross-engine table test, run in its own process.

A Spark Connect session and a classic JVM session cannot share one Python process, so the
test (on JVM Spark) runs this script for each Sail step: ``python cross_engine_sail.py
PROJECT_DIR STEP``. It prints one JSON object on stdout; a lakehouse error is printed as
``{"error": "..."}`` (exit 0) so the test can assert on it.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.config import load_project
from lakehouse.config.bundle_spec import EngineSpec
from lakehouse.core.errors import LakehouseError
from lakehouse.engine import build_session
from lakehouse.io.delta import DeltaStore

ITEMS = "cat.s.items"
EVENTS = "cat.s.events"
STAMPS = "cat.s.stamps"
ITEM_COLUMNS = "id int, label string, qty int"
EVENT_COLUMNS = "id bigint, day date, at timestamp"


def rows(tables: DeltaStore, name: str, version: int | None = None) -> list[list[Any]]:
    """The table's rows, sorted, as JSON-able lists."""
    frame = tables.read(name, version=version)
    out = [[_plain(v) for v in r] for r in frame.collect()]
    return sorted(out, key=lambda r: [str(v) for v in r])


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def write(spark: SparkSession, tables: DeltaStore) -> dict[str, Any]:
    """Create the tables, append, and MERGE (deletion vectors on the Silver table)."""
    tables.register_all()
    items = [(i, f"item{i}", i) for i in range(1, 7)]
    tables.append(ITEMS, spark.createDataFrame(items, ITEM_COLUMNS).coalesce(1))
    merged = tables.merge(
        ITEMS,
        spark.createDataFrame([(2, "two", 20), (7, "item7", 7)], ITEM_COLUMNS),
        ["id"],
    )
    day = dt.date(2026, 12, 1)
    at = dt.datetime(2026, 12, 1, 9, 30)
    events = [(i, day + dt.timedelta(days=i % 2), at + dt.timedelta(hours=i)) for i in range(4)]
    tables.append(EVENTS, spark.createDataFrame(events, EVENT_COLUMNS))
    return {"merge_version": merged.version, "items": rows(tables, ITEMS)}


def read_back(spark: SparkSession, tables: DeltaStore) -> dict[str, Any]:
    """Read what JVM Spark wrote (latest and time travel), then MERGE on top of it."""
    tables.register_all()
    latest = rows(tables, ITEMS)
    first_jvm = int(sys.argv[3])
    at_jvm = rows(tables, ITEMS, version=first_jvm)
    merged = tables.merge(ITEMS, spark.createDataFrame([(3, "three", 30)], ITEM_COLUMNS), ["id"])
    return {
        "latest": latest,
        "at_jvm_version": at_jvm,
        "merge_version": merged.version,
        "after_merge": rows(tables, ITEMS),
        "events": rows(tables, EVENTS),
        "history": [h.operation for h in tables.history(ITEMS)],
    }


def read_stamps(spark: SparkSession, tables: DeltaStore) -> dict[str, Any]:
    """Register and read the timestamp table JVM Spark wrote."""
    try:
        tables.ensure_table(STAMPS)
        return {"stamps": rows(tables, STAMPS)}
    except LakehouseError as exc:
        return {"error": str(exc)}


STEPS = {"write": write, "read_back": read_back, "read_stamps": read_stamps}


def main() -> None:
    project = load_project(Path(sys.argv[1]))
    step = STEPS[sys.argv[2]]
    session = build_session(EngineSpec(kind="sail"), warehouse_dir=project.data_root / "wh")
    with session:
        tables = DeltaStore(session.spark, project, "sail")
        print(json.dumps(step(session.spark, tables)))


if __name__ == "__main__":
    main()
