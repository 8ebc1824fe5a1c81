"""Exactly once under SIGKILL: a killed ingest, re-run, ends with exactly the uninterrupted rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.config import load_project
from lakehouse.io.delta import DeltaStore
from tests.pipelines.bronze.test_ingest import _typed_project
from tests.support import session_engine

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
FILES, LINES = 12, 400


def _env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE"))
    }


def _commits(log_dir: Path) -> int:
    return len(list(log_dir.glob("*.json"))) if log_dir.is_dir() else 0


def test_sigkill_mid_ingest_then_rerun_lands_every_row_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    project = _typed_project(tmp_path, per_commit=1)
    for f in range(FILES):
        lines = [f'{{"id": "{f}-{i}", "qty": {i}}}' for i in range(LINES)]
        (project.data_root / "landing" / f"f{f:02d}.jsonl").write_text("\n".join(lines) + "\n")
    log_dir = project.data_root / "tables" / "bronze" / "events" / "_delta_log"
    command = [LAKEHOUSE, "ingest", "drop", "--project-dir", str(project.root)]

    victim = subprocess.Popen(
        command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while _commits(log_dir) < 3 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the table's CREATE plus two appended files
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    tables = DeltaStore(spark, load_project(project.root), session_engine(spark))
    tables.register_all()
    landed_before = tables.row_count("c.bronze.events")
    assert 2 * LINES <= landed_before < FILES * LINES  # it really was interrupted

    rerun = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    bronze = tables.read("c.bronze.events")
    assert bronze.count() == FILES * LINES
    assert bronze.select("id").distinct().count() == FILES * LINES
    assert bronze.select("_batch_id").distinct().count() == FILES
    assert tables.row_count("c.meta.processed_files") == FILES
