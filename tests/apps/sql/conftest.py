"""A demo project with Gold built once per module, and the SQL endpoint serving it.

The copied catalog masks two Gold columns (``customer_features.customer_id`` hashed,
``customer_features.region`` redacted) so the endpoint's masks are tested on Gold tables.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyspark.sql import SparkSession

from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.config import load_project
from lakehouse.config.project import Project
from lakehouse.governance.scope import GovernanceScope
from lakehouse.io.delta import DeltaStore
from tests.conftest import copy_project
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[3]
PSQL = shutil.which("psql") or "/usr/bin/psql"
MASKS = {"customer_id": "hash", "region": "redact"}


def _mask_gold_columns(catalog_file: Path) -> None:
    doc = yaml.safe_load(catalog_file.read_text())
    table = doc["catalog"]["schemas"]["gold"]["tables"]["customer_features"]
    for column in table["columns"]:
        if column["name"] in MASKS:
            column["mask"] = MASKS[column["name"]]
    catalog_file.write_text(yaml.safe_dump(doc, sort_keys=False))


def load(root: Path) -> Project:
    return load_project(root, var_overrides={"data_root": str(root / "data")})


@pytest.fixture(scope="session")
def built_sql_project(built_demo_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bundle with Bronze, Silver and Gold built (a copy of the session's build) and
    masked Gold columns, once per session; each test module gets its own copy
    (:func:`sql_project`). Masks apply when a governed reader reads, so the tables are the
    same as if they had been built with the masked catalog."""
    root = copy_project(built_demo_project, tmp_path_factory.mktemp("sqlproj") / "project")
    _mask_gold_columns(root / "conf" / "catalog.yml")
    return root


@pytest.fixture(scope="module")
def sql_project(built_sql_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built demo project for one test module (its tests may write to it)."""
    root = tmp_path_factory.mktemp("sqlproj") / "project"
    shutil.copytree(built_sql_project, root, symlinks=True)
    return root


@pytest.fixture(scope="module")
def tables(spark: SparkSession, sql_project: Path) -> DeltaStore:
    """An ungoverned Delta store on the built project (writes, Spark-side reads)."""
    adapter = DeltaStore(spark, load(sql_project), session_engine(spark))
    adapter.register_all()
    return adapter


def start_endpoint(root: Path, principal: str, **kwargs: Any) -> SqlEndpoint:
    project = load(root)
    governance = GovernanceScope(project, principal, run_id="r-sql", job="sql-serve")
    return SqlEndpoint(project, governance, port=0, **kwargs).start()


@pytest.fixture(scope="module")
def endpoint(sql_project: Path) -> Iterator[SqlEndpoint]:
    """The endpoint as bi-reader over the gold and silver schemas, on a free loopback port."""
    ep = start_endpoint(sql_project, "bi-reader", schemas=["gold", "silver"])
    yield ep
    ep.stop()


def psql(endpoint: SqlEndpoint, sql: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` through the real psql client (CSV output, errors stop it)."""
    return subprocess.run(
        [PSQL, "-X", "-v", "ON_ERROR_STOP=1", "--csv", *extra, "-c", sql, endpoint.info.url()],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"},
    )
