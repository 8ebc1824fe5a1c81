"""Training and scoring against a real ``mlflow server`` on 127.0.0.1 (MLFLOW_TRACKING_URI)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lakehouse.config.ml import CandidateSpec
from lakehouse.pipelines.ml.registry import connect, list_versions
from lakehouse.pipelines.ml.score import score_model
from lakehouse.pipelines.ml.train import train_model
from tests.pipelines.ml.conftest import ContextFactory

MLFLOW = str(Path(sys.executable).parent / "mlflow")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            MLFLOW,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_a_team_tracking_server_is_used_from_the_environment(
    ml_context: ContextFactory, mlflow_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    ctx = ml_context()
    spec = ctx.project.models["churn"]
    quick = {"gradient_boosting": CandidateSpec(params={"n_estimators": 20})}
    ctx.project.models["churn"] = spec.model_copy(update={"candidates": quick})
    handles = ctx.project.model_handles
    handles["churn"] = dataclasses.replace(handles["churn"], spec=ctx.project.models["churn"])
    result = train_model(ctx, "churn")
    assert result.retrained and result.aliases == ["challenger", "champion"]

    versions = list_versions(connect(ctx.project), "churn_model")
    assert [(v.version, v.aliases) for v in versions] == [("1", ["challenger", "champion"])]
    # artifacts went to the server's store, not under the project's data root
    assert any((tmp_path / "server-artifacts").rglob("MLmodel"))
    score_model(ctx, "churn")  # loads models:/churn_model@champion through the server
    assert ctx.tables.row_count("lakehouse.gold.churn_predictions") == 1000
