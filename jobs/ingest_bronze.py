"""Ingest new file drops into the Bronze tables.

spark-submit jobs/ingest_bronze.py [--target T] [--project-dir DIR]
    [--sources NAME...] [--with-sample-api PORT]
"""

from __future__ import annotations

from lakehouse.bundle.entrypoint import run_task_script
from lakehouse.pipelines.bronze.ingest import ingest_bronze as TASK

if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
