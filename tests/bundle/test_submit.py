"""spark-submit for bundle tasks: the command line, timeouts, and a run on a real cluster."""

from __future__ import annotations

import shlex
import shutil
import signal
import stat
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from lakehouse.bundle import submit
from lakehouse.bundle.runner import run_job
from lakehouse.bundle.submit import (
    SubmitTimeoutError,
    spark_submit_command,
    submit_task,
    submit_task_runner,
)
from lakehouse.config.jobs import Task
from lakehouse.config.loader import load_project
from lakehouse.config.project import Project
from lakehouse.core.errors import ConfigError, TaskError
from lakehouse.engine import DELTA_CATALOG, DELTA_EXTENSION, EngineSession
from lakehouse.io.delta import DeltaStore
from tests.support import session_engine

from .spark_cluster import StandaloneCluster, standalone_cluster

HERE = Path(__file__).resolve().parent
DELTA_CONF = f"spark.sql.extensions={DELTA_EXTENSION}"


def write_project(root: Path, engine_yaml: str, *, tasks_yaml: str | None = None) -> None:
    """A small bundle: a plain PySpark script and a lakehouse entry point, one job."""
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "jobs").mkdir(exist_ok=True)
    shutil.copy(HERE / "cluster_sum.py", root / "jobs" / "cluster_sum.py")
    shutil.copy(HERE / "lakehouse_entry.py", root / "jobs" / "lakehouse_entry.py")
    shutil.copy(HERE / "delta_entry.py", root / "jobs" / "delta_entry.py")
    (root / "conf" / "catalog.yml").write_text(
        "catalog:\n  name: lh\n  storage_root: ${var.data_root}/tables\n"
        "  schemas:\n    s:\n      tables:\n        items:\n          layer: silver\n"
        "          keys: [id]\n          columns:\n"
        "            - {name: id, type: int, nullable: false}\n"
        "            - {name: label, type: string}\n"
    )
    tasks = tasks_yaml or (
        "        - task_key: sum\n"
        "          spark_python_task:\n"
        "            python_file: jobs/cluster_sum.py\n"
        "            parameters: ['${var.data_root}/sum.txt', '100']\n"
        "        - task_key: entry\n"
        "          spark_python_task: {python_file: jobs/lakehouse_entry.py, parameters: [--x, '1']}\n"
        "        - task_key: fn\n"
        "          python_function_task: {function: 'os:getcwd'}\n"
        "        - task_key: delta\n"
        "          spark_python_task: {python_file: jobs/delta_entry.py}\n"
    )
    (root / "bundle.yml").write_text(
        "bundle: {name: plain}\n"
        "include: [conf/*.yml]\n"
        "variables:\n"
        "  data_root: {default: ./data}\n"
        "  spark_master: {default: 'local[1]'}\n"
        "targets:\n"
        "  local: {default: true}\n"
        "  cluster:\n"
        "    engine:\n"
        + engine_yaml
        + "resources:\n  jobs:\n    cluster_job:\n      tasks:\n"
        + tasks
    )


def task(project: Project, key: str) -> Task:
    return next(t for t in project.bundle.resources.jobs["cluster_job"].tasks if t.task_key == key)


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def conf_values(command: list[str]) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--conf"]


# ---------------------------------------------------------------- the command line


def test_plain_script_gets_only_its_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKEHOUSE_DELTA_JARS", raising=False)
    write_project(tmp_path, "      kind: spark\n      master: ${var.spark_master}\n")
    project = load_project(
        tmp_path, target="cluster", var_overrides={"spark_master": "spark://h:7077"}
    )
    command = spark_submit_command(project, "cluster_job", task(project, "sum"), "r1")
    assert command[0] == submit.spark_submit_executable()
    assert Path(command[0]).name == "spark-submit"
    assert command[1:5] == ["--master", "spark://h:7077", "--name", "plain:cluster_job:sum"]
    script = str(tmp_path / "jobs" / "cluster_sum.py")
    # parameters as written (spark-submit runs in the bundle root)
    assert command[command.index(script) + 1 :] == ["./data/sum.txt", "100"]
    confs = conf_values(command)
    assert f"spark.pyspark.python={sys.executable}" in confs
    assert f"spark.sql.warehouse.dir={project.data_root / 'warehouse'}" in confs
    # no Delta configured: the delta-spark release matching the installed wheel, from Maven
    assert command[command.index("--packages") + 1] == (
        f"io.delta:delta-spark_2.13:{version('delta-spark')}"
    )
    assert DELTA_CONF in confs
    assert "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS" in confs
    # a cluster master keeps Spark's partition counts; a local one gets its own
    assert not any(c.startswith("spark.sql.shuffle.partitions") for c in confs)
    local = load_project(tmp_path, target="cluster", var_overrides={"spark_master": "local[3]"})
    local_confs = conf_values(spark_submit_command(local, "cluster_job", task(local, "sum"), "r"))
    assert "spark.sql.shuffle.partitions=6" in local_confs
    assert "spark.databricks.delta.snapshotPartitions=3" in local_confs


