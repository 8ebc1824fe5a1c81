"""A Spark Connect server on JVM Spark, started from the pyspark wheel with the Delta jars.

The wheel ships the Connect server's jar but not ``start-connect-server.sh``; the server is
``spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer`` with the
same Delta jars and conf the ``spark`` engine starts with (a ``kind: spark`` engine spec),
bound to 127.0.0.1. A ``connect`` target (``remote: sc://127.0.0.1:PORT``) then runs against
it. Used by the tests and the medallion benchmark (its ``jvm-connect`` system).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lakehouse.bundle.submit import spark_submit_executable, stop_process_group, submit_env
from lakehouse.config.bundle_spec import EngineSpec
from lakehouse.engine import delta_classpath, jvm_spark_conf

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


@dataclass(frozen=True)
class ConnectServer:
    """A running server: its ``sc://`` URL, seconds it took to start, its log, its process id."""

    url: str
    start_seconds: float
    log: Path
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(
    spec: EngineSpec, port: int, warehouse: Path, name: str = "lakehouse-connect"
) -> list[str]:
    """The spark-submit line of a Connect server with the engine's Delta jars and conf."""
    classpath = delta_classpath(spec)
    conf = jvm_spark_conf(spec, warehouse)
    conf.pop("spark.jars", None)
    conf.pop("spark.jars.packages", None)
    conf |= {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.enabled": "false",
    }
    command = [spark_submit_executable(), "--class", SERVER_CLASS, "--master", spec.master]
    if classpath.jars:
        command += ["--jars", ",".join(classpath.jars)]
    elif classpath.packages:
        command += ["--packages", ",".join(classpath.packages)]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, "--name", name, "spark-internal"]


@contextlib.contextmanager
def spark_connect_server(
    work_dir: Path, spec: EngineSpec, *, timeout_s: float = 120.0, name: str = "lakehouse-connect"
) -> Iterator[ConnectServer]:
    """Start the server (a child of this process, in its own process group; its log is
    ``work_dir/connect-server.log``), wait until it accepts connections, stop it after."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = work_dir / "connect-server.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_command(spec, port, work_dir / "warehouse", name),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=submit_env(spec.master, os.environ),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while b"Spark Connect server started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the Spark Connect server did not start:\n{tail}")
            time.sleep(0.2)
        yield ConnectServer(f"sc://127.0.0.1:{port}", time.perf_counter() - started, log, proc.pid)
    finally:
        stop_process_group(proc)
