"""A demo project with Silver and Gold built once per module, and a fresh MLflow per test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import load_project
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.gold import build_gold
from lakehouse.pipelines.silver.refine import refine_table
from lakehouse.samples.generator import land_sample_files
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[3]
ContextFactory = Callable[..., TaskContext]


def _context(spark: SparkSession, root: Path, overrides: dict[str, str]) -> TaskContext:
    project = load_project(root, var_overrides=overrides)
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="test", run_id="r-test", target="local", engine=session_engine(spark))
    return TaskContext(spark, project, tables, report, task_key="train_model")


@pytest.fixture(scope="module")
def churn_project(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bundle in a git work tree, with demo Bronze, Silver and Gold tables built."""
    root = tmp_path_factory.mktemp("churn")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, root / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "fixture"], cwd=root, check=True)
    ctx = _context(spark, root, {"data_root": str(root / "data")})
    land_sample_files(root / "data" / "landing")
    for source in ("customers_drop", "orders_drop"):
        ingest_source(ctx, source)
    for table in ("lakehouse.silver.customers", "lakehouse.silver.orders"):
        refine_table(ctx, table)
    build_gold(ctx)
    return root


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
