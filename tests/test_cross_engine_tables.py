"""Tables move between the engines: Sail writes and MERGEs (deletion vectors, partitions),
JVM Spark + delta-spark reads, time-travels, MERGEs and optimizes, and Sail reads and MERGEs
it back; a table Sail cannot read is refused with one clear line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import Project, load_project
from lakehouse.io.delta import DeltaStore
from tests.cross_engine_sail import (
    EVENT_COLUMNS,
    EVENTS,
    ITEM_COLUMNS,
    ITEMS,
    STAMPS,
    rows,
)
from tests.io.conftest import BUNDLE

pytestmark = pytest.mark.jvm

SAIL_SIDE = Path(__file__).with_name("cross_engine_sail.py")
REPO = Path(__file__).resolve().parents[1]
CATALOG = """
catalog:
  name: cat
  storage_root: ${var.data_root}/tables
  schemas:
    s:
      tables:
        items:
          layer: silver
          keys: [id]
          columns:
            - {name: id, type: int, nullable: false}
            - {name: label, type: string}
            - {name: qty, type: int}
        events:
          layer: gold
          partition_by: [day]
          columns:
            - {name: id, type: bigint}
            - {name: day, type: date}
            - {name: at, type: timestamp}
        stamps:
          layer: gold
          columns:
            - {name: id, type: bigint}
            - {name: at, type: timestamp}
"""


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(textwrap.dedent(BUNDLE))
    (tmp_path / "conf" / "catalog.yml").write_text(textwrap.dedent(CATALOG))
    return load_project(tmp_path)


def sail(project: Project, step: str, *args: str) -> dict[str, Any]:
    """Run one step of ``cross_engine_sail.py`` on the embedded engine, in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    done = subprocess.run(
        [sys.executable, str(SAIL_SIDE), str(project.root), step, *args],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _commit_actions(table: Path, version: int) -> list[dict[str, Any]]:
    log = table / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_a_table_round_trips_between_sail_and_jvm_delta(
    spark: SparkSession, project: Project
) -> None:
    written = sail(project, "write")
    assert written["merge_version"] == 2
    jvm = DeltaStore(spark, project, "spark")
    jvm.register_all()
    items_dir = Path(project.table(ITEMS).location)
    # Sail's MERGE marked the updated row deleted in its file (a deletion vector)
    sail_merge = _commit_actions(items_dir, 2)
    assert any(a.get("add", {}).get("deletionVector") for a in sail_merge)
    assert rows(jvm, ITEMS) == written["items"]
    assert rows(jvm, ITEMS, version=1) == [[i, f"item{i}", i] for i in range(1, 7)]

    changes = spark.createDataFrame(
        [(4, "four", 40, False), (5, "item5", 5, True)], ITEM_COLUMNS + ", _deleted boolean"
    )
    jvm_merge = jvm.merge(ITEMS, changes, ["id"], delete_flag="_deleted")
    assert (jvm_merge.version, jvm_merge.rows_written) == (3, 2)
    compacted = jvm.optimize(ITEMS, zorder_by=["qty"])
    assert compacted.files_added == 1 and compacted.files_removed >= 2
    after_jvm = [[1, "item1", 1], [2, "two", 20], [3, "item3", 3], [4, "four", 40]]
    after_jvm += [[6, "item6", 6], [7, "item7", 7]]
    assert rows(jvm, ITEMS) == after_jvm
    new_day = spark.createDataFrame(
        [(9, dt.date(2026, 12, 3), dt.datetime(2026, 12, 3, 8, 0))], EVENT_COLUMNS
    )
    jvm.append(EVENTS, new_day)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{project.table(EVENTS).location}`").first()
    assert detail is not None and list(detail["partitionColumns"]) == ["day"]

    back = sail(project, "read_back", str(jvm_merge.version))
    assert back["latest"] == after_jvm
    assert back["at_jvm_version"] == after_jvm  # OPTIMIZE changed files, not rows
    assert back["merge_version"] == 5
    assert [3, "three", 30] in back["after_merge"]
    assert [9, "2026-12-03", "2026-12-03T08:00:00"] in back["events"]
    assert len(back["events"]) == 5
    assert back["history"][:3] == ["MERGE", "OPTIMIZE", "MERGE"]
    assert [h.operation for h in jvm.history(ITEMS)][:4] == ["MERGE", "OPTIMIZE", "MERGE", "MERGE"]
    assert rows(jvm, ITEMS) == back["after_merge"]


def test_int96_timestamps_are_refused_by_sail_until_rewritten(
    spark: SparkSession, project: Project
) -> None:
    """JVM Spark's default timestamp encoding (INT96) is one Sail cannot read: Sail refuses
    the table in one line at registration; the spark engine writes INT64, which Sail reads."""
    jvm = DeltaStore(spark, project, "spark")
    stamp = dt.datetime(2026, 12, 2, 12, 0)
    frame = spark.createDataFrame([(1, stamp)], "id bigint, at timestamp")
    key = "spark.sql.parquet.outputTimestampType"
    assert spark.conf.get(key) == "TIMESTAMP_MICROS"  # what the spark engine sets
    spark.conf.set(key, "INT96")  # what a plain JVM Spark job writes
    try:
        jvm.overwrite(STAMPS, frame)
    finally:
        spark.conf.set(key, "TIMESTAMP_MICROS")
    refused = sail(project, "read_stamps")
    assert refused["error"].startswith(
        "cat.s.stamps: the sail engine cannot read TIMESTAMP columns stored as Parquet INT96 (at,"
    )
    spark.sql(f"INSERT OVERWRITE delta.`{project.table(STAMPS).location}` SELECT * FROM s.stamps")
    assert sail(project, "read_stamps") == {"stamps": [[1, "2026-12-02T12:00:00"]]}
