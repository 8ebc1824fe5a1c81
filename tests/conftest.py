"""Shared fixtures: one session per engine per pytest process, small temporary projects.

Two pytest invocations, because a Spark Connect and a classic session cannot share a process:

* ``pytest --engine sail`` (default): everything except the ``jvm`` tests, on the embedded
  engine.
* ``pytest --engine spark -m "transform or delta or jvm"``: the pure transforms, every
  in-process Delta test and the JVM-only tests (demo job on JVM Spark, cross-engine tables,
  standalone cluster, Spark Connect server), on classic JVM Spark with delta-spark. The Delta
  jars come from ``$LAKEHOUSE_DELTA_JARS`` (``make jars`` puts them in ``build/jars/delta``)
  or, without it, from Maven Central through ``spark.jars.packages``. A ``delta`` or
  ``transform`` test that uses none of the engine fixtures (``spark``, ``engine_session``,
  ``engine_kind``, ``engine_name``) would run the same here: it runs only in the first.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import load_project
from lakehouse.config.bundle_spec import EngineSpec
from lakehouse.engine import EngineKind, EngineSession, build_session
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.gold import build_gold
from lakehouse.pipelines.silver.refine import refine_table
from lakehouse.samples.generator import land_sample_files
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[1]
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
DATA = Path(__file__).resolve().parent / "data"
# The markers a test needs to run in the `--engine spark` invocation.
JVM_MARKERS = {"transform", "delta", "jvm"}
# The fixtures through which a test meets the engine chosen with --engine (transitively).
ENGINE_FIXTURES = {"spark", "engine_session", "engine_kind", "engine_name"}
# Settings that make JVM Delta quick on small test tables (Delta's defaults are for clusters:
# 50 partitions to read a table's log, 200 shuffle partitions).
JVM_TEST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    "spark.ui.enabled": "false",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=["sail", "spark"],
        default="sail",
        help="engine for the session fixtures (sail: all but -m jvm; spark: -m 'transform or delta or jvm')",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--engine") == "sail":
        skip = pytest.mark.skip(reason="needs JVM Spark with Delta: run with --engine spark")
        for item in items:
            if "jvm" in item.keywords:
                item.add_marker(skip)
        return
    skip = pytest.mark.skip(reason="runs once, in the embedded-engine invocation (--engine sail)")
    for item in items:
        if not JVM_MARKERS & set(item.keywords):
            item.add_marker(skip)
        elif "jvm" not in item.keywords and not ENGINE_FIXTURES & set(item.fixturenames):
            # a `delta`/`transform` test that never touches the session (a whole module is
            # marked, a CLI subprocess on the default engine) would run the same twice
            item.add_marker(skip)
        elif "sail_only" in item.keywords:
            reason = item.get_closest_marker("sail_only")
            why = reason.args[0] if reason and reason.args else "Sail-only behaviour"
            item.add_marker(pytest.mark.skip(reason=f"Sail only: {why}"))


@pytest.fixture(scope="session")
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--engine"))


def jvm_test_spec(**overrides: object) -> EngineSpec:
    """The JVM engine the tests run on: local[2] with delta-spark, small partition counts."""
    return EngineSpec.model_validate(
        {"kind": "spark", "master": "local[2]", "conf": dict(JVM_TEST_CONF), **overrides}
    )


@pytest.fixture(scope="session")
def engine_session(
    engine_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineSession]:
    warehouse = tmp_path_factory.mktemp("warehouse")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if engine_name == "sail":
        session = build_session(EngineSpec(kind="sail"), warehouse_dir=warehouse)
    else:
        session = build_session(
            jvm_test_spec(), warehouse_dir=warehouse, log_dir=warehouse.parent / "logs"
        )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark(engine_session: EngineSession) -> SparkSession:
    """The session for the engine chosen with --engine."""
    return engine_session.spark


@pytest.fixture(scope="session")
def engine_kind(engine_session: EngineSession) -> EngineKind:
    """``sail`` or ``spark``: what the tables adapter and run reports are told."""
    return engine_session.kind


@pytest.fixture()
def demo_project_dir(tmp_path: Path) -> Path:
    """A copy of the repository's bundle (bundle.yml, conf/, jobs/) in a temp directory."""
    for name in ("bundle.yml",):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, tmp_path / name)
    return tmp_path


@pytest.fixture(scope="session")
def built_demo_project(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bundle in a git work tree with the demo Bronze, Silver and Gold tables built
    in-process (files landed, ingested, refined, Gold built), once per session.

    Read-only: tests take a copy (``churn_project`` per module, ``built_sql_project``), so
    one module's writes never reach another. Copies keep working because Delta logs name
    their files relative to the table and the catalog comes from the copy's ``data_root``.
    """
    root = tmp_path_factory.mktemp("demo-built")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, root / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "fixture"], cwd=root, check=True)
    project = load_project(root, var_overrides={"data_root": str(root / "data")})
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="test", run_id="r-test", target="local", engine=session_engine(spark))
    ctx = TaskContext(spark, project, tables, report, task_key="build")
    land_sample_files(root / "data" / "landing")
    for source in ("customers_drop", "orders_drop"):
        ingest_source(ctx, source)
    for table in ("lakehouse.silver.customers", "lakehouse.silver.orders"):
        refine_table(ctx, table)
    build_gold(ctx)
    return root


def copy_project(source: Path, target: Path) -> Path:
    """A copy of a built project directory (its tables, landing files and git work tree)."""
    shutil.copytree(source, target, symlinks=True)
    return target


@dataclass(frozen=True)
class DemoJobRun:
    """A finished ``lakehouse run demo``: the bundle copy it ran from and its data root."""

    project_dir: Path
    data_root: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def demo_job_on_sail(tmp_path_factory: pytest.TempPathFactory) -> DemoJobRun:
    """``lakehouse run demo`` on the embedded engine through the CLI, once per session, from a
    copy of the repository's bundle into its own data root.

    Read-only for its users: the JVM demo test compares the JVM run's tables with it, the
    notebooks read it. (Tests that run the demo job again on a data root, or change it, run
    their own.) The CLI gets none of this process's ``LAKEHOUSE_``/Spark/MLflow settings, so
    it runs on the bundle's default target whatever the invocation's engine.
    """
    work = tmp_path_factory.mktemp("demo-on-sail")
    project_dir, data_root = work / "project", work / "data"
    project_dir.mkdir()
    shutil.copy(REPO / "bundle.yml", project_dir / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, project_dir / name)
    cleared = ("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    env["LAKEHOUSE_VAR_data_root"] = str(data_root)
    env["LAKEHOUSE_VAR_sample_api_port"] = str(free_port())
    done = subprocess.run(
        [LAKEHOUSE, "run", "demo", "--project-dir", str(project_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return DemoJobRun(project_dir, data_root)
