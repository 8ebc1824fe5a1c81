"""Conform, dedupe and MERGE Bronze into the Silver tables.

spark-submit jobs/refine_silver.py [--target T] [--project-dir DIR] [TABLE]... [--full-refresh]
"""

from __future__ import annotations

from lakehouse.bundle.entrypoint import run_task_script
from lakehouse.pipelines.silver.refine import refine_silver as TASK

if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
