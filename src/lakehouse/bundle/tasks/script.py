"""``spark_python_task`` scripts without ``TASK``, and the run's session for plain PySpark.

A ``jobs/`` script that exposes ``TASK`` keeps running as before (the runner calls
``TASK(ctx)``). Any other Python file is a plain PySpark script: it runs as ``__main__``
with ``sys.argv = [script, *parameters]``, as ``spark-submit``/Databricks run it, and
``SparkSession.builder.getOrCreate()`` / ``SparkSession.getActiveSession()`` in it return
the run's session (see :func:`run_session_active`).
"""

from __future__ import annotations

import ast
import logging
import os
import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lakehouse.bundle.tasks.wheel import call_entry_point
from lakehouse.runtime.run import RunContext

log = logging.getLogger(__name__)
_ENV_LOCK = threading.Lock()
_ENV_USERS = 0
_ENV_SAVED: dict[str, str | None] = {}


def defines_task(script: Path) -> bool:
    """True when the script binds ``TASK`` at top level (a lakehouse jobs/ script)."""
    tree = ast.parse(script.read_text(), filename=str(script))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "TASK" for t in targets):
                return True
        elif (isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == "TASK") or (
            isinstance(node, ast.ImportFrom | ast.Import)
            and any((alias.asname or alias.name) == "TASK" for alias in node.names)
        ):
            return True
    return False


def _is_connect(spark: SparkSession) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


@contextmanager
def run_session_active(spark: SparkSession, remote: str | None) -> Iterator[None]:
    """Make ``spark`` what plain PySpark code in this thread gets from the builder.

    For a Spark Connect session: ``SPARK_REMOTE`` (the run's URL pinned to its session id)
    and ``SPARK_CONNECT_MODE_ENABLED`` are set while any task needs them, and the session
    is made this thread's active one and the default one. A JVM session already is what
    ``getOrCreate`` returns.
    """
    global _ENV_USERS
    if not _is_connect(spark):  # JVM: the builder returns it; make it this thread's active one
        jvm: Any = spark
        jvm._jvm.SparkSession.setActiveSession(jvm._jsparkSession)
        SparkSession._activeSession = spark
        with _stop_ignored(spark):
            yield
        return
    cls = type(spark)
    with _ENV_LOCK:
        if _ENV_USERS == 0:
            for key in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"):
                _ENV_SAVED[key] = os.environ.get(key)
            if remote:
                os.environ["SPARK_REMOTE"] = remote
            os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
        _ENV_USERS += 1
        cls._default_session = spark  # type: ignore[attr-defined]
    cls._active_session.session = spark  # type: ignore[attr-defined]  # thread-local
    try:
        with _stop_ignored(spark):
            yield
    finally:
        cls._active_session.session = None  # type: ignore[attr-defined]
        with _ENV_LOCK:
            _ENV_USERS -= 1
            if _ENV_USERS == 0:
                for key, value in _ENV_SAVED.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


_STOP_LOCK = threading.Lock()
_STOP_USERS: dict[int, int] = {}


def _ignored_stop() -> None:
    log.info("spark.stop() in a task ignored: the run's session outlives its tasks")


@contextmanager
def _stop_ignored(spark: SparkSession) -> Iterator[None]:
    """``spark.stop()`` in task code does nothing while the block runs (scripts often end
    with it; the run's session belongs to the run)."""
    key = id(spark)
    with _STOP_LOCK:
        if _STOP_USERS.get(key, 0) == 0:
            spark.stop = _ignored_stop  # type: ignore[method-assign]
        _STOP_USERS[key] = _STOP_USERS.get(key, 0) + 1
    try:
        yield
    finally:
        with _STOP_LOCK:
            _STOP_USERS[key] -= 1
            if _STOP_USERS[key] == 0:
                del _STOP_USERS[key]
                del spark.stop  # back to the class's method


def run_plain_script(script: Path, parameters: list[str]) -> None:
    """Run ``script`` as ``__main__`` with ``sys.argv = [script, *parameters]``."""
    call_entry_point(
        lambda: runpy.run_path(str(script), run_name="__main__") and None,
        [str(script), *parameters],
        script.name,
    )


def connect_url(run: RunContext) -> str | None:
    """The run's Spark Connect URL pinned to the run's session (None on JVM Spark)."""
    spark = run.spark
    if not _is_connect(spark):
        return None
    connect: Any = spark
    remote = run.session.remote
    if remote is None:  # a session given to the run
        builder = connect.client._builder
        remote = f"sc://{builder.host}:{builder._port}"
    session_id = connect.session_id
    base = remote if "/;" in remote else remote.rstrip("/") + "/"
    return f"{base};session_id={session_id}"
