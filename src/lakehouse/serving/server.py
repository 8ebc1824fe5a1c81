"""Run a serving app with uvicorn: in the foreground (:func:`serve`) or in a thread for tests.

:func:`running_server` starts uvicorn in a background thread on a free loopback port,
waits until it accepts requests (the app's lifespan has run, so the alias refresh and the
prediction-log flush are active), yields the base URL and stops it on exit (the lifespan's
shutdown flushes the prediction log).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from lakehouse.config.loader import Project


def serve(
    project: Project,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    challenger_share: float = 0.0,
    refresh_seconds: float = 5.0,
    log_dir: Path | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``model`` until interrupted (Ctrl-C / SIGTERM flush the prediction log)."""
    from lakehouse.serving.app import create_app

    app = create_app(
        project,
        model,
        challenger_share=challenger_share,
        refresh_seconds=refresh_seconds,
        log_dir=log_dir,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)


@contextlib.contextmanager
def running_server(
    app: FastAPI, port: int = 0, host: str = "127.0.0.1", *, startup_timeout_s: float = 15.0
) -> Iterator[str]:
    """Serve ``app`` in a background thread while the ``with`` block runs; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit this (Linux): asyncio does not set TCP_NODELAY on
        # connections of a socket handed to uvicorn, and without it every response waits
        # ~40 ms for a delayed ACK (Nagle) on loopback
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        bound = int(sock.getsockname()[1])
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        app,
        host=host,
        port=bound,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"serving-{bound}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the server on {host}:{bound} failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the server on {host}:{bound} did not start in {startup_timeout_s}s"
                )
            time.sleep(0.01)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
