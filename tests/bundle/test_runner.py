"""The bundle runner: DAG order, retries, timeouts, skipped dependants, run records, webhooks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pyspark.sql import SparkSession

from lakehouse.bundle.runner import run_job, select_tasks
from lakehouse.config import Project, load_project
from lakehouse.config.jobs import Job
from lakehouse.engine import EngineSession
from lakehouse.io.delta import DeltaStore
from tests.support import session_engine

REPO = Path(__file__).resolve().parents[2]
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
FIXTURE = "tests.bundle.tasks_fixture"


def _task(
    key: str, fn: str, *deps: str, parameters: list[str] | None = None, **settings: Any
) -> dict[str, Any]:
    """A python_function_task calling ``tests.bundle.tasks_fixture:<fn>``."""
    call: dict[str, Any] = {"function": f"{FIXTURE}:{fn}"}
    if parameters:
        call["parameters"] = parameters
    task: dict[str, Any] = {"task_key": key, "python_function_task": call, **settings}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


JOBS: dict[str, Any] = {
    "retrying": {
        "tasks": [
            _task("first", "ok"),
            _task("flaky", "flaky", "first", max_retries=2, min_retry_interval_millis=200),
            _task("after", "reads_a_table", "flaky"),
        ]
    },
    "failing": {
        "max_parallel_tasks": 2,
        "tasks": [
            _task("broken", "broken", max_retries=1, min_retry_interval_millis=100),
            _task("downstream", "ok", "broken"),
            _task("further", "ok", "downstream"),
            _task("independent", "ok"),
        ],
    },
    "slow": {
        "tasks": [
            _task("sleeps", "sleepy", timeout_seconds=1, parameters=["4"]),
            _task("never", "ok", "sleeps"),
        ]
    },
    "quiet": {"tasks": [_task("ingest", "empty_source")]},
    "engine_failure": {"tasks": [_task("query", "engine_error")]},
    "holding": {
        "tasks": [_task("first", "ok"), _task("sleeps", "sleepy", "first", parameters=["60"])]
    },
    "parallel": {
        "max_parallel_tasks": 2,
        "tasks": [
            _task("left", "sleepy", parameters=["1.5"]),
            _task("right", "sleepy", parameters=["1.5"]),
            _task("join", "ok", "left", "right"),
        ],
    },
}


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "jobs", root / "jobs")
    bundle = yaml.safe_load((REPO / "bundle.yml").read_text())
    bundle["resources"]["jobs"].update(JOBS)
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    return root


@pytest.fixture()
def project(project_root: Path, tmp_path: Path) -> Project:
    return load_project(project_root, var_overrides={"data_root": str(tmp_path / "data")})


def _log(project: Project) -> list[dict[str, Any]]:
    path = project.data_root / "task-log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _records(spark: SparkSession, project: Project, run_id: str) -> list[tuple[Any, ...]]:
    rows = (
        DeltaStore(spark, project, session_engine(spark))
        .read("lakehouse.meta.job_runs")
        .where(f"run_id = '{run_id}'")
        .select("task", "attempt", "status", "error")
        .collect()
    )
    return sorted(tuple(r) for r in rows)


def test_a_task_that_fails_once_is_retried_and_the_run_succeeds(
    spark: SparkSession, engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "retrying", engine_session, run_id="r-retry")
    assert report.succeeded
    assert [(t.task_key, t.status, t.attempts) for t in report.tasks] == [
        ("first", "SUCCESS", 1),
        ("flaky", "SUCCESS", 2),
        ("after", "SUCCESS", 1),
    ]
    attempts = [e for e in _log(project) if e["task"] == "flaky"]
    assert [e["event"] for e in attempts] == ["attempt 1", "attempt 2"]
    assert attempts[1]["t"] - attempts[0]["t"] >= 0.2  # min_retry_interval_millis
    assert _records(spark, project, "r-retry") == [
        ("after", 1, "SUCCESS", None),
        ("first", 1, "SUCCESS", None),
        ("flaky", 1, "FAILED", "RuntimeError: transient failure (first attempt)"),
        ("flaky", 2, "SUCCESS", None),
    ]
    audit = DeltaStore(spark, project, session_engine(spark)).read("lakehouse.meta.access_audit")
    tasks = {r["task"] for r in audit.where("run_id = 'r-retry'").collect()}
    assert "after" in tasks  # each task's accesses are attributed to it


def test_a_task_that_always_fails_skips_its_dependants(
    spark: SparkSession, engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "failing", engine_session, run_id="r-fail")
    assert not report.succeeded
    outcome = {t.task_key: (t.status, t.attempts) for t in report.tasks}
    assert outcome == {
        "broken": ("FAILED", 2),
        "downstream": ("SKIPPED", 1),
        "further": ("SKIPPED", 1),
        "independent": ("SUCCESS", 1),
    }
    skipped = {t.task_key: t.error for t in report.tasks if t.status == "SKIPPED"}
    assert skipped == {
        "downstream": "upstream failed: broken",
        "further": "upstream failed: downstream",
    }
    assert ("broken", 2, "FAILED", "ValueError: this task always fails") in _records(
        spark, project, "r-fail"
    )
    assert not [e for e in _log(project) if e["task"] in ("downstream", "further")]


def test_a_task_over_its_timeout_is_timed_out(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "slow", engine_session, run_id="r-slow")
    outcome = {t.task_key: t.status for t in report.tasks}
    assert outcome == {"sleeps": "TIMED_OUT", "never": "SKIPPED"}
    timed_out = next(t for t in report.tasks if t.task_key == "sleeps")
    assert 1.0 <= timed_out.seconds < 3.0
    assert timed_out.error == "timed out after 1s (attempt 1)"


def test_independent_tasks_run_side_by_side(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "parallel", engine_session, run_id="r-par")
    assert report.succeeded
    events = {(e["task"], e["event"]): e["t"] for e in _log(project)}
    # both started before either finished
    assert max(events["left", "start"], events["right", "start"]) < min(
        events["left", "end"], events["right", "end"]
    )
    assert events["join", "ok"] >= max(events["left", "end"], events["right", "end"])


def test_only_and_from_select_tasks(project: Project) -> None:
    demo: Job = project.bundle.resources.jobs["demo"]
    keys = [t.task_key for t in select_tasks(demo, from_task="build_gold")]
    assert keys == ["build_gold", "train_model", "score_batch", "monitor_model"]
    assert [t.task_key for t in select_tasks(demo, only=["train_model"])] == ["train_model"]
    with pytest.raises(Exception, match="no task 'nope'"):
        select_tasks(demo, only=["nope"])


class _Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hooks.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture()
def webhook_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hooks.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_the_cli_exits_non_zero_naming_the_failure_and_calls_webhooks(
    project_root: Path, tmp_path: Path, webhook_url: str
) -> None:
    bundle = yaml.safe_load((project_root / "bundle.yml").read_text())
    bundle["resources"]["jobs"]["failing"]["webhook_notifications"] = {
        "on_start": [{"url": webhook_url}],
        "on_failure": [{"url": webhook_url}],
        "on_success": [{"url": webhook_url + "/never"}],
    }
    root = tmp_path / "bundle"
    shutil.copytree(project_root, root)
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "MLFLOW_"))}
    env["PYTHONPATH"] = str(REPO)  # the fixture task module
    env["LAKEHOUSE_VAR_data_root"] = str(tmp_path / "data")
    done = subprocess.run(
        [LAKEHOUSE, "bundle", "run", "failing", "-C", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "error: job failing failed: task broken: ValueError: this task always fails "
        "(skipped: downstream, further)"
    )
    assert [(h["event"], h["status"]) for h in _Hooks.received] == [
        ("on_start", "RUNNING"),
        ("on_failure", "FAILED"),
    ]
    assert {t["task_key"]: t["status"] for t in _Hooks.received[1]["tasks"]} == {
        "broken": "FAILED",
        "downstream": "SKIPPED",
        "further": "SKIPPED",
        "independent": "SUCCESS",
    }
    listing = subprocess.run(
        [LAKEHOUSE, "runs", "failing", "-C", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listing.returncode == 0, listing.stderr
    assert "FAILED" in listing.stdout and "broken" in listing.stdout


def test_a_source_that_yielded_nothing_is_named_in_the_run_summary(
    engine_session: EngineSession, project: Project
) -> None:
    report = run_job(project, "quiet", engine_session, run_id="r-quiet")
    assert report.succeeded
    assert report.notes == ["exhausted_api: yielded no new rows (3 requests)"]


def test_every_run_is_in_the_run_log_and_a_killed_one_is_recorded_abandoned(
    spark: SparkSession, engine_session: EngineSession, project: Project
) -> None:
    from lakehouse.bundle.runlog import RunEntry, RunLog

    log = RunLog(project.data_root)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer exists: a killed run's process
    log.write(RunEntry("r-killed", "retrying", "RUNNING", dead.pid, os.uname().nodename, "x"))
    killed = log.entries()["r-killed"]
    log.task_started(killed, "flaky")

    report = run_job(project, "retrying", engine_session, run_id="r-after")
    assert report.succeeded
    entries = log.entries()
    assert (entries["r-after"].status, entries["r-after"].running_tasks) == ("SUCCESS", [])
    assert entries["r-killed"].status == "ABANDONED" and entries["r-killed"].ended
    assert _records(spark, project, "r-killed") == [
        ("flaky", 0, "ABANDONED", "the run's process ended without recording this task (killed?)")
    ]


def _cli_env(data_root: Path) -> dict[str, str]:
    """The environment of a ``lakehouse`` subprocess: the fixture tasks importable, this
    checkout's package first (``PYTHONPATH`` as the tests were given it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["LAKEHOUSE_VAR_data_root"] = str(data_root)
    return env


