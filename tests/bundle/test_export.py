"""Exporting bundle jobs: cron conversions, the Airflow DAG file, the Databricks bundle.

The Airflow DAG is checked three ways: its source is parsed (tasks and ``>>`` edges), it is
executed against stand-in Airflow classes (no Airflow needed), and, when
``LAKEHOUSE_AIRFLOW_PYTHON`` names an interpreter with apache-airflow installed, loaded by
Airflow's own ``DagBag`` in a subprocess. Airflow is not installed in the project venv:
its pins (sqlalchemy, fastapi, pydantic…) would clash with ours.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse.bundle.export import (
    ExportError,
    airflow_dag_id,
    airflow_notes,
    cron_to_quartz,
    databricks_yaml,
    export_airflow,
    export_databricks,
    job_edges,
    quartz_to_cron,
    schedule_cron,
    schedule_quartz,
    write_airflow,
    write_databricks,
)
from lakehouse.config import Project, load_project
from lakehouse.config.jobs import Job, Schedule
from lakehouse.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- cron conversions


@pytest.mark.parametrize(
    ("quartz", "cron"),
    [
        ("0 0 2 * * ?", "0 2 * * *"),
        ("0 0 2 * * ? *", "0 2 * * *"),
        ("0 30 6 ? * MON-FRI", "30 6 * * 1-5"),
        ("0 30 6 ? * mon-fri", "30 6 * * 1-5"),
        ("0 0 12 ? * 1", "0 12 * * 0"),  # Quartz 1 = Sunday = cron 0
        ("0 0 12 ? * 7", "0 12 * * 6"),  # Quartz 7 = Saturday
        ("0 0 12 ? * 1,7", "0 12 * * 0,6"),
        ("0 0 12 ? * 2-6", "0 12 * * 1-5"),
        ("0 0 8 ? * SUN-TUE", "0 8 * * 0-2"),
        ("0 0 8 ? * */2", "0 8 * * 0,2,4,6"),  # Sun, Tue, Thu, Sat in both
        ("0 0 8 ? * 2/2", "0 8 * * 1,3,5"),
        ("0 0/15 * * * ?", "0-59/15 * * * *"),
        ("0 */10 9-17 * * ?", "*/10 9-17 * * *"),
        ("0 0 3 15 * ?", "0 3 15 * *"),
        ("0 0 1 1 JAN ?", "0 1 1 JAN *"),
        ("0 0 0 1,15 3/3 ?", "0 0 1,15 3-12/3 *"),
    ],
)
def test_quartz_to_cron(quartz: str, cron: str) -> None:
    assert quartz_to_cron(quartz) == cron


@pytest.mark.parametrize(
    ("quartz", "why"),
    [
        ("30 0 2 * * ?", "seconds"),
        ("0/30 0 2 * * ?", "seconds"),
        ("0 0 2 L * ?", "'L'"),
        ("0 0 2 15W * ?", "'W'"),
        ("0 0 2 ? * 6L", "'L'"),
        ("0 0 2 ? * 6#3", "'#'"),
        ("0 0 2 15 * MON", "both a day of month and a day of week"),
        ("0 0 2 * * ? 2030", "year"),
        ("0 0 2 * *", "expected 6 or 7 fields"),
        ("0 61 2 * * ?", "minute 61 is outside 0-59"),
        ("0 0 2 ? * 0", "day-of-week 0 is outside 1-7"),
        ("0 0 2 ? * FRI-MON", "runs backwards"),
        ("0 0 2 ? * FUN", "not understood"),
    ],
)
def test_quartz_that_cron_cannot_express_is_refused(quartz: str, why: str) -> None:
    with pytest.raises(ExportError, match=re.escape(f"Quartz cron expression '{quartz}'")) as err:
        quartz_to_cron(quartz)
    assert why in str(err.value)


@pytest.mark.parametrize(
    ("cron", "quartz"),
    [
        ("0 2 * * *", "0 0 2 * * ?"),
        ("30 6 * * 1-5", "0 30 6 ? * 2-6"),
        ("0 12 * * 0", "0 0 12 ? * 1"),
        ("0 12 * * 7", "0 0 12 ? * 1"),  # cron 7 is Sunday too
        ("0 12 * * 5-7", "0 0 12 ? * 1,6,7"),  # Fri-Sun
        ("0 9 * * MON-FRI", "0 0 9 ? * 2-6"),
        ("0 9 * * SAT,SUN", "0 0 9 ? * 1,7"),
        ("*/15 * * * *", "0 */15 * * * ?"),
        ("0 3 15 * *", "0 0 3 15 * ?"),
        ("0 3 1 */3 *", "0 0 3 1 */3 ?"),
        ("@daily", "0 0 0 * * ?"),
        ("@weekly", "0 0 0 ? * 1"),
        ("@hourly", "0 0 * * * ?"),
    ],
)
def test_cron_to_quartz(cron: str, quartz: str) -> None:
    assert cron_to_quartz(cron) == quartz


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("0 2 1 * 1", "both a day of month and a day of week"),
        ("0 2 * *", "expected 5 fields"),
        ("0 2 * * 8", "day-of-week 8 is outside 0-7"),
        ("0 24 * * *", "hour 24 is outside 0-23"),
        ("0 2 ? * *", "'?'"),
        ("0 2 L * *", "'L'"),
        ("0 2 * * */0", "step of 0"),
    ],
)
def test_cron_that_quartz_cannot_express_is_refused(cron: str, why: str) -> None:
    with pytest.raises(ExportError, match="cron expression") as err:
        cron_to_quartz(cron)
    assert why in str(err.value)


def test_schedule_in_either_form() -> None:
    quartz = Schedule(quartz_cron_expression="0 30 6 ? * MON-FRI")
    assert (schedule_cron(quartz), schedule_quartz(quartz)) == (
        "30 6 * * 1-5",
        "0 30 6 ? * MON-FRI",
    )
    cron = Schedule(cron_expression="@daily")
    assert (schedule_cron(cron), schedule_quartz(cron)) == ("0 0 * * *", "0 0 0 * * ?")
    # valid for Airflow (runs on the 1st or on Mondays), not expressible in Quartz
    either = Schedule(cron_expression="0 2 1 * 1")
    assert schedule_cron(either) == "0 2 1 * 1"
    with pytest.raises(ExportError, match="both a day of month and a day of week"):
        schedule_quartz(either)
    with pytest.raises(ExportError, match="hour 25 is outside"):
        schedule_cron(Schedule.model_construct(cron_expression="0 25 * * *"))


@pytest.mark.parametrize(
    "cron",
    [
        "0 2 * * *",
        "30 6 * * 1-5",
        "0 12 * * 0",
        "0 12 * * 6",
        "0 12 * * 5-7",
        "0 9 * * MON,WED,FRI",
        "*/15 8-18 * * 1-5",
        "0 3 15 * *",
        "5 4 * * */2",
    ],
)
def test_cron_to_quartz_and_back_fires_at_the_same_times(cron: str) -> None:
    croniter = pytest.importorskip("croniter").croniter
    import datetime as dt

    back = quartz_to_cron(cron_to_quartz(cron))
    start = dt.datetime(2025, 1, 1)
    ours, theirs = croniter(cron, start), croniter(back, start)
    assert [ours.get_next(dt.datetime) for _ in range(40)] == [
        theirs.get_next(dt.datetime) for _ in range(40)
    ]


# ---------------------------------------------------------------- a test bundle


def _task(key: str, script: str | None, *deps: str, **settings: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, **settings}
    if script is not None:
        task["spark_python_task"] = {"python_file": f"jobs/{script}.py"}
    if deps:
        task["depends_on"] = [{"task_key": d} for d in deps]
    return task


EXTRA_JOBS: dict[str, Any] = {
    "diamond": {
        "name": "Diamond for ${bundle.name}",
        "run_as": {"user_name": "alice"},
        "schedule": {
            "quartz_cron_expression": "0 30 6 ? * MON-FRI",
            "timezone_id": "Europe/Paris",
            "pause_status": "PAUSED",
        },
        "max_concurrent_runs": 2,
        "max_parallel_tasks": 3,
        "webhook_notifications": {"on_failure": [{"url": "https://hooks.example.com/fail"}]},
        "permissions": [{"level": "CAN_MANAGE_RUN", "user_name": "bob"}],
        "tasks": [
            _task(
                "start",
                None,
                spark_python_task={
                    "python_file": "jobs/land_demo_files.py",
                    "parameters": ["--landing", "${var.data_root}/landing", "--customers", "5"],
                },
            ),
            _task(
                "left",
                "refine_silver",
                "start",
                max_retries=3,
                min_retry_interval_millis=1500,
                retry_on_timeout=True,
                timeout_seconds=60,
            ),
            _task("right", "build_gold", "start", description='quotes """ and \\ in text'),
            _task(
                "join",
                "train_model",
                "left",
                "right",
                run_as={"service_principal_name": "bi-reader"},
            ),
        ],
    },
    "weekly": {
        "schedule": {"cron_expression": "15 3 * * 0", "timezone_id": "America/New_York"},
        "tasks": [_task("only", "score_batch")],
    },
    "functions": {
        "tasks": [
            {"task_key": "f1", "python_function_task": {"function": "tests.bundle.x:f"}},
            {
                "task_key": "f2",
                "depends_on": [{"task_key": "f1"}],
                "python_function_task": {"function": "tests.bundle.x:g"},
            },
        ]
    },
}


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "jobs", root / "jobs")
    bundle = yaml.safe_load((REPO / "bundle.yml").read_text())
    bundle["resources"]["jobs"].update(EXTRA_JOBS)
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    return root


