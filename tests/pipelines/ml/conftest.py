"""A demo project with Silver and Gold (built once per session, copied per module), and a fresh
MLflow per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import load_project
from lakehouse.io.delta import DeltaStore
from tests.conftest import copy_project
from tests.support import session_engine

ContextFactory = Callable[..., TaskContext]


def _context(spark: SparkSession, root: Path, overrides: dict[str, str]) -> TaskContext:
    project = load_project(root, var_overrides=overrides)
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="test", run_id="r-test", target="local", engine=session_engine(spark))
    return TaskContext(spark, project, tables, report, task_key="train_model")


@pytest.fixture(scope="module")
def churn_project(built_demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bundle in a git work tree, with demo Bronze, Silver and Gold tables built:
    this module's own copy of the session's build (its tests may write to it)."""
    return copy_project(built_demo_project, tmp_path_factory.mktemp("churn") / "project")


@pytest.fixture()
def ml_context(
    spark: SparkSession, churn_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ContextFactory:
    """``ml_context()`` -> a TaskContext on the built project with this test's own MLflow."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    overrides = {
        "data_root": str(churn_project / "data"),
        "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }

    def make() -> TaskContext:
        return _context(spark, churn_project, overrides)

    return make
