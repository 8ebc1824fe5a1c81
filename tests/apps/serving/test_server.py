"""``lakehouse serve`` as a process: worker processes, option errors (loopback only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lakehouse.apps.serving.server import SPEC_ENV, app_from_spec, tcp_socket
from tests.apps.serving.conftest import MODEL, Registry

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k != "MLFLOW_TRACKING_URI" and not k.startswith("LAKEHOUSE_")
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_both_answer_and_stop_with_the_server(
    registry: Registry, tmp_path: Path
) -> None:
    project = registry.project
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        LAKEHOUSE,
        "serve",
        MODEL,
        "--workers=2",
        f"--port={port}",
        "--host=127.0.0.1",
        f"--project-dir={project.root}",
        f"--var=data_root={project.variables['data_root']}",
        f"--var=mlflow_tracking_uri={project.variables['mlflow_tracking_uri']}",
    ]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )
    pids: set[int] = set()
    record = registry.records()[0]
    try:
        deadline = time.monotonic() + 240
        while len(pids) < 2:  # a new connection each time: the kernel hands it to either
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"workers answering: {pids}\n{log.read_text()}"
            try:
                health = httpx.get(f"{url}/health", timeout=10)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            assert health.status_code == 200
            pids.add(health.json()["pid"])
            response = httpx.post(f"{url}/predict", json={"record": record}, timeout=30)
            assert response.status_code == 200, response.text
        assert process.pid not in pids  # the workers answer, not the supervisor
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, log.read_text()[-3000:]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    # the workers flushed their prediction logs on shutdown (file names carry the pid)
    logged = (Path(project.variables["data_root"]) / "landing" / "predictions").glob("*.jsonl")
    assert {f.name.split("-")[2] for f in logged} & {str(p) for p in pids}


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--workers=0", "error: workers 0: give a whole number of processes, at least 1"),
        ("--max-batch=-1", "error: max batch -1: give a whole number of records"),
        ("--batch-wait-ms=5000", "error: batch wait 5000 ms: give 0 to 1000 milliseconds"),
    ],
)
def test_bad_serving_options_fail_in_one_line(option: str, message: str) -> None:
    out = subprocess.run(
        [LAKEHOUSE, "serve", MODEL, option],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr


def test_a_worker_without_its_spec_stops_with_the_startup_failure_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SPEC_ENV, raising=False)
    with pytest.raises(SystemExit) as stopped:
        app_from_spec()
    assert stopped.value.code == 3  # uvicorn's STARTUP_FAILURE: the supervisor gives up


def test_the_workers_socket_says_tcp_so_answers_are_not_delayed() -> None:
    """asyncio sets TCP_NODELAY only on connections of a socket whose protocol is TCP; a
    socket rebuilt with protocol 0 (as uvicorn's workers get it) left Nagle on, and each
    answer waited for the client's delayed ACK (44 ms at one connection)."""
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    address = plain.getsockname()
    assert plain.proto == 0
    tcp = tcp_socket(plain)
    with tcp, socket.create_connection(address):
        assert (tcp.proto, tcp.getsockname()) == (socket.IPPROTO_TCP, address)
        accepted, _ = tcp.accept()
        with accepted:
            assert accepted.proto == socket.IPPROTO_TCP  # what asyncio checks
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with unix:
        assert tcp_socket(unix) is unix
