"""A lakehouse entry point (like jobs/*.py) whose task needs nothing but the session."""

from __future__ import annotations

from lakehouse.bundle.context import TaskContext
from lakehouse.bundle.entrypoint import run_task_script


def TASK(ctx: TaskContext) -> None:  # noqa: N802 - the jobs/ convention
    ctx.spark.range(3).count()


if __name__ == "__main__":
    raise SystemExit(run_task_script(TASK))
