"""``condition_task`` outcomes and ``run_if``: which tasks run, which are skipped or excluded.

Comparisons follow Databricks: ``EQUAL_TO``/``NOT_EQUAL`` compare the operands as strings
(``12.0 == 12`` is false); the ordering operators compare them as numbers.

``run_if`` is decided once all dependencies finished. A dependency with an ``outcome`` whose
condition task ended the other way is *excluded*; excluded dependencies are left out, and a
task whose dependencies are all excluded is excluded too. A task whose ``run_if`` is not
met is ``SKIPPED`` (Databricks "Upstream failed") for ALL_SUCCESS, AT_LEAST_ONE_SUCCESS and
NONE_FAILED, and ``EXCLUDED`` for AT_LEAST_ONE_FAILED and ALL_FAILED (treated as success).
"""

from __future__ import annotations

from lakehouse.config.jobs import Job, Task
from lakehouse.config.tasks import ConditionOp
from lakehouse.core.errors import ConfigError, LakehouseError

FAILED_STATES = {"FAILED", "TIMED_OUT", "SKIPPED"}
"""States a dependency counts as failed in (SKIPPED is Databricks' "Upstream failed")."""


def _number(text: str, op: str, task_key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise LakehouseError(
            f"task {task_key}: condition {op} compares numbers; {text!r} is not a number"
        ) from None


def evaluate(op: ConditionOp, left: str, right: str, task_key: str) -> bool:
    """The outcome of ``left <op> right``."""
    if op == "EQUAL_TO":
        return left == right
    if op == "NOT_EQUAL":
        return left != right
    a, b = _number(left, op, task_key), _number(right, op, task_key)
    return {
        "GREATER_THAN": a > b,
        "GREATER_THAN_OR_EQUAL": a >= b,
        "LESS_THAN": a < b,
        "LESS_THAN_OR_EQUAL": a <= b,
    }[op]


def decide(
    task: Task, done: dict[str, str], outcomes: dict[str, str], selected: set[str]
) -> tuple[str, str]:
    """``("RUN", "")``, ``("SKIPPED", why)`` or ``("EXCLUDED", why)`` once deps finished."""
    states: dict[str, str] = {}
    excluded: list[str] = []
    for dep in task.depends_on:
        if dep.task_key not in selected:
            continue  # not part of this run (--only / --from): assumed done
        status = done[dep.task_key]
        if status == "EXCLUDED" or (
            dep.outcome is not None
            and status == "SUCCESS"
            and outcomes.get(dep.task_key) != dep.outcome
        ):
            excluded.append(dep.task_key)
        else:
            states[dep.task_key] = status
    if not states:
        if excluded:
            return "EXCLUDED", f"excluded upstream: {', '.join(excluded)}"
        return "RUN", ""
    failed = [k for k, s in states.items() if s in FAILED_STATES]
    succeeded = [k for k, s in states.items() if s in ("SUCCESS",)]
    met = {
        "ALL_SUCCESS": not failed,
        "AT_LEAST_ONE_SUCCESS": bool(succeeded),
        "NONE_FAILED": not failed,
        "ALL_DONE": True,
        "AT_LEAST_ONE_FAILED": bool(failed),
        "ALL_FAILED": len(failed) == len(states),
    }[task.run_if]
    if met:
        return "RUN", ""
    if task.run_if in ("AT_LEAST_ONE_FAILED", "ALL_FAILED"):
        return "EXCLUDED", f"run_if {task.run_if} not met"
    return "SKIPPED", f"upstream failed: {', '.join(failed) or 'none succeeded'}"


def check_outcomes(job: Job, job_name: str) -> None:
    """``depends_on[].outcome`` only names condition tasks (as Databricks requires)."""
    conditions = {t.task_key for t in job.tasks if t.condition_task is not None}
    for task in job.tasks:
        for n, dep in enumerate(task.depends_on):
            if dep.outcome is not None and dep.task_key not in conditions:
                raise ConfigError(
                    "bundle",
                    f"resources.jobs.{job_name}.tasks[{task.task_key}].depends_on[{n}].outcome",
                    f"{dep.task_key!r} is not a condition_task (only those have an outcome)",
                )