def _wait_for(predicate: Any, seconds: float = 120) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


@pytest.mark.distributed
def test_a_query_failing_in_the_engine_exits_1_with_one_line(
    project_root: Path, tmp_path: Path
) -> None:
    """No JSON log records of the failed RPC on stderr: the one ``error:`` line only (in the
    distributed invocation the query fails on a Sail worker)."""
    done = subprocess.run(
        [LAKEHOUSE, "bundle", "run", "engine_failure", "-C", str(project_root)],
        env=_cli_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: job engine_failure failed: task query: ")
    assert "bad row 0" in lines[0]


def test_runs_lists_a_sigkilled_run_as_abandoned_not_success(
    project_root: Path, tmp_path: Path
) -> None:
    """The kill lands while ``sleeps`` runs: ``first`` succeeded, nothing else was recorded."""
    import signal

    env = _cli_env(tmp_path / "data")
    project = load_project(project_root, var_overrides={"data_root": str(tmp_path / "data")})
    victim = subprocess.Popen(
        [LAKEHOUSE, "bundle", "run", "holding", "-C", str(project_root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: ("sleeps", "start") in {(e["task"], e["event"]) for e in _log(project)})
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    listing = subprocess.run(
        [LAKEHOUSE, "runs", "holding", "-C", str(project_root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listing.returncode == 0, listing.stderr
    rows = [line for line in listing.stdout.splitlines() if "holding" in line]
    assert len(rows) == 1 and "ABANDONED" in rows[0] and "SUCCESS" not in rows[0], rows
