"""Monitor each model's champion: drift, data quality, performance, A/B -> meta.model_monitoring.

spark-submit jobs/monitor_model.py [--target T] [--project-dir DIR] [--as-of ISO] [MODEL ...]
"""

from __future__ import annotations

from lakehouse.bundle.entrypoint import run_task_script
from lakehouse.pipelines.monitoring.monitor import monitor_models as TASK

if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
