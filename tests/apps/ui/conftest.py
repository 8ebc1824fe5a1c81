"""The UI against a real serving API, a temp MLflow registry and governed Delta tables.

Builds on the serving fixtures (demo project, Silver/Gold, registry with v1 @champion and v2
@challenger). On top: Gold is rebuilt once (in full) through the governed adapter so ``meta.lineage``
has edges; ``meta.model_monitoring`` gets three days of known drift and quality rows (the
monitoring job's columns); the serving API and the UI run on free loopback ports for the
whole module. A second UI runs on a catalog without the monitoring table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.apps.serving.app import create_app as create_serving_app
from lakehouse.apps.serving.server import running_server
from lakehouse.apps.ui.app import create_app as create_ui_app
from lakehouse.apps.ui.server import running_ui
from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import load_project
from lakehouse.config.project import Project
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.governance.scope import resolve_principal
from lakehouse.governance.store import GovernedStore, governed_tables
from lakehouse.pipelines.gold import build_gold
from tests.apps.serving.conftest import MODEL, NAME, Registry, registry  # noqa: F401  (fixture)
from tests.pipelines.ml.conftest import churn_project  # noqa: F401  (fixture)
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[3]

# PSI of two features over three daily monitoring runs (well before any real run of the
# monitoring job); tenure_days drifts on the last day
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).replace(
    tzinfo=None, hour=6, minute=0, second=0, microsecond=0
)
PSI = {"tenure_days": [0.02, 0.05, 0.31], "total_spend": [0.01, 0.03, 0.04]}
PSI_THRESHOLD = 0.2


def monitoring_rows() -> list[tuple[Any, ...]]:
    rows = []
    for day in range(3):
        at = T0 + dt.timedelta(days=day)
        run = f"mon-{day}"
        window = (at - dt.timedelta(days=1), at)
        for feature, values in PSI.items():
            value = values[day]
            rows.append(
                (at, run, NAME, "1", "drift", feature, "psi", value, PSI_THRESHOLD,
                 value > PSI_THRESHOLD, *window, 300, 100 + day, json.dumps({"bins": 10}))
            )  # fmt: skip
        rows.append(
            (at, run, NAME, "1", "quality", "customers_valid_email", "pass_rate", 0.97, 0.95,
             False, *window, None, 1000, None)
        )  # fmt: skip
    return rows


@dataclass
class UiStack:
    registry: Registry
    project: Project
    tables: GovernedStore
    serving_url: str
    ui_url: str
    bare_ui_url: str  # a UI whose catalog has no monitoring table


@pytest.fixture(scope="module")
def ui_stack(
    spark: SparkSession,
    registry: Registry,  # noqa: F811
    churn_project: Path,  # noqa: F811
) -> Iterator[UiStack]:
    overrides = {
        "data_root": str(churn_project / "data"),
        "mlflow_tracking_uri": str(registry.project.variables["mlflow_tracking_uri"]),
    }
    project = load_project(churn_project, var_overrides=overrides)
    name = system_table_name(project.catalog.name, SystemTable.MODEL_MONITORING)

    principal = resolve_principal(project)
    tables = governed_tables(
        spark,
        project,
        session_engine(spark),
        principal=principal,
        run_id="r-ui-test",
        job="ui-test",
    )
    with tables.task_scope("build_gold"):
        tables.register_all()
        report = RunReport(
            job="ui-test", run_id="r-ui-test", target="local", engine=session_engine(spark)
        )
        # --full-refresh: the inputs did not change since the fixtures built Gold, and a
        # query-built table would skip the refresh (and record no lineage)
        build_gold(
            TaskContext(
                spark,
                project,
                tables,
                report,
                task_key="build_gold",
                parameters=["--full-refresh"],
            )
        )
        tables.append(name, spark.createDataFrame(monitoring_rows(), tables.schema(name)))

    bare = load_project(churn_project, var_overrides=overrides)
    bare.tables.pop(name)  # a catalog from before the monitoring job
    bare_tables = governed_tables(
        spark, bare, session_engine(spark), principal=principal, run_id="r-ui-bare", job="ui-test"
    )
    serving = create_serving_app(registry.project, MODEL, log_predictions=False)
    with running_server(serving) as serving_url:
        ui = create_ui_app(project, MODEL, serving_url=serving_url, tables=tables)
        bare_ui = create_ui_app(bare, MODEL, serving_url=serving_url, tables=bare_tables)
        with running_ui(ui) as ui_url, running_ui(bare_ui) as bare_url:
            yield UiStack(registry, project, tables, serving_url, ui_url, bare_url)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots: ``$LAKEHOUSE_TEST_ARTIFACTS`` or build/test-artifacts."""
    path = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
