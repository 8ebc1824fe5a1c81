"""Crash matrix: SIGKILL the demo run at a task boundary and right after each commit kind,
re-run, and the data root ends exactly as after one clean run.

The kill points are hit deterministically with ``LAKEHOUSE_CRASH_AT`` (see
:mod:`lakehouse.runtime.crash`): the registry registers a version and moves its aliases
milliseconds apart, so no outside observer can kill the run between the two.

To stay within CI time (one demo run is ~50 s on two cores) the cases run as two chains
on two data roots, and share one clean baseline (the session's uninterrupted demo run,
``demo_job_on_sail``, which other tests read too). In a chain the run that recovers from one
kill is itself killed at a later point, and the last run is clean; every kill is recovered
by the next run, and the chain's end state is compared with the baseline:

- chain A: ``task:build_gold`` (task boundary) -> ``model:registered`` (model version
  created, no alias yet) -> clean run.
- chain B: ``commit:lakehouse.meta.processed_files`` (the ingest ledger, right after the
  customers drop was recorded) -> ``commit:lakehouse.bronze.orders`` (a data commit whose
  files are not in the ledger yet) -> ``model:champion`` (``@champion`` moved, the version
  not yet marked complete) -> clean run.

Compared: the row count of every catalog table (Bronze, Silver, Gold and the two ledgers
``meta.processed_files`` and ``meta.http_responses``; the other ``meta`` tables log runs
and differ by design), no duplicate API events, one registered version with
``@champion`` and ``@challenger`` (no duplicate registration for the same data), the
predictions made by that champion, and each killed run recorded ABANDONED in the run log
(what ``lakehouse runs`` shows; its rendering is tested in ``tests/bundle/test_runner.py``)
and, when it was killed inside a task, that task ABANDONED in ``meta.job_runs``.

Measured: the whole module (baseline + 7 runs, 5 of them killed) took 6.5 min on a
2-core machine shared with other test runs (a clean demo run there: 50-95 s).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.runlog import RunLog
from lakehouse.config import load_project
from lakehouse.io.delta import DeltaStore
from tests.conftest import DemoJobRun
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[2]
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
LEDGERS = ("lakehouse.meta.processed_files", "lakehouse.meta.http_responses")
CHAINS = {
    "A": ["task:build_gold", "model:registered"],
    "B": [
        "commit:lakehouse.meta.processed_files",
        "commit:lakehouse.bronze.orders",
        "model:champion",
    ],
}


@dataclass(frozen=True)
class EndState:
    """What a data root holds after the demo job, for comparison with a clean run."""

    rows: dict[str, int]
    distinct_events: int
    versions: list[str]
    aliases: dict[str, str]
    predicted_by: list[str]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _demo(project_dir: Path, data_root: Path, crash_at: str | None = None) -> None:
    """One ``lakehouse run demo``: killed at ``crash_at``, or clean (and successful)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_"))
    }
    env["LAKEHOUSE_VAR_data_root"] = str(data_root)
    env["LAKEHOUSE_VAR_sample_api_port"] = str(_free_port())
    if crash_at:
        env["LAKEHOUSE_CRASH_AT"] = crash_at
    done = subprocess.run(
        [LAKEHOUSE, "run", "demo", "--project-dir", str(project_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    expected = -signal.SIGKILL if crash_at else 0
    assert done.returncode == expected, (crash_at, done.stdout[-2000:], done.stderr[-2000:])


def _end_state(spark: SparkSession, project_dir: Path, data_root: Path) -> EndState:
    from mlflow.tracking import MlflowClient

    project = load_project(project_dir, var_overrides={"data_root": str(data_root)})
    tables = DeltaStore(spark, project, session_engine(spark))
    names = [n for n in project.tables if ".meta." not in n or n in LEDGERS]
    uri = f"sqlite:///{data_root / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name = 'churn_model'")
    predictions = tables.read("lakehouse.gold.churn_predictions")
    return EndState(
        rows={name: tables.row_count(name) for name in sorted(names)},
        distinct_events=tables.read("lakehouse.bronze.events")
        .select("event_id")
        .distinct()
        .count(),
        versions=sorted(str(v.version) for v in versions),
        aliases={a: str(v) for a, v in client.get_registered_model("churn_model").aliases.items()},
        predicted_by=sorted(
            str(r[0]) for r in predictions.select("model_version").distinct().collect()
        ),
    )


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, root / name)
    return root


@pytest.fixture(scope="module")
def clean(spark: SparkSession, demo_job_on_sail: DemoJobRun) -> Any:
    """The baseline every chain is compared with: one uninterrupted demo run (the session's
    ``demo_job_on_sail``, read only)."""
    return _end_state(spark, demo_job_on_sail.project_dir, demo_job_on_sail.data_root)


def _job_runs(spark: SparkSession, project_dir: Path, data_root: Path) -> dict[str, set[str]]:
    project = load_project(project_dir, var_overrides={"data_root": str(data_root)})
    rows = DeltaStore(spark, project, session_engine(spark)).read("lakehouse.meta.job_runs")
    out: dict[str, set[str]] = {}
    for r in rows.collect():
        out.setdefault(r["run_id"], set()).add(r["status"])
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_killed_runs_rerun_to_the_clean_end_state(
    spark: SparkSession, project_dir: Path, clean: EndState, tmp_path: Path, chain: str
) -> None:
    data_root = tmp_path / "data"
    for point in CHAINS[chain]:
        _demo(project_dir, data_root, crash_at=point)
    _demo(project_dir, data_root)

    assert clean.versions == ["1"] and clean.aliases == {"champion": "1", "challenger": "1"}
    assert clean.distinct_events == clean.rows["lakehouse.bronze.events"] == 500
    assert _end_state(spark, project_dir, data_root) == clean

    entries = sorted(RunLog(data_root).entries().values(), key=lambda e: e.started)
    assert [e.status for e in entries] == ["ABANDONED"] * len(CHAINS[chain]) + ["SUCCESS"]
    recorded = _job_runs(spark, project_dir, data_root)
    for killed, point in zip(entries[:-1], CHAINS[chain], strict=True):
        # killed inside a task: that task is recorded ABANDONED (by the next run)
        in_task = not point.startswith("task:")
        assert ("ABANDONED" in recorded.get(killed.run_id, set())) == in_task, point
    assert recorded[entries[-1].run_id] == {"SUCCESS"}
