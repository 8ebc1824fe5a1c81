"""Score the Gold scoring tables with each model's @champion; write the predictions tables.

spark-submit jobs/score_batch.py [--target T] [--project-dir DIR] [task parameters]
"""

from __future__ import annotations

from lakehouse.bundle.entrypoint import run_task_script
from lakehouse.pipelines.ml.score import score_batch as TASK

if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
