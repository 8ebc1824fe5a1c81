"""The `remote` target against a JVM Spark Connect server with Delta: the demo job runs
through Spark Connect and every table it writes is a delta-spark table."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakehouse.bundle.connect_server import ConnectServer, free_port, spark_connect_server
from lakehouse.config import load_project
from tests.conftest import jvm_test_spec
from tests.e2e.test_demo_job import EXPECTED_ROWS, assert_listed_row_counts

pytestmark = [pytest.mark.jvm, pytest.mark.e2e]

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectServer]:
    work = tmp_path_factory.mktemp("connect")
    with spark_connect_server(work, jvm_test_spec(), name="lakehouse-test-connect") as server:
        print(f"Spark Connect server (JVM + Delta) up in {server.start_seconds:.1f}s")
        yield server


def test_the_demo_job_runs_on_the_remote_target_against_jvm_delta(
    demo_project_dir: Path, tmp_path: Path, connect_server: ConnectServer
) -> None:
    data_root = tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_"))
    }
    target = ["-t", "remote", "--var", f"connect_url={connect_server.url}"]
    target += ["--var", f"data_root={data_root}", "--project-dir", str(demo_project_dir)]
    # its own sample API port: not the bundle's fixed 8765, which a concurrent run may hold
    target += ["--var", f"sample_api_port={free_port()}"]

    def lakehouse(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LAKEHOUSE, *args, *target], env=env, capture_output=True, text=True, timeout=1500
        )

    done = lakehouse("run", "demo")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "engine connect" in done.stdout and "target" in done.stdout
    project = load_project(demo_project_dir, var_overrides={"data_root": str(data_root)})
    for name in EXPECTED_ROWS:  # written by delta-spark on the server
        engines = {
            str(c.get("engineInfo", "")) for c in DeltaTable(project.table(name).location).history()
        }
        assert any(e.startswith("Apache-Spark/4.2") and "Delta-Lake/4.4" in e for e in engines), (
            name,
            engines,
        )
    listing = lakehouse("tables")
    assert listing.returncode == 0, listing.stderr
    assert_listed_row_counts(listing.stdout)
