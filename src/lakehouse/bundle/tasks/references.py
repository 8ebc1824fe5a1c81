"""Dynamic value references in task parameters: ``{{job.parameters.x}}``, ``{{job.run_id}}``...

Resolved when a task starts, as Databricks does. Supported:
``{{job.id}}``, ``{{job.name}}``, ``{{job.run_id}}``, ``{{job.parameters.<name>}}``,
``{{job.start_time.<part>}}`` (``iso_datetime``, ``iso_date``, ``timestamp_ms``, ``year``,
``month``, ``day``, ``hour``, ``minute``, ``second``), ``{{task.name}}``,
``{{task.run_id}}``, ``{{tasks.<key>.values.<name>}}``, ``{{tasks.<key>.run_id}}``, and the
legacy ``{{run_id}}``, ``{{job_id}}``, ``{{parent_run_id}}``, ``{{task_key}}``. Anything else
is an error naming the task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from lakehouse.bundle.tasks.state import JobRunState
from lakehouse.core.errors import LakehouseError

_REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def _start_time(state: JobRunState, part: str) -> str | None:
    t = state.start_time
    parts = {
        "iso_datetime": t.replace(tzinfo=None).isoformat(timespec="seconds"),
        "iso_date": t.date().isoformat(),
        "timestamp_ms": str(int(t.timestamp() * 1000)),
        "year": str(t.year),
        "month": str(t.month),
        "day": str(t.day),
        "hour": str(t.hour),
        "minute": str(t.minute),
        "second": str(t.second),
        "is_weekday": "true" if t.weekday() < 5 else "false",
        "iso_weekday": str(t.isoweekday()),
    }
    return parts.get(part)


def _value(state: JobRunState, task_key: str, name: str) -> str | None:
    simple = {
        "job.id": state.job_name,
        "job_id": state.job_name,
        "job.name": state.job.name or state.job_name,
        "job.run_id": state.run_id,
        "run_id": state.run_id,
        "parent_run_id": state.run_id,
        "task.name": task_key,
        "task_key": task_key,
        "task.run_id": f"{state.run_id}:{task_key}",
    }
    if name in simple:
        return simple[name]
    parts = name.split(".")
    if name.startswith("job.parameters.") and len(parts) == 3:
        return state.parameters.get(parts[2])
    if name.startswith("job.start_time.") and len(parts) == 3:
        return _start_time(state, parts[2])
    if parts[0] == "tasks" and len(parts) == 4 and parts[2] == "values":
        if not state.values.has(parts[1], parts[3]):
            return None
        value = state.values.get(parts[1], parts[3])
        return value if isinstance(value, str) else json.dumps(value)
    if parts[0] == "tasks" and len(parts) == 3 and parts[2] == "run_id":
        return f"{state.run_id}:{parts[1]}"
    return None


def resolve(text: str, state: JobRunState, task_key: str) -> str:
    """``text`` with every ``{{...}}`` replaced; an unknown one fails naming the task."""

    def replace(match: re.Match[str]) -> str:
        value = _value(state, task_key, match.group(1))
        if value is None:
            raise LakehouseError(
                f"task {task_key}: unknown reference {match.group(0)} "
                f"({_hint(state, match.group(1))})"
            )
        return value

    return _REFERENCE.sub(replace, text)


def _hint(state: JobRunState, name: str) -> str:
    if name.startswith("job.parameters."):
        return f"job parameters: {', '.join(sorted(state.parameters)) or 'none'}"
    if name.startswith("tasks."):
        return "no such task value set by an upstream task"
    return "see the dynamic value references of Databricks jobs"


def resolve_all(value: Any, state: JobRunState, task_key: str) -> Any:
    """``value`` (a string, list or mapping of them) with its references resolved."""
    if isinstance(value, str):
        return resolve(value, state, task_key)
    if isinstance(value, list):
        return [resolve_all(v, state, task_key) for v in value]
    if isinstance(value, Mapping):
        return {k: resolve_all(v, state, task_key) for k, v in value.items()}
    return value
