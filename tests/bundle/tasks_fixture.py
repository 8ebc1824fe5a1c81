"""Task functions for runner tests (referenced from a test bundle's python_function_task)."""

from __future__ import annotations

import json
import logging.config
import time

from lakehouse.bundle.context import TaskContext


def _log(ctx: TaskContext, event: str) -> None:
    path = ctx.project.data_root / "task-log.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps({"task": ctx.task_key, "event": event, "t": time.time()}) + "\n")


def ok(ctx: TaskContext) -> None:
    _log(ctx, "ok")


def flaky(ctx: TaskContext) -> None:
    """Fails on its first attempt, succeeds on the next."""
    _log(ctx, f"attempt {ctx.extra['attempt']}")
    if ctx.extra["attempt"] == 1:
        raise RuntimeError("transient failure (first attempt)")


def broken(ctx: TaskContext) -> None:
    _log(ctx, "broken")
    raise ValueError("this task always fails")


def sleepy(ctx: TaskContext) -> None:
    """Sleeps for the seconds given as its first parameter."""
    _log(ctx, "start")
    time.sleep(float(ctx.parameters[0]))
    _log(ctx, "end")


def reads_a_table(ctx: TaskContext) -> None:
    """Touches the catalog, so access checks and audit rows are attributed to this task."""
    ctx.tables.read("lakehouse.meta.processed_files").count()


def empty_source(ctx: TaskContext) -> None:
    """Counts a source that yielded nothing, as an exhausted HTTP source does."""
    ctx.report.count("source exhausted_api", new=0, rows=0, requests=3)
    ctx.report.count("source busy_drop", new=1, rows=5)


def job_parameters(ctx: TaskContext) -> None:
    """Logs the run's job parameters."""
    _log(ctx, json.dumps(ctx.job_parameters, sort_keys=True))


def slow_broken(ctx: TaskContext) -> None:
    """Fails after the seconds given as its first parameter."""
    _log(ctx, f"attempt {ctx.extra['attempt']}")
    time.sleep(float(ctx.parameters[0]))
    raise ValueError("slow failure")


def engine_error(ctx: TaskContext) -> None:
    """A query that fails while it executes (on a worker in Sail's cluster modes), after a
    logging set-up as uvicorn's (the sample API, serving) does it: ``dictConfig`` with
    ``disable_existing_loggers=False`` enables every existing logger again, Spark Connect's too."""
    _log(ctx, "engine_error")
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    ctx.spark.range(3).selectExpr("raise_error(concat('bad row ', id)) AS x").collect()
