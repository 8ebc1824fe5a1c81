"""Concurrent runs on one data root: one writes, the others wait (bounded) or are refused."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from lakehouse.bundle.runlog import RunLog
from lakehouse.config import load_project
from lakehouse.io.delta import DeltaStore
from tests.bundle.test_runner import REPO, _cli_env, _log, _task, _wait_for
from tests.support import session_engine

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
JOBS = {
    "holding": {
        "max_concurrent_runs": 1,
        "tasks": [_task("first", "ok"), _task("sleeps", "sleepy", "first", parameters=["15"])],
    },
    "other": {"tasks": [_task("other_ok", "ok")]},
    "later": {"tasks": [_task("later_ok", "ok")]},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bundle(root: Path) -> Path:
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "jobs", root / "jobs")
    bundle = yaml.safe_load((REPO / "bundle.yml").read_text())
    bundle["resources"]["jobs"].update(JOBS)
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    return root


def _start(root: Path, job: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LAKEHOUSE, "bundle", "run", job, "-C", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _last_error(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = process.communicate(timeout=300)
    lines = err.strip().splitlines()
    return process.returncode, lines[-1] if lines else ""


def test_a_second_run_is_refused_or_waits_while_one_holds_the_data_root(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "bundle")
    data_root = tmp_path / "data"
    env = _cli_env(data_root)
    project = load_project(root, var_overrides={"data_root": str(data_root)})
    holder = _start(root, "holding", env)
    _wait_for(lambda: ("sleeps", "start") in {(e["task"], e["event"]) for e in _log(project)})
    [running] = RunLog(data_root).entries().values()

    same_job = _start(root, "holding", env)
    other_job = _start(root, "other", env)
    waiting = _start(root, "later", {**env, "LAKEHOUSE_RUN_LOCK_WAIT_S": "240"})

    code, line = _last_error(same_job)
    assert code == 1
    assert re.fullmatch(
        rf"error: job holding not started: max_concurrent_runs=1 reached on {data_root} "
        rf"\(run {running.run_id} \(job holding, pid {holder.pid}, since [0-9T:-]+\) is running\)",
        line,
    ), line
    code, line = _last_error(other_job)
    assert code == 1
    assert line.startswith(
        f"error: job other not started: data root {data_root} is in use by run {running.run_id} "
    ), line
    assert line.endswith("(waited 0s; set LAKEHOUSE_RUN_LOCK_WAIT_S to wait longer)"), line

    assert _last_error(holder)[0] == 0
    assert _last_error(waiting)[0] == 0, waiting.stderr
    events = [(e["task"], e["event"]) for e in _log(project)]
    # the refused runs ran nothing; the waiting one ran after the holder had finished
    assert events == [("first", "ok"), ("sleeps", "start"), ("sleeps", "end"), ("later_ok", "ok")]
    statuses = sorted((e.job, e.status) for e in RunLog(data_root).entries().values())
    assert statuses == [("holding", "SUCCESS"), ("later", "SUCCESS")]
    assert not os.environ.get("LAKEHOUSE_RUN_LOCK_WAIT_S")


@pytest.mark.e2e
def test_two_demo_runs_started_together_on_one_data_root_land_the_data_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Before the locks both ran: bronze.events got 600 rows instead of 500 and the second
    run failed in MLflow's sqlite migration."""
    project_dir = tmp_path / "bundle"
    project_dir.mkdir()
    shutil.copy(REPO / "bundle.yml", project_dir / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, project_dir / name)
    data_root = tmp_path / "data"
    env = {k: v for k, v in _cli_env(data_root).items() if not k.startswith("PYSPARK_")}
    runs = [
        subprocess.Popen(
            [LAKEHOUSE, "run", "demo", "--project-dir", str(project_dir)],
            env={**env, "LAKEHOUSE_VAR_sample_api_port": str(_free_port())},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = sorted(_last_error(run) for run in runs)
    assert [code for code, _ in outcomes] == [0, 1], outcomes
    assert outcomes[1][1].startswith("error: job demo not started: max_concurrent_runs=1"), outcomes

    project = load_project(project_dir, var_overrides={"data_root": str(data_root)})
    tables = DeltaStore(spark, project, session_engine(spark))
    assert tables.row_count("lakehouse.bronze.events") == 500
    assert tables.row_count("lakehouse.bronze.orders") == 8671
