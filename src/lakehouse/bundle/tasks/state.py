"""What the tasks of one job run share: parameters, task values, condition outcomes.

Task values live in files under the run's folder (``<data_root>/runs/<run_id>/values/``),
one JSON file per task, so a notebook kernel (another process) and the tasks run in this
process see the same values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.bundle.context import RunReport
from lakehouse.config.jobs import Job
from lakehouse.core.errors import LakehouseError


def run_folder(data_root: Path, run_id: str) -> Path:
    """``<data_root>/runs/<run_id>``: executed notebooks and task values of the run."""
    return data_root / "runs" / run_id


class TaskValues:
    """``dbutils.jobs.taskValues`` of one run, kept as one JSON file per task."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "values"
        self._lock = threading.Lock()

    def _file(self, task_key: str) -> Path:
        return self.folder / f"{task_key}.json"

    def all_of(self, task_key: str) -> dict[str, Any]:
        path = self._file(task_key)
        return dict(json.loads(path.read_text())) if path.is_file() else {}

    def set(self, task_key: str, key: str, value: Any) -> None:
        """Set ``key`` of ``task_key`` (the value must be JSON-serializable, as on Databricks)."""
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise LakehouseError(
                f"task value {key!r} of task {task_key}: {type(value).__name__} is not "
                "JSON-serializable"
            ) from None
        with self._lock:
            values = self.all_of(task_key)
            values[key] = value
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self._file(task_key).with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(values))
            tmp.replace(self._file(task_key))

    def has(self, task_key: str, key: str) -> bool:
        return key in self.all_of(task_key)

    def get(self, task_key: str, key: str) -> Any:
        values = self.all_of(task_key)
        if key not in values:
            raise LakehouseError(f"no task value {key!r} set by task {task_key!r} in this run")
        return values[key]


@dataclass
class JobRunState:
    """One job run as its tasks see it (``{{job.*}}``, ``{{tasks.*}}``, outcomes)."""

    job_name: str
    job: Job
    run_id: str
    folder: Path
    parameters: dict[str, str] = field(default_factory=dict)
    start_time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    outcomes: dict[str, str] = field(default_factory=dict)  # condition task -> "true"/"false"
    calls: tuple[str, ...] = ()  # jobs calling this one (run_job_task), outermost first
    # runs another job of the bundle in this run: (calling task, job, parameters) -> report
    run_child: Callable[[str, str, dict[str, str]], RunReport] | None = None

    @property
    def values(self) -> TaskValues:
        return TaskValues(self.folder)
