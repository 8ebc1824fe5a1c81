"""Shared fixtures: one session per engine per pytest process, small temporary projects.

``pytest --engine sail`` (default) runs everything on the embedded engine; ``pytest
--engine spark -m transform`` runs the pure-transform tests on classic JVM Spark. The two
cannot share a process (a Spark Connect and a classic session cannot coexist).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config.models import EngineSpec
from lakehouse.engine import EngineSession, build_session

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=["sail", "spark"],
        default="sail",
        help="engine for the session fixtures (sail: everything; spark: -m transform tests)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--engine") == "sail":
        return
    skip = pytest.mark.skip(reason="needs the embedded engine; run without --engine spark")
    for item in items:
        if "transform" not in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--engine"))


@pytest.fixture(scope="session")
def engine_session(
    engine_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineSession]:
    warehouse = tmp_path_factory.mktemp("warehouse")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if engine_name == "sail":
        session = build_session(EngineSpec(kind="sail"), warehouse_dir=warehouse)
    else:
        spec = EngineSpec(
            kind="spark",
            master="local[2]",
            conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"},
        )
        session = build_session(spec, warehouse_dir=warehouse, delta=False)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark(engine_session: EngineSession) -> SparkSession:
    """The session for the engine chosen with --engine."""
    return engine_session.spark


@pytest.fixture()
def demo_project_dir(tmp_path: Path) -> Path:
    """A copy of the repository's bundle (bundle.yml, conf/, jobs/) in a temp directory."""
    for name in ("bundle.yml",):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, tmp_path / name)
    return tmp_path
