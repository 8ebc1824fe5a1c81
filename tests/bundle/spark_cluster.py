"""A Spark standalone cluster (one master, one worker) started from the pyspark wheel.

The wheel has ``spark-class`` but no ``start-master.sh``: both daemons run in the
foreground, each in its own process group, bound to 127.0.0.1 on free ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent


@dataclass(frozen=True)
class StandaloneCluster:
    master_url: str
    webui_url: str
    start_seconds: float
    log_dir: Path

    def state(self) -> dict[str, Any]:
        """The master's JSON status (workers, running and completed applications)."""
        with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=5) as response:
            return dict(json.load(response))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def standalone_cluster(
    work_dir: Path, *, cores: int = 1, memory: str = "1g", timeout_s: float = 60.0
) -> Iterator[StandaloneCluster]:
    """Start a master and a worker, wait until the worker has registered, stop both after."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port, webui, worker_webui = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_MASTER_HOST": "127.0.0.1",
        "SPARK_WORKER_DIR": str(work_dir / "worker"),
        "SPARK_NO_DAEMONIZE": "1",
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master_cmd = [
        spark_class,
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webui-port",
        str(webui),
    ]
    master_url = f"spark://127.0.0.1:{port}"
    worker_cmd = [
        spark_class,
        "org.apache.spark.deploy.worker.Worker",
        "--host",
        "127.0.0.1",
        "--webui-port",
        str(worker_webui),
        "--cores",
        str(cores),
        "--memory",
        memory,
        "--work-dir",
        str(work_dir / "worker"),
        master_url,
    ]
    started = time.perf_counter()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, cmd in (("master", master_cmd), ("worker", worker_cmd)):
            with (work_dir / f"{name}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        cmd,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
        cluster = StandaloneCluster(master_url, f"http://127.0.0.1:{webui}", 0.0, log_dir=work_dir)
        _wait_for_worker(cluster, processes, timeout_s)
        yield StandaloneCluster(
            master_url, cluster.webui_url, time.perf_counter() - started, work_dir
        )
    finally:
        for process in reversed(processes):
            _stop_group(process)


def _wait_for_worker(
    cluster: StandaloneCluster, processes: list[subprocess.Popen[bytes]], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process, name in zip(processes, ("master", "worker"), strict=True):
            if process.poll() is not None:
                log = (cluster.log_dir / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"the {name} exited with {process.returncode}:\n{log[-3000:]}")
        with contextlib.suppress(OSError, ValueError):
            if cluster.state().get("aliveworkers", 0) >= 1:
                return
        time.sleep(0.2)
    raise TimeoutError(f"no worker registered with {cluster.master_url} within {timeout_s:.0f}s")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon's process group (with its executors), SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
