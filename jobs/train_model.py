"""Train, log and register the configured models in MLflow.

spark-submit jobs/train_model.py [--target T] [--project-dir DIR] [MODEL]... [--force]
"""

from __future__ import annotations

from lakehouse.bundle.entrypoint import run_task_script
from lakehouse.pipelines.ml.train import train_models as TASK

if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
