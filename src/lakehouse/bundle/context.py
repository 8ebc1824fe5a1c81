"""What a task receives: the session, the project, the table store and a report to fill."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyspark.sql import SparkSession

from lakehouse.config.project import Project
from lakehouse.io.results import WriteResult
from lakehouse.io.store import TableStore


@dataclass(frozen=True)
class ModelResult:
    """A model a task trained (or found up to date) and registered."""

    name: str
    version: str
    aliases: list[str]
    metrics: dict[str, float]
    retrained: bool
    note: str = ""
    best: str = ""
    promoted: bool | None = None
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class TaskOutcome:
    task_key: str
    status: str  # SUCCESS | FAILED | TIMED_OUT | SKIPPED | EXCLUDED
    seconds: float = 0.0
    error: str = ""
    attempts: int = 1


@dataclass
class RunReport:
    """Everything a job run did, for the closing summary."""

    job: str
    run_id: str
    target: str
    engine: str
    # how the engine ran when it is not plain local: "local-cluster, 2 workers"
    engine_mode: str = ""
    started: float = field(default_factory=time.time)
    writes: list[WriteResult] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    tasks: list[TaskOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # input kept aside rather than landed (quarantined, vanished or refused files): the
    # run still succeeds, but not plainly
    warnings: list[str] = field(default_factory=list)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    # the job's parameters for this run: defaults overridden by --params
    job_parameters: dict[str, str] = field(default_factory=dict)

    def count(self, scope: str, **values: int) -> None:
        """Add named counters under ``scope`` (e.g. rows read / quarantined per table)."""
        bucket = self.counters.setdefault(scope, {})
        for key, value in values.items():
            bucket[key] = bucket.get(key, 0) + int(value)

    @property
    def succeeded(self) -> bool:
        return all(t.status in ("SUCCESS", "EXCLUDED") for t in self.tasks)


@dataclass
class TaskContext:
    """Handed to every task function."""

    spark: SparkSession
    project: Project
    tables: TableStore
    report: RunReport
    task_key: str
    parameters: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.report.run_id

    @property
    def job_parameters(self) -> dict[str, str]:
        """The run's job parameters (``{{job.parameters.<name>}}``): defaults, then --params."""
        return self.report.job_parameters


class TaskFunction(Protocol):
    def __call__(self, ctx: TaskContext) -> None: ...