@pytest.fixture()
def project(project_root: Path) -> Project:
    return load_project(project_root)


def _upstream(job: Job) -> dict[str, list[str]]:
    return {t.task_key: sorted(d.task_key for d in t.depends_on) for t in job.tasks}


# ---------------------------------------------------------------- Airflow, without Airflow


def _graph_from_source(source: str) -> tuple[list[str], set[tuple[str, str]]]:
    """Task ids of the BashOperators and the ``tasks[a] >> tasks[b]`` edges in the DAG file."""
    tree = ast.parse(source)
    task_ids: list[str] = []
    edges: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "BashOperator"
        ):
            kwargs = {k.arg: k.value for k in node.keywords}
            task_ids.append(ast.literal_eval(kwargs["task_id"]))
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.BinOp)
            and isinstance(node.value.op, ast.RShift)
        ):
            left, right = node.value.left, node.value.right
            assert isinstance(left, ast.Subscript) and isinstance(right, ast.Subscript)
            edges.add((ast.literal_eval(left.slice), ast.literal_eval(right.slice)))
    return task_ids, edges


@pytest.mark.parametrize("job", ["demo", "diamond", "weekly", "functions"])
def test_airflow_dag_source_has_the_bundle_task_graph(project: Project, job: str) -> None:
    source = export_airflow(project, job)
    compile(source, f"{job}.py", "exec")
    task_ids, edges = _graph_from_source(source)
    spec = project.bundle.resources.jobs[job]
    assert sorted(task_ids) == sorted(t.task_key for t in spec.tasks)
    assert edges == set(job_edges(spec))
    assert edges == {(d.task_key, t.task_key) for t in spec.tasks for d in t.depends_on}


