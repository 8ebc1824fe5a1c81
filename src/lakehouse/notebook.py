"""A lakehouse handle for notebooks: project, session and governed tables in one call.

In a notebook (Jupyter, VS Code, a JVM kernel with ``spark`` already defined)::

    from lakehouse.notebook import open_lakehouse

    lh = open_lakehouse("..")                     # the directory holding bundle.yml
    lh.read("gold.daily_sales")                  # governed read (SELECT + column masks)
    lh.read("silver.orders", version=1)          # time travel
    lh.history("silver.orders")                  # commits as a pandas DataFrame
    lh.spark.sql("SELECT ...")                   # plain Spark SQL on the registered tables
    lh.stop()

Reads act as a principal exactly like the CLI: ``principal=`` / ``LAKEHOUSE_PRINCIPAL``, else
the bundle's ``run_as``, else the OS user; every decision is audited under the job name
``notebook``. Bundle variables come from ``variables=`` or ``LAKEHOUSE_VAR_<name>``, so a
notebook run by CI or papermill can point at another data root without editing it.
Plain ``spark.sql`` on registered names is not checked: enforcement lives in the
project's access path (:meth:`Lakehouse.read`), as docs/governance.md explains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config.loader import load_project
from lakehouse.config.project import Project
from lakehouse.engine import EngineSession
from lakehouse.io.store import TableStore
from lakehouse.runtime.run import RunAs, RunContext, TaskRun, open_run

NOTEBOOK_JOB = "notebook"


@dataclass
class Lakehouse:
    """One notebook's run (project, engine session, governed table store) and its scope."""

    run: RunContext
    scope: TaskRun

    @property
    def project(self) -> Project:
        return self.run.project

    @property
    def session(self) -> EngineSession:
        return self.run.session

    @property
    def tables(self) -> TableStore:
        return self.run.store

    @property
    def principal(self) -> str:
        return self.run.principal

    @property
    def spark(self) -> SparkSession:
        return self.session.spark

    def full_name(self, name: str) -> str:
        """``catalog.schema.table`` for ``schema.table`` or a full name."""
        parts = name.split(".")
        if len(parts) == 2:
            return f"{self.project.catalog.name}.{name}"
        return name

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """A catalog table (latest or at ``version``), checked and masked for the principal."""
        return self.tables.read(self.full_name(name), version=version)

    def history(self, name: str, limit: int | None = None) -> pd.DataFrame:
        """The table's Delta commits, newest first: version, timestamp, operation, metrics."""
        entries = self.tables.history(self.full_name(name), limit=limit)
        return pd.DataFrame(
            {
                "version": [e.version for e in entries],
                "timestamp": pd.to_datetime([e.timestamp_ms for e in entries], unit="ms"),
                "operation": [e.operation for e in entries],
                "metrics": [e.metrics for e in entries],
            }
        )

    def stop(self) -> None:
        """Write the audit and lineage rows of this notebook and stop what it started."""
        try:
            self.scope.close()
        finally:
            self.run.close()

    def __enter__(self) -> Lakehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_lakehouse(
    project_dir: str | Path | None = None,
    *,
    target: str | None = None,
    engine: str | None = None,
    principal: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Lakehouse:
    """Load the bundle, start (or reuse) its engine and register the catalog's tables."""
    project = load_project(
        Path(project_dir) if project_dir is not None else None,
        target=target,
        engine=engine,
        var_overrides={k: str(v) for k, v in (variables or {}).items()},
    )
    run = open_run(project, job=NOTEBOOK_JOB, run_as=RunAs(explicit=principal))
    try:
        scope = run.open_task(NOTEBOOK_JOB, register=True)
    except BaseException:
        run.close()
        raise
    return Lakehouse(run, scope)
