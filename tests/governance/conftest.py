"""The demo bundle run in-process under governance (land, ingest, refine, gold), once per module."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import load_project
from lakehouse.config.project import Project
from lakehouse.governance.store import GovernedStore, governed_tables
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.gold import build_gold
from lakehouse.pipelines.silver.refine import refine_table
from lakehouse.samples.generator import SampleSpec, land_sample_files
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "r-lineage-1"


@dataclass
class DemoRun:
    root: Path
    project: Project
    tables: GovernedStore


@pytest.fixture(scope="module")
def demo_run(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo job's land -> ingest -> refine -> gold tasks, each in its own task scope."""
    root = tmp_path_factory.mktemp("lineage")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, root / name)
    project = load_project(root, var_overrides={"data_root": str(root / "data")})
    tables = governed_tables(
        spark, project, session_engine(spark), principal="lakehouse-job", run_id=RUN_ID, job="demo"
    )
    governance = tables.governance
    assert governance is not None
    report = RunReport(job="demo", run_id=RUN_ID, target="local", engine=session_engine(spark))

    def ctx(task: str) -> TaskContext:
        return TaskContext(spark, project, tables, report, task_key=task)

    with governance.task_scope("register"):
        tables.register_all()
    with governance.task_scope("land_demo_files"):
        land_sample_files(root / "data" / "landing", SampleSpec(customers=200))
    with governance.task_scope("ingest_bronze"):
        for source in ("customers_drop", "orders_drop"):
            ingest_source(ctx("ingest_bronze"), source)
    with governance.task_scope("refine_silver"):
        for table in ("lakehouse.silver.customers", "lakehouse.silver.orders"):
            refine_table(ctx("refine_silver"), table)
    with governance.task_scope("build_gold"):
        build_gold(ctx("build_gold"))
    return DemoRun(root, project, tables)