class _FakeDAG:
    current: _FakeDAG | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.tasks: dict[str, _FakeOperator] = {}

    def __enter__(self) -> _FakeDAG:
        _FakeDAG.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        _FakeDAG.current = None


class _FakeOperator:
    def __init__(self, *, task_id: str, **kwargs: Any) -> None:
        self.task_id = task_id
        self.kwargs = kwargs
        self.upstream: set[str] = set()
        assert _FakeDAG.current is not None, "operator created outside the DAG"
        _FakeDAG.current.tasks[task_id] = self

    def __rshift__(self, other: _FakeOperator) -> _FakeOperator:
        other.upstream.add(self.task_id)
        return other


def _run_with_fake_airflow(source: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Execute the DAG file against stand-ins for the Airflow and pendulum it imports."""
    modules = {
        name: types.ModuleType(name)
        for name in (
            "airflow",
            "airflow.sdk",
            "airflow.providers",
            "airflow.providers.standard",
            "airflow.providers.standard.operators",
            "airflow.providers.standard.operators.bash",
            "pendulum",
        )
    }
    modules["airflow.sdk"].DAG = _FakeDAG  # type: ignore[attr-defined]
    modules["airflow.providers.standard.operators.bash"].BashOperator = _FakeOperator  # type: ignore[attr-defined]
    modules["pendulum"].datetime = lambda *a, **kw: ("datetime", a, kw)  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    namespace: dict[str, Any] = {"__name__": "exported_dag"}
    exec(compile(source, "exported_dag.py", "exec"), namespace)
    return namespace


def test_airflow_dag_runs_with_the_bundle_graph_schedule_and_retries(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = export_airflow(project, "diamond", var_overrides={"demo_customers": "5"})
    namespace = _run_with_fake_airflow(source, monkeypatch)
    dag: _FakeDAG = namespace["dag"]
    spec = project.bundle.resources.jobs["diamond"]

    assert {k: sorted(t.upstream) for k, t in dag.tasks.items()} == _upstream(spec)
    assert dag.kwargs["dag_id"] == airflow_dag_id(project, "diamond") == "lakehouse_demo_diamond"
    assert dag.kwargs["schedule"] == "30 6 * * 1-5"
    assert dag.kwargs["start_date"][2] == {"tz": "Europe/Paris"}
    assert dag.kwargs["catchup"] is False
    assert dag.kwargs["is_paused_upon_creation"] is True
    assert dag.kwargs["max_active_runs"] == 2
    assert dag.kwargs["max_active_tasks"] == 3
    assert dag.kwargs["tags"] == ["lakehouse", "lakehouse_demo", "diamond"]
    assert dag.kwargs["default_args"] == {"owner": "alice"}
    assert dag.kwargs["description"] == "Diamond for lakehouse_demo"

    left = dag.tasks["left"].kwargs
    assert left["retries"] == 3
    assert left["retry_delay"].total_seconds() == 1.5
    assert "retry_exponential_backoff" not in left  # DAB: the same interval before every retry
    assert left["execution_timeout"].total_seconds() == 60
    assert dag.tasks["start"].kwargs["retries"] == 0
    assert "execution_timeout" not in dag.tasks["start"].kwargs
    assert dag.tasks["right"].kwargs["doc_md"] == 'quotes """ and \\ in text'

    command = dag.tasks["join"].kwargs["bash_command"]
    assert command == (
        f"lakehouse bundle run diamond --only join --target local --no-retries "
        f"--project-dir {project.root.resolve()} --var demo_customers=5"
    )


def test_airflow_dag_without_schedule_and_the_demo_schedule(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = _run_with_fake_airflow(export_airflow(project, "functions"), monkeypatch)["dag"]
    assert dag.kwargs["schedule"] is None
    assert dag.kwargs["is_paused_upon_creation"] is False
    assert dag.kwargs["default_args"] == {"owner": "lakehouse-job"}  # the bundle's run_as
    demo = _run_with_fake_airflow(export_airflow(project, "demo"), monkeypatch)["dag"]
    assert demo.kwargs["schedule"] == "0 2 * * *"
    weekly = _run_with_fake_airflow(export_airflow(project, "weekly"), monkeypatch)["dag"]
    assert weekly.kwargs["schedule"] == "15 3 * * 0"  # a cron_expression goes as it is
    assert weekly.kwargs["start_date"][2] == {"tz": "America/New_York"}


def test_airflow_command_is_shell_quoted(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    source = export_airflow(
        project, "weekly", project_dir="/srv/my project", var_overrides={"data_root": "/d/a b"}
    )
    dag = _run_with_fake_airflow(source, monkeypatch)["dag"]
    assert dag.tasks["only"].kwargs["bash_command"] == (
        "lakehouse bundle run weekly --only only --target local --no-retries "
        "--project-dir '/srv/my project' --var 'data_root=/d/a b'"
    )


def test_airflow_export_refuses_what_it_cannot_schedule(project_root: Path) -> None:
    bundle = yaml.safe_load((project_root / "bundle.yml").read_text())
    bundle["resources"]["jobs"]["demo"]["schedule"]["quartz_cron_expression"] = "30 0 2 * * ?"
    odd = project_root.parent / "odd_schedule"
    shutil.copytree(project_root, odd, dirs_exist_ok=True)
    (odd / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    with pytest.raises(ExportError, match="seconds '30'"):
        export_airflow(load_project(odd), "demo")


def test_airflow_export_needs_a_known_job(project: Project) -> None:
    with pytest.raises(ConfigError, match="name a job"):
        export_airflow(project)
    with pytest.raises(ConfigError, match="no such job"):
        export_airflow(project, "nope")


def test_airflow_notes_and_writer(project: Project, tmp_path: Path) -> None:
    notes = airflow_notes(project, "diamond")
    assert any("webhook_notifications" in n for n in notes)
    assert not any("retry_on_timeout" in n for n in notes)  # 'left' retries on timeout
    assert any("ingest_bronze" in n for n in airflow_notes(project, "demo"))
    path = write_airflow(project, "demo", tmp_path / "dags" / "demo.py")
    assert path.read_text() == export_airflow(project, "demo")


# ---------------------------------------------------------------- Airflow's own DagBag

AIRFLOW_PYTHON = os.environ.get("LAKEHOUSE_AIRFLOW_PYTHON")
DAGBAG_PROBE = r"""
import inspect, json, sys
from airflow.models import DagBag

kwargs = {"dag_folder": sys.argv[1]}
if "include_examples" in inspect.signature(DagBag.__init__).parameters:  # gone in Airflow 3.3
    kwargs["include_examples"] = False
bag = DagBag(**kwargs)
out = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    timetable = dag.timetable
    out["dags"][dag_id] = {
        "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        "cron": getattr(timetable, "expression", None) or getattr(timetable, "_expression", None),
        "timezone": str(getattr(dag.timezone, "name", dag.timezone)),
        "paused": dag.is_paused_upon_creation,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "tags": sorted(dag.tags),
        "tasks": {
            t.task_id: {
                "retries": t.retries,
                "retry_delay": t.retry_delay.total_seconds(),
                "backoff": bool(t.retry_exponential_backoff),
                "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                "command": t.bash_command,
            }
            for t in dag.tasks
        },
    }
print("DAGBAG " + json.dumps(out))
"""


@pytest.mark.skipif(
    not AIRFLOW_PYTHON,
    reason="set LAKEHOUSE_AIRFLOW_PYTHON to a python with apache-airflow installed "
    "(kept out of the project venv: its pins clash with ours)",
)
def test_airflow_dagbag_loads_the_exported_dags_with_the_bundle_graph(
    project: Project, tmp_path: Path
) -> None:
    assert AIRFLOW_PYTHON is not None
    folder = tmp_path / "dags"
    jobs = ["demo", "diamond", "weekly", "functions"]
    for job in jobs:
        write_airflow(project, job, folder / f"{airflow_dag_id(project, job)}.py")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
    }
    done = subprocess.run(
        [AIRFLOW_PYTHON, "-c", DAGBAG_PROBE, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("DAGBAG "))
    bag = json.loads(line.removeprefix("DAGBAG "))
    assert bag["import_errors"] == {}
    assert sorted(bag["dags"]) == sorted(airflow_dag_id(project, j) for j in jobs)
    for job in jobs:
        dag = bag["dags"][airflow_dag_id(project, job)]
        spec = project.bundle.resources.jobs[job]
        assert dag["upstream"] == _upstream(spec), job
        assert dag["catchup"] is False
        assert dag["max_active_runs"] == spec.max_concurrent_runs
        assert dag["max_active_tasks"] == spec.max_parallel_tasks
        for task in spec.tasks:
            got = dag["tasks"][task.task_key]
            assert got["retries"] == task.max_retries
            assert got["timeout"] == (task.timeout_seconds or None)
            assert f" --only {task.task_key} --target local " in got["command"]
            if task.max_retries:
                assert got["retry_delay"] == task.min_retry_interval_millis / 1000
                assert got["backoff"] is False
    diamond = bag["dags"]["lakehouse_demo_diamond"]
    assert (diamond["cron"], diamond["timezone"], diamond["paused"]) == (
        "30 6 * * 1-5",
        "Europe/Paris",
        True,
    )
    assert bag["dags"]["lakehouse_demo_demo"]["cron"] == "0 2 * * *"
    assert bag["dags"]["lakehouse_demo_weekly"]["timezone"] == "America/New_York"
    assert bag["dags"]["lakehouse_demo_functions"]["cron"] is None


@pytest.mark.e2e
@pytest.mark.skipif(
    not AIRFLOW_PYTHON,
    reason="set LAKEHOUSE_AIRFLOW_PYTHON to a python with apache-airflow installed",
)
def test_airflow_runs_the_exported_demo_dag(demo_project_dir: Path, tmp_path: Path) -> None:
    """`airflow dags test` runs every task of the demo job through `lakehouse bundle run`."""
    assert AIRFLOW_PYTHON is not None
    overrides = {"data_root": str(tmp_path / "data"), "demo_customers": "200"}
    project = load_project(demo_project_dir, var_overrides=overrides)
    folder = tmp_path / "dags"
    lakehouse = str(Path(sys.executable).parent / "lakehouse")
    dag_id = airflow_dag_id(project, "demo")
    (folder / f"{dag_id}.py").parent.mkdir(parents=True)
    (folder / f"{dag_id}.py").write_text(
        export_airflow(project, "demo", var_overrides=overrides, command=[lakehouse])
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
    }
    airflow = [AIRFLOW_PYTHON, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [*airflow, "dags", "test", dag_id, "2025-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    for task in project.bundle.resources.jobs["demo"].tasks:
        assert f"{task.task_key} success" in log, log[-3000:]
    assert (tmp_path / "data" / "landing").is_dir()


# ---------------------------------------------------------------- Databricks


def test_databricks_bundle_has_the_jobs_tasks_and_schedules(project: Project) -> None:
    doc = export_databricks(project, jobs=["demo", "diamond", "weekly"])
    assert doc["bundle"] == {"name": "lakehouse_demo"}
    assert "sync" not in doc  # written at the project root: paths are ./jobs/...
    assert doc["run_as"] == {"service_principal_name": "lakehouse-job"}
    assert doc["variables"]["data_root"]["default"] == "./data"
    assert doc["variables"]["demo_customers"]["default"] == 1000
    assert doc["targets"] == {
        "local": {"mode": "development", "default": True},
        "distributed": {"mode": "development"},
        "cluster": {"mode": "production"},
        "remote": {"mode": "production"},
        "k8s": {"mode": "production", "variables": {"data_root": "/data"}},
    }
    jobs = doc["resources"]["jobs"]
    assert list(jobs) == ["demo", "diamond", "weekly"]
    for name, job in jobs.items():
        spec = project.bundle.resources.jobs[name]
        upstream = {
            t["task_key"]: sorted(d["task_key"] for d in t.get("depends_on", []))
            for t in job["tasks"]
        }
        assert upstream == _upstream(spec)
        for task in job["tasks"]:
            file = task["spark_python_task"]["python_file"]
            assert file.startswith("./jobs/") and (project.root / file).is_file()

    demo = jobs["demo"]
    assert demo["name"] == "Demo medallion pipeline"
    assert demo["schedule"] == {
        "quartz_cron_expression": "0 0 2 * * ?",
        "timezone_id": "UTC",
        "pause_status": "UNPAUSED",
    }
    assert demo["max_concurrent_runs"] == 1
    assert demo["permissions"] == [
        {"level": "CAN_MANAGE", "group_name": "data-engineers"},
        {"level": "CAN_VIEW", "group_name": "analysts"},
    ]
    land, ingest = demo["tasks"][0], demo["tasks"][1]
    assert land["spark_python_task"]["parameters"] == [
        "--target",
        "${bundle.target}",
        "--job",
        "demo",
        "--landing",
        "${var.data_root}/landing",  # references kept for Databricks to resolve
        "--customers",
        "${var.demo_customers}",
    ]
    assert {k: ingest[k] for k in ingest if "retr" in k or "timeout" in k} == {
        "max_retries": 2,
        "min_retry_interval_millis": 2000,
        "retry_on_timeout": False,
        "timeout_seconds": 900,
    }
    assert "max_retries" not in land and "timeout_seconds" not in land

    diamond = jobs["diamond"]
    assert diamond["name"] == "Diamond for ${bundle.name}"
    assert diamond["run_as"] == {"user_name": "alice"}
    assert diamond["schedule"]["quartz_cron_expression"] == "0 30 6 ? * MON-FRI"
    assert diamond["schedule"]["pause_status"] == "PAUSED"
    assert diamond["permissions"] == [{"level": "CAN_MANAGE_RUN", "user_name": "bob"}]
    assert "webhook_notifications" not in diamond

    weekly = jobs["weekly"]["schedule"]
    assert weekly["quartz_cron_expression"] == "0 15 3 ? * 1"  # cron 15 3 * * 0 (Sunday)
    assert weekly["timezone_id"] == "America/New_York"


def test_databricks_refuses_a_python_function_task(project: Project) -> None:
    with pytest.raises(ExportError, match=r"job functions, task f1: a python_function_task"):
        export_databricks(project)
    with pytest.raises(ExportError, match=re.escape("tests.bundle.x:f")):
        export_databricks(project, jobs=["functions"])
    with pytest.raises(ConfigError, match="no such job"):
        export_databricks(project, jobs=["nope"])


def test_databricks_file_round_trips_through_yaml_with_notes(
    project: Project, tmp_path: Path
) -> None:
    path = write_databricks(project, tmp_path / "dist" / "databricks.yml", jobs=["demo", "diamond"])
    text = path.read_text()
    doc = yaml.safe_load(text)
    assert doc == export_databricks(project, jobs=["demo", "diamond"], bundle_dir=tmp_path / "dist")
    # written outside the project: paths lead back to it and the project is synced
    root = os.path.relpath(project.root, tmp_path / "dist")
    assert doc["sync"] == {"paths": [root]}
    task = doc["resources"]["jobs"]["demo"]["tasks"][0]
    assert task["spark_python_task"]["python_file"] == f"{root}/jobs/land_demo_files.py"
    assert (path.parent / task["spark_python_task"]["python_file"]).resolve().is_file()
    comments = [line for line in text.splitlines() if line.startswith("#")]
    joined = "\n".join(comments)
    assert "cluster: {kind: spark, master: '${var.spark_master}'" in joined
    assert "webhook_notifications.on_failure https://hooks.example.com/fail" in joined
    assert "task join: run_as bi-reader" in joined
    assert "max_parallel_tasks 3" in joined
    assert "retry delay doubling" not in joined  # the runner waits as Databricks does
    assert text.index("bundle:") > text.index(comments[-1])


def test_databricks_dist_folder_inside_the_project(project: Project) -> None:
    doc = export_databricks(project, jobs=["weekly"], bundle_dir=project.root / "dist")
    assert doc["sync"] == {"paths": [".."]}
    only = doc["resources"]["jobs"]["weekly"]["tasks"][0]
    assert only["spark_python_task"]["python_file"] == "../jobs/score_batch.py"


def test_databricks_export_time_variables_go_to_the_current_target(project_root: Path) -> None:
    project = load_project(
        project_root, target="cluster", var_overrides={"spark_master": "spark://h:7077"}
    )
    doc = export_databricks(
        project, jobs=["demo"], var_overrides={"spark_master": "spark://h:7077"}
    )
    assert doc["targets"]["cluster"]["variables"] == {"spark_master": "spark://h:7077"}
    assert "variables" not in doc["targets"]["local"]
    text = databricks_yaml(project, jobs=["demo"])
    assert yaml.safe_load(text)["targets"]["cluster"]["variables"] == {
        "spark_master": "spark://h:7077"
    }


DATABRICKS_PYTHON = os.environ.get("LAKEHOUSE_DATABRICKS_PYTHON")


@pytest.mark.skipif(
    not DATABRICKS_PYTHON,
    reason="set LAKEHOUSE_DATABRICKS_PYTHON to a python with databricks-bundles installed "
    "(its models reject unknown job and task fields)",
)
def test_databricks_jobs_parse_with_the_databricks_bundles_models(project: Project) -> None:
    assert DATABRICKS_PYTHON is not None
    doc = export_databricks(project, jobs=["demo", "diamond", "weekly"])
    probe = (
        "import json, sys\n"
        "from databricks.bundles.jobs import Job\n"
        "jobs = json.load(sys.stdin)\n"
        "print(json.dumps({k: Job.from_dict(v).as_dict() == v for k, v in jobs.items()}))\n"
    )
    done = subprocess.run(
        [DATABRICKS_PYTHON, "-c", probe],
        input=json.dumps(doc["resources"]["jobs"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"demo": True, "diamond": True, "weekly": True}
