"""``lakehouse lineage`` on the demo run (runs once the command is registered in lakehouse.cli)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lakehouse.cli import app
from tests.governance.conftest import DemoRun

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _registered(name: str) -> bool:
    return any(
        (c.name or getattr(c.callback, "__name__", "")) == name for c in app.registered_commands
    )


def _lakehouse(run: DemoRun, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE"))
    }
    return subprocess.run(
        [
            LAKEHOUSE,
            "--principal",
            "lakehouse-job",
            *args,
            "--project-dir",
            str(run.root),
            "--var",
            f"data_root={run.root / 'data'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_lineage_command_prints_the_chain_to_bronze_and_draws_it(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    assert _registered("lineage")
    picture = tmp_path / "features.png"
    done = _lakehouse(demo_run, "lineage", "customer_features", "--upstream", "-o", str(picture))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "lakehouse.gold.customer_features  v1" in done.stdout
    assert "← lakehouse.silver.orders  read v1" in done.stdout
    assert "← lakehouse.bronze.orders  read v1" in done.stdout
    assert "orders_drop files" in done.stdout
    assert picture.read_bytes().startswith(b"\x89PNG")

    unknown = _lakehouse(demo_run, "lineage", "no_such_table")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().count("\n") == 0 and "no_such_table" in unknown.stderr
