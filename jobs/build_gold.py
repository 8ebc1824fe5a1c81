"""Rebuild the Gold feature tables from Silver.

spark-submit jobs/build_gold.py [--target T] [--project-dir DIR] [task parameters]
"""

from __future__ import annotations

from lakehouse.bundle.entrypoint import run_task_script
from lakehouse.pipelines.gold import build_gold as TASK

if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
