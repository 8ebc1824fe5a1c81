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
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.bundle_spec import EngineSpec
from lakehouse.engine import EngineKind, EngineSession, build_session

REPO = Path(__file__).resolve().parents[1]
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
