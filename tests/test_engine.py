"""Engine selection and the one-line failures of the JVM engine without Delta jars."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError
from pyspark.sql import SparkSession

from lakehouse.config.bundle_spec import DeltaJars, EngineSpec, SailKubernetes
from lakehouse.engine import EngineSession, jvm_spark_conf, sail_mode_label, sail_settings

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_REMOTE", "SPARK_CONNECT"))
    }
    return subprocess.run(
        [LAKEHOUSE, *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_sail_session_has_absolute_warehouse(
    engine_session: EngineSession, spark: SparkSession
) -> None:
    assert engine_session.kind == "sail"
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    assert warehouse is not None and Path(warehouse).is_absolute()
    assert spark.range(3).count() == 3


# A function Sail's workers do not have (its UDF is registered on the driver only): on a column
# it fails on a worker and works in local mode, so it tells where a query's tasks ran.
DRIVER_ONLY_QUERY = (
    "SELECT json_object_keys(concat('{\"k', CAST(id AS STRING), '\": 1}')) AS k FROM range(2)"
)


def _selects_only_distributed(markexpr: str) -> bool:
    """Whether the ``-m`` expression leaves out every test not marked ``distributed``."""
    from _pytest.mark.expression import Expression

    if not markexpr:
        return False
    expression = Expression.compile(markexpr)
    no_marks, all_but = (lambda name, **_: False), (lambda name, **_: name != "distributed")
    return not expression.evaluate(no_marks) and not expression.evaluate(all_but)


@pytest.mark.distributed
def test_the_session_runs_distributed_when_the_invocation_asks_for_it(
    engine_session: EngineSession, spark: SparkSession, request: pytest.FixtureRequest
) -> None:
    """`-m distributed` (make test-cluster) runs on Sail's local-cluster mode with >= 2 workers,
    and the queries really run on workers: no silent fallback to local mode."""
    if not _selects_only_distributed(str(request.config.getoption("markexpr") or "")):
        assert engine_session.mode == sail_mode_label(sail_settings(EngineSpec()))
        return
    workers = os.environ.get("SAIL_CLUSTER__WORKER_INITIAL_COUNT", "")
    assert os.environ.get("SAIL_MODE") == "local-cluster" and workers.isdigit(), (
        "-m distributed runs on Sail's cluster mode: set SAIL_MODE=local-cluster and "
        "SAIL_CLUSTER__WORKER_INITIAL_COUNT=2 (make test-cluster)"
    )
    assert int(workers) >= 2
    assert engine_session.mode == f"local-cluster, {workers} workers"
    with pytest.raises(Exception, match="no UDF found for json_object_keys"):
        spark.sql(DRIVER_ONLY_QUERY).collect()


def test_jvm_conf_uses_packages_by_default_and_jar_dir_when_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import version

    monkeypatch.delenv("LAKEHOUSE_DELTA_JARS", raising=False)
    conf = jvm_spark_conf(EngineSpec(kind="spark"), tmp_path)
    assert conf["spark.jars.packages"] == f"io.delta:delta-spark_2.13:{version('delta-spark')}"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / "delta-spark_2.13-4.4.0.jar").write_bytes(b"")
    conf = jvm_spark_conf(
        EngineSpec(kind="spark", delta=DeltaJars(jars_dir=str(tmp_path / "jars"))), tmp_path
    )
    assert conf["spark.jars"].endswith("jars/delta-spark_2.13-4.4.0.jar")
    assert "spark.jars.packages" not in conf


def test_run_on_jvm_spark_without_delta_jars_fails_in_one_line(
    demo_project_dir: Path, tmp_path: Path
) -> None:
    bundle = demo_project_dir / "bundle.yml"  # packages: [] = plain Spark, no Delta jars
    bundle.write_text(
        bundle.read_text().replace(
            "      kind: sail\n", "      kind: sail\n      delta: {packages: []}\n"
        )
    )
    result = _run(
        ["run", "--engine", "spark"], demo_project_dir, LAKEHOUSE_VAR_data_root=str(tmp_path / "d")
    )
    # each task is spark-submitted; the first one cannot load Delta and the rest are skipped
    assert result.returncode == 1
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "error: job demo failed: task land_demo_files: spark-submit exited 1"
    )
    assert "JVM Spark cannot load the Delta Lake classes" in lines[0]
    assert (
        "(skipped: ingest_bronze, refine_silver, build_gold, train_model, score_batch, "
        "monitor_model)" in lines[0]
    )


def test_jar_dir_without_delta_classes_fails_in_one_line(
    demo_project_dir: Path, tmp_path: Path
) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    with zipfile.ZipFile(jars / "not-delta.jar", "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    result = _run(
        ["run", "--engine", "spark"],
        demo_project_dir,
        LAKEHOUSE_VAR_data_root=str(tmp_path / "d"),
        LAKEHOUSE_DELTA_JARS=str(jars),
    )
    assert result.returncode == 1
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "cannot load the Delta Lake classes" in lines[0]


def test_empty_jar_dir_is_reported_without_starting_a_jvm(
    demo_project_dir: Path, tmp_path: Path
) -> None:
    result = _run(
        ["run", "--engine", "spark"], demo_project_dir, LAKEHOUSE_DELTA_JARS=str(tmp_path)
    )
    assert result.returncode == 1
    assert _error_lines(result.stderr) == [
        f"error: no .jar files in the Delta jar directory {tmp_path}"
    ]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda text: text.replace(
                "      kind: sail\n", "      kind: sail\n      color: blue\n"
            ),
            "error: bundle.yml: targets.local.engine.color: unknown key",
        ),
        (
            lambda text: text.replace("default: 1000", "default: [1000]"),
            "error: bundle.yml: variables.demo_customers: a mapping or list default needs 'type: complex'",
        ),
        (
            lambda text: text.replace("${var.demo_customers}", "${var.customers}"),
            "error: bundle.yml: resources.jobs.demo.tasks[0].spark_python_task.parameters[3]: undefined variable 'customers'",
        ),
    ],
    ids=["unknown-key", "wrong-type", "undefined-variable"],
)
def test_malformed_bundle_exits_non_zero_naming_file_and_key(
    demo_project_dir: Path, edit, expected: str
) -> None:  # type: ignore[no-untyped-def]
    bundle = demo_project_dir / "bundle.yml"
    bundle.write_text(edit(bundle.read_text()))
    for command in (["bundle", "validate"], ["run"]):
        result = _run(command, demo_project_dir)
        assert result.returncode == 1
        lines = _error_lines(result.stderr)
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(expected), lines[0]


def test_spark_submit_uses_its_session_and_explains_missing_delta(demo_project_dir: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_"))
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOCAL_IP="127.0.0.1",
    )
    result = subprocess.run(
        [str(bin_dir / "spark-submit"), "--master", "local[1]", "jobs/ingest_bronze.py"],
        cwd=demo_project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    # spark-submit merges the Python driver's stderr into its own stdout
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: JVM Spark cannot load the Delta Lake classes (io.delta.sql.DeltaSparkSessionExtension "
        "not on the classpath): pass spark-submit --packages io.delta:delta-spark_2.13:VERSION "
        "(needs Maven access) or --jars with the delta-spark_2.13 and delta-storage jars"
    ]


@pytest.fixture()
def spark_connect_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A standalone Spark Connect server (Sail's) on 127.0.0.1, stopped afterwards."""
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pysail",
            "spark",
            "server",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, "RUST_LOG": "error"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as conn:
            if conn.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"sc://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