def test_no_delta_packages_means_plain_spark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKEHOUSE_DELTA_JARS", raising=False)
    write_project(tmp_path, "      kind: spark\n      delta: {packages: []}\n")
    project = load_project(tmp_path, target="cluster")
    command = spark_submit_command(project, "cluster_job", task(project, "sum"), "r1")
    assert "--packages" not in command and "--jars" not in command
    assert not any(c.startswith("spark.sql.extensions") for c in conf_values(command))


def test_lakehouse_entrypoint_gets_target_project_job_and_run_id(tmp_path: Path) -> None:
    write_project(tmp_path, "      kind: spark\n")
    project = load_project(tmp_path, target="cluster")
    command = spark_submit_command(
        project, "cluster_job", task(project, "entry"), "r42", var_overrides={"data_root": "/d"}
    )
    script = str(tmp_path / "jobs" / "lakehouse_entry.py")
    assert command[command.index(script) + 1 :] == [
        "--target",
        "cluster",
        "--project-dir",
        str(tmp_path),
        "--job",
        "cluster_job",
        "--run-id",
        "r42",
        "--task-key",
        "entry",
        "--var",
        "data_root=/d",
        "--x",
        "1",
    ]
    assert command[command.index("--master") + 1] == "local[*]"


def test_delta_packages_and_jar_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_DELTA_JARS", raising=False)
    write_project(
        tmp_path,
        "      kind: spark\n"
        "      conf: {spark.sql.shuffle.partitions: '4'}\n"
        "      delta: {packages: ['io.delta:delta-spark_2.13:4.4.0']}\n",
    )
    project = load_project(tmp_path, target="cluster")
    command = spark_submit_command(project, "cluster_job", task(project, "sum"), "r")
    assert command[command.index("--packages") + 1] == "io.delta:delta-spark_2.13:4.4.0"
    confs = conf_values(command)
    assert DELTA_CONF in confs
    assert f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}" in confs
    assert "spark.sql.shuffle.partitions=4" in confs

    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("delta-spark_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (jars / name).write_bytes(b"")
    monkeypatch.setenv("LAKEHOUSE_DELTA_JARS", str(jars))
    command = spark_submit_command(project, "cluster_job", task(project, "sum"), "r")
    assert command[command.index("--jars") + 1] == ",".join(
        str(jars / n) for n in ("delta-spark_2.13-4.4.0.jar", "delta-storage-4.4.0.jar")
    )
    assert "--packages" not in command
    assert DELTA_CONF in conf_values(command)


def test_engine_conf_wins_over_defaults(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        "      kind: spark\n"
        "      conf: {spark.pyspark.python: /opt/py/bin/python, spark.jars.packages: 'x:y:1'}\n"
        "      delta: {packages: ['io.delta:delta-spark_2.13:4.4.0']}\n",
    )
    project = load_project(tmp_path, target="cluster")
    command = spark_submit_command(project, "cluster_job", task(project, "sum"), "r")
    confs = conf_values(command)
    assert "spark.pyspark.python=/opt/py/bin/python" in confs
    assert "spark.jars.packages=x:y:1" in confs
    assert "--packages" not in command  # conf names its own jars
    assert DELTA_CONF not in confs  # ... and they are not Delta


def test_function_task_and_missing_script_are_refused(tmp_path: Path) -> None:
    write_project(tmp_path, "      kind: spark\n")
    project = load_project(tmp_path, target="cluster")
    with pytest.raises(ConfigError, match=r"tasks\[fn\]: a python_function_task cannot be run"):
        spark_submit_command(project, "cluster_job", task(project, "fn"), "r")
    (tmp_path / "jobs" / "cluster_sum.py").unlink()
    with pytest.raises(ConfigError, match=r"cluster_sum\.py does not exist"):
        spark_submit_command(project, "cluster_job", task(project, "sum"), "r")


def test_the_child_does_not_inherit_this_process_spark_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Sail/Connect session here sets SPARK_CONNECT_MODE_ENABLED; spark-submit must not see it."""
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:1")
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "4242")
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    env = submit.submit_env("spark://127.0.0.1:7077")
    assert not {"SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "PYSPARK_GATEWAY_PORT"} & set(env)
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert "SPARK_LOCAL_IP" not in submit.submit_env("spark://spark-master.internal:7077")
    assert Path(env["SPARK_HOME"], "bin", "spark-class").is_file()


def test_timeout_stops_the_whole_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake spark-submit that starts a child and hangs: both are gone after the timeout."""
    fake = tmp_path / "spark-submit"
    fake.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {tmp_path}/child.pid\necho started\nwait\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(submit, "spark_submit_executable", lambda: str(fake))
    write_project(tmp_path, "      kind: spark\n")
    project = load_project(tmp_path, target="cluster")
    lines: list[str] = []
    result = submit_task(
        project, "cluster_job", task(project, "sum"), "r7", timeout_seconds=1, echo=lines.append
    )
    assert result.timed_out and not result.succeeded
    assert result.returncode == -signal.SIGTERM
    assert 1 <= result.seconds < 5
    assert lines == [shlex.join(result.command)]
    assert " --master 'local[*]' " in lines[0]
    assert result.log_path == project.data_root / "logs" / "r7-cluster_job-sum.log"
    assert result.log_path.read_text() == "started\n"
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(child)
    assert result.error().startswith("timed out after 1s (log: ")


def test_failure_names_the_telling_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "spark-submit"
    fake.write_text(
        "#!/bin/sh\necho 'INFO starting'\necho 'ValueError: bad input in row 3'\n"
        "echo 'INFO shutdown hook called'\nexit 3\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(submit, "spark_submit_executable", lambda: str(fake))
    write_project(tmp_path, "      kind: spark\n")
    project = load_project(tmp_path, target="cluster")
    result = submit_task(project, "cluster_job", task(project, "sum"), "r8", echo=lambda _: None)
    assert (result.returncode, result.timed_out) == (3, False)
    assert result.error() == (
        f"spark-submit exited 3: ValueError: bad input in row 3 (log: {result.log_path})"
    )


def test_task_runner_raises_for_failures_and_timeouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run_job task runner: one spark-submit per attempt, a log per attempt."""
    fake = tmp_path / "spark-submit"
    # exit code and duration come from the task's parameters: OUT N -> exit N, sleep N
    fake.write_text(
        '#!/bin/sh\nfor last; do :; done\necho "error: code $last"\nsleep "$last"\nexit "$last"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(submit, "spark_submit_executable", lambda: str(fake))
    write_project(
        tmp_path,
        "      kind: spark\n",
        tasks_yaml=(
            "        - task_key: ok\n"
            "          spark_python_task: {python_file: jobs/cluster_sum.py, parameters: ['0']}\n"
            "        - task_key: bad\n"
            "          spark_python_task: {python_file: jobs/cluster_sum.py, parameters: ['2']}\n"
            "        - task_key: slow\n"
            "          timeout_seconds: 1\n"
            "          spark_python_task: {python_file: jobs/cluster_sum.py, parameters: ['9']}\n"
        ),
    )
    project = load_project(tmp_path, target="cluster")
    lines: list[str] = []
    run = submit_task_runner(project, "cluster_job", "r9", echo=lines.append)
    run(task(project, "ok"), 1)
    with pytest.raises(TaskError, match="spark-submit exited 2: error: code 2") as failed:
        run(task(project, "bad"), 2)
    assert not isinstance(failed.value, SubmitTimeoutError)
    assert "r9-cluster_job-bad-attempt2.log" in str(failed.value)
    with pytest.raises(SubmitTimeoutError, match="timed out after 1s"):
        run(task(project, "slow"), 1)
    assert len(lines) == 3
    logs = sorted(p.name for p in (project.data_root / "logs").iterdir())
    assert logs == [
        "r9-cluster_job-bad-attempt2.log",
        "r9-cluster_job-ok.log",
        "r9-cluster_job-slow.log",
    ]


def test_run_job_with_the_submit_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine_session: EngineSession
) -> None:
    """The DAG runner drives spark-submit runs: success, a timeout, and a skipped dependant."""
    fake = tmp_path / "spark-submit"
    fake.write_text('#!/bin/sh\nfor last; do :; done\nsleep "$last"\nexit 0\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(submit, "spark_submit_executable", lambda: str(fake))
    step = "          spark_python_task: {python_file: jobs/cluster_sum.py, parameters: ['%s']}\n"
    write_project(
        tmp_path,
        "      kind: spark\n",
        tasks_yaml=(
            "        - task_key: first\n" + step % "0" + "        - task_key: slow\n"
            "          depends_on: [{task_key: first}]\n"
            "          timeout_seconds: 1\n" + step % "30" + "        - task_key: after\n"
            "          depends_on: [{task_key: slow}]\n" + step % "0"
        ),
    )
    project = load_project(tmp_path, target="cluster")
    lines: list[str] = []
    runner = submit_task_runner(project, "cluster_job", "R1", echo=lines.append)
    started = time.monotonic()
    report = run_job(project, "cluster_job", engine_session, run_id="R1", task_runner=runner)
    assert [(t.task_key, t.status) for t in report.tasks] == [
        ("first", "SUCCESS"),
        ("slow", "TIMED_OUT"),
        ("after", "SKIPPED"),
    ]
    assert len(lines) == 2
    assert time.monotonic() - started < 15


# ---------------------------------------------------------------- a real standalone cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as running:
        print(f"standalone cluster up in {running.start_seconds:.1f}s")
        yield running


NO_DELTA = "      delta: {packages: []}\n"


def test_job_runs_on_the_standalone_cluster(tmp_path: Path, cluster: StandaloneCluster) -> None:
    write_project(tmp_path, "      kind: spark\n      master: ${var.spark_master}\n" + NO_DELTA)
    project = load_project(
        tmp_path, target="cluster", var_overrides={"spark_master": cluster.master_url}
    )
    lines: list[str] = []
    result = submit_task(
        project, "cluster_job", task(project, "sum"), "run1", timeout_seconds=120, echo=lines.append
    )
    log = result.log_path.read_text(errors="replace")
    assert result.returncode == 0, log[-3000:]
    assert not result.timed_out
    print(f"spark-submit on the cluster took {result.seconds:.1f}s")
    # sum of squares 1..100, computed in Python on the executor, in 2 partitions
    assert (project.data_root / "sum.txt").read_text() == f"338350 {cluster.master_url} 2\n"
    assert len(lines) == 1 and f"--master {cluster.master_url} " in lines[0]
    assert lines[0].startswith(f"{submit.spark_submit_executable()} --master spark://127.0.0.1:")
    assert result.log_path == project.data_root / "logs" / "run1-cluster_job-sum.log"
    apps = cluster.state()["completedapps"] + cluster.state()["activeapps"]
    assert "plain:cluster_job:sum" in [app["name"] for app in apps]


def test_lakehouse_entrypoint_without_delta_stops_with_one_line(
    tmp_path: Path, cluster: StandaloneCluster
) -> None:
    """The entry point loads the bundle from --project-dir/--target, then asks for Delta jars."""
    write_project(tmp_path, "      kind: spark\n      master: ${var.spark_master}\n" + NO_DELTA)
    project = load_project(
        tmp_path, target="cluster", var_overrides={"spark_master": cluster.master_url}
    )
    result = submit_task(
        project,
        "cluster_job",
        task(project, "entry"),
        "run2",
        timeout_seconds=120,
        echo=lambda _: None,
        var_overrides={"spark_master": cluster.master_url},
    )
    assert result.returncode == 1
    assert "spark-submit exited 1: error: JVM Spark cannot load the Delta Lake classes" in (
        result.error()
    )


def test_bundle_run_on_the_cluster_target_writes_delta(
    tmp_path: Path, cluster: StandaloneCluster, spark: SparkSession
) -> None:
    """`lakehouse bundle run -t cluster`: each task is spark-submitted to the cluster with
    delta-spark from Maven (``--packages``), and the Delta table it writes is read back."""
    import os
    import subprocess
    import sys

    write_project(tmp_path, "      kind: spark\n      master: ${var.spark_master}\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "SPARK_CONNECT", "PYSPARK_"))
    }
    command = [str(Path(sys.executable).parent / "lakehouse"), "bundle", "run", "cluster_job"]
    command += ["--only", "sum", "--only", "delta", "-t", "cluster"]
    command += ["--var", f"spark_master={cluster.master_url}", "-C", str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"--master {cluster.master_url}" in done.stdout
    assert "--packages io.delta:delta-spark_2.13:" in done.stdout
    assert "✓ sum success" in done.stdout and "✓ delta success" in done.stdout
    assert (tmp_path / "data" / "sum.txt").read_text() == f"338350 {cluster.master_url} 2\n"
    apps = cluster.state()["completedapps"] + cluster.state()["activeapps"]
    assert any(app["name"].endswith(":delta") for app in apps)  # it ran on the cluster
    project = load_project(tmp_path)
    tables = DeltaStore(spark, project, session_engine(spark))
    rows = sorted((r.id, r.label) for r in tables.read("lh.s.items").collect())
    assert rows == [(1, "item-1"), (2, "two"), (3, "item-3"), (4, "item-4"), (9, "nine")]
    history = DeltaTable(project.table("lh.s.items").location).history()
    assert [h["operation"] for h in history] == ["MERGE", "WRITE", "CREATE TABLE"]
    # the CLI registered (created) the table on the embedded engine; the cluster wrote it
    assert all(str(h["engineInfo"]).startswith("Apache-Spark/4.2") for h in history[:2])
