"""Land the deterministic demo file drops.

spark-submit jobs/land_demo_files.py [--target T] [--project-dir DIR]
    --landing DIR [--customers N] [--seed S]
"""

from __future__ import annotations

from lakehouse.bundle.entrypoint import run_task_script
from lakehouse.samples.tasks import land_demo_files as TASK

if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
