"""Runs inside a notebook task's kernel: defines ``spark``, ``dbutils`` and ``display``.

The first (hidden) cell of an executed notebook calls :func:`bootstrap` with the task's
settings. On Sail (and any Spark Connect engine) the kernel attaches to the run's own
Connect session (``sc://host:port/;session_id=<the run's>``): same catalog, same temporary
views, so tables the notebook writes are there for the next task. On JVM Spark the kernel
starts a session of its own and registers the catalog's existing tables.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from lakehouse.bundle.tasks.dbutils import DBUtils
from lakehouse.bundle.tasks.state import TaskValues


def _spark(settings: dict[str, Any]) -> Any:
    from pyspark.sql import SparkSession

    if settings.get("remote"):
        os.environ["SPARK_REMOTE"] = settings["remote"]
        os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
        shared = SparkSession.builder.getOrCreate()
        # the session is the run's: stopping it here would end it for every task
        shared.stop = lambda: None  # type: ignore[method-assign]
        return shared
    builder = SparkSession.builder.master(settings.get("master") or "local[*]")
    for key, value in (settings.get("conf") or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    register_tables(spark, settings.get("tables") or [])
    return spark


def managed_tables(warehouse: Path) -> list[tuple[str, str]]:
    """``(name, location)`` of the Delta tables under a warehouse folder (``t``, ``db.db/t``)."""
    found: list[tuple[str, str]] = []
    if not warehouse.is_dir():
        return found
    for log in sorted(warehouse.glob("*/_delta_log")) + sorted(warehouse.glob("*.db/*/_delta_log")):
        table = log.parent
        schema = table.parent.name.removesuffix(".db") if table.parent != warehouse else ""
        found.append((f"{schema}.{table.name}" if schema else table.name, str(table)))
    return found


def register_tables(spark: Any, tables: list[tuple[str, str]]) -> None:
    """``CREATE TABLE IF NOT EXISTS`` each ``(name, location)`` Delta table in ``spark``."""
    for name, location in tables:
        if "." in name:
            spark.sql(f"CREATE SCHEMA IF NOT EXISTS {name.rsplit('.', 1)[0]}")
        spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING delta LOCATION '{location}'")


def display(obj: Any = None, *args: Any, **kwargs: Any) -> None:
    """Databricks' ``display``: a DataFrame shows as a table (first 1000 rows)."""
    from IPython import display as ipython

    ipython_display: Any = ipython.display

    if hasattr(obj, "toPandas") and hasattr(obj, "limit"):
        ipython_display(obj.limit(1000).toPandas())
    else:
        ipython_display(obj, *args, **kwargs)


def split_sql(text: str) -> list[str]:
    """SQL statements of a ``%sql`` cell, split on ``;`` outside quotes and comments."""
    statements: list[str] = []
    current: list[str] = []
    quote = ""
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    for ch in "\n".join(lines):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            statements.append("".join(current))
            current = []
            continue
        current.append(ch)
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def bootstrap(settings: dict[str, Any]) -> dict[str, Any]:
    """The globals a Databricks notebook expects: ``spark``, ``sc``-less, ``dbutils``..."""
    spark = _spark(settings)
    dbutils = DBUtils(
        settings["task_key"], TaskValues(Path(settings["run_folder"])), settings["widgets"]
    )

    def run_sql(text: str) -> Any:
        result = None
        for statement in split_sql(text):
            result = spark.sql(statement)
        if result is not None:
            display(result)
        return result

    def run_shell(text: str) -> None:
        done = subprocess.run(text, shell=True, capture_output=True, text=True, check=False)
        print(done.stdout, end="")
        if done.returncode != 0:
            raise RuntimeError(
                f"%sh exited with {done.returncode}: {done.stderr.strip()[-500:]}".strip()
            )

    return {
        "spark": spark,
        "dbutils": dbutils,
        "display": display,
        "displayHTML": lambda html: display(_html(html)),
        "getArgument": dbutils.widgets.getArgument,
        "_lakehouse_sql": run_sql,
        "_lakehouse_sh": run_shell,
    }


def _html(text: str) -> Any:
    from IPython import display as ipython

    html: Any = ipython.HTML
    return html(re.sub(r"<script.*?</script>", "", text, flags=re.S))
