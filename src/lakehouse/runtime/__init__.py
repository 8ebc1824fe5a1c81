"""Where a run is assembled: :func:`open_run` returns the run's session, store and scopes."""

from __future__ import annotations

from lakehouse.runtime.run import (
    REGISTER_TASK,
    RunAs,
    RunContext,
    TaskRun,
    new_run_id,
    open_run,
    project_session,
)

__all__ = [
    "REGISTER_TASK",
    "RunAs",
    "RunContext",
    "TaskRun",
    "new_run_id",
    "open_run",
    "project_session",
]