def test_connect_engine_runs_the_demo_job_against_a_remote_server(
    demo_project_dir: Path, tmp_path: Path, spark_connect_server: str
) -> None:
    result = _run(
        ["run", "--engine", "connect"],
        demo_project_dir,
        LAKEHOUSE_REMOTE=spark_connect_server,
        LAKEHOUSE_VAR_data_root=str(tmp_path / "d"),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "engine connect" in result.stdout
    assert (
        "│ lakehouse.silver.orders               │ merge     │       1 │        8,666 │"
        in result.stdout
    )


def test_connect_engine_unreachable_fails_in_one_line(demo_project_dir: Path) -> None:
    result = _run(
        ["tables", "--engine", "connect"], demo_project_dir, LAKEHOUSE_REMOTE="sc://127.0.0.1:9"
    )
    assert result.returncode == 1
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach Spark Connect at sc://127.0.0.1:9")


def test_sail_settings_are_the_variables_sail_reads_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mode, workers, pod settings and free-form settings become SAIL_* variables."""
    monkeypatch.delenv("SAIL_MODE", raising=False)
    spec = EngineSpec(
        mode="kubernetes-cluster",
        workers=3,
        task_slots=4,
        kubernetes=SailKubernetes(
            image="registry.local/lakehouse:1", worker_pod_template={"spec": {"nodeSelector": {}}}
        ),
        sail={"cluster.worker_max_idle_time_secs": "30"},
    )
    settings = sail_settings(spec, catalog="shop")
    assert settings["SAIL_MODE"] == "kubernetes-cluster"
    assert settings["SAIL_CLUSTER__WORKER_INITIAL_COUNT"] == "3"
    assert settings["SAIL_CLUSTER__WORKER_TASK_SLOTS"] == "4"
    assert "SAIL_CLUSTER__WORKER_MAX_COUNT" not in settings  # left to the environment
    assert settings["SAIL_KUBERNETES__IMAGE"] == "registry.local/lakehouse:1"
    # not set in the target: left to the pod's environment (deploy/kubernetes/job.yaml)
    assert "SAIL_KUBERNETES__NAMESPACE" not in settings
    assert "SAIL_KUBERNETES__DRIVER_POD_NAME" not in settings
    assert settings["SAIL_KUBERNETES__WORKER_POD_TEMPLATE"] == '{"spec": {"nodeSelector": {}}}'
    assert settings["SAIL_CLUSTER__WORKER_MAX_IDLE_TIME_SECS"] == "30"
    assert settings["SAIL_CATALOG__DEFAULT_CATALOG"] == "shop"
    assert sail_mode_label(settings) == "kubernetes-cluster, 3 workers"


def test_sail_mode_comes_from_the_target_then_sail_mode_then_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SAIL_MODE", raising=False)
    assert sail_mode_label(sail_settings(EngineSpec())) == "local"
    monkeypatch.setenv("SAIL_MODE", "local-cluster")
    monkeypatch.setenv("SAIL_CLUSTER__WORKER_INITIAL_COUNT", "2")
    assert sail_mode_label(sail_settings(EngineSpec())) == "local-cluster, 2 workers"
    assert sail_settings(EngineSpec(mode="local"))["SAIL_MODE"] == "local"


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ({"kind": "spark", "mode": "local-cluster"}, "only for engine kind 'sail'"),
        ({"kind": "connect", "remote": "sc://h:1", "workers": 2}, "only for engine kind 'sail'"),
        ({"mode": "local-cluster", "kubernetes": {"image": "i"}}, "only with mode"),
        ({"mode": "local", "workers": 2}, "need a cluster mode"),
        ({"mode": "yarn"}, "local-cluster"),
        ({"mode": "local-cluster", "workers": 0}, "greater than or equal to 1"),
    ],
)
def test_sail_cluster_settings_are_checked(engine: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EngineSpec.model_validate(engine)
