"""Run a serving app with uvicorn: in the foreground (:func:`serve`) or in a thread for tests.

:func:`serve` runs one process, or with ``workers > 1`` uvicorn's worker processes: uvicorn
starts each worker with a fresh interpreter (``spawn``) and builds its app from an import
string, so the parent first builds the app once (a missing model or a bad option fails here,
as one line), then writes the app's arguments to a private pickle file named by
``LAKEHOUSE_SERVING_SPEC`` and has each worker call :func:`app_from_spec`. The workers share
the listening socket (the kernel spreads connections over them); each has its own model copy,
micro-batcher, alias refresh and prediction-log files (the file names carry the pid).

:func:`running_server` starts uvicorn in a background thread on a free loopback port,
waits until it accepts requests (the app's lifespan has run, so the alias refresh and the
prediction-log flush are active), yields the base URL and stops it on exit (the lifespan's
shutdown flushes the prediction log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from lakehouse.apps.http_guard import allowed_hosts
from lakehouse.apps.local_server import background_server
from lakehouse.apps.serving.batching import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_WAIT_MS,
    batching_options,
)
from lakehouse.config.project import Project
from lakehouse.core.errors import LakehouseError, one_line

SPEC_ENV = "LAKEHOUSE_SERVING_SPEC"
APP_FACTORY = "lakehouse.apps.serving.server:app_from_spec"


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
    max_body_bytes: int | None = None,
    extra_hosts: Sequence[str] = (),
    workers: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    batch_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    access_log: bool = False,
) -> None:
    """Serve ``model`` until interrupted (Ctrl-C / SIGTERM flush the prediction log).

    The ``Host`` names answered are loopback, ``host`` when it is a concrete address, and
    ``extra_hosts``; a body over ``max_body_bytes`` (default: the app's) answers 413.
    ``workers``: uvicorn worker processes (see the module docstring); ``max_batch`` /
    ``batch_wait_ms``: micro-batching per worker (``max_batch=0`` turns it off);
    ``access_log``: uvicorn's line per request (off: every prediction is logged anyway).
    """
    from lakehouse.apps.serving.app import MAX_BODY_BYTES, create_app

    check_workers(workers)
    batching_options(max_batch, batch_wait_ms)
    options: dict[str, Any] = {
        "challenger_share": challenger_share,
        "refresh_seconds": refresh_seconds,
        "log_dir": log_dir,
        "max_body_bytes": max_body_bytes or MAX_BODY_BYTES,
        "hosts": allowed_hosts(extra_hosts, bind_host=host),
        "max_batch": max_batch,
        "batch_wait_ms": batch_wait_ms,
    }
    app = create_app(project, model, **options)  # fails here, in one line, when it cannot serve
    run: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        uvicorn.run(app, **run)
        return
    del app  # each worker builds its own
    _serve_workers(project, model, options, workers, run)


def check_workers(workers: int) -> int:
    """``workers`` when it is a whole number of processes, at least 1; else a one-line error."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise LakehouseError(f"workers {workers!r}: give a whole number of processes, at least 1")
    return workers


def _serve_workers(
    project: Project, model: str, options: dict[str, Any], workers: int, run: dict[str, Any]
) -> None:
    """uvicorn's supervisor with ``workers`` processes, each building the app from the spec."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    handle, name = tempfile.mkstemp(prefix="lakehouse-serving-", suffix=".pickle")
    spec = Path(name)
    previous = os.environ.get(SPEC_ENV)
    try:
        with os.fdopen(handle, "wb") as out:  # mkstemp: readable by this user only
            pickle.dump({"project": project, "model": model, "options": options}, out)
        os.environ[SPEC_ENV] = str(spec)  # the spawned workers inherit it
        config = uvicorn.Config(APP_FACTORY, factory=True, workers=workers, **run)
        supervisor = Multiprocess(config, sockets=[tcp_socket(config.bind_socket())])
        supervisor.run()
        if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
            raise LakehouseError(
                f"a serving worker failed to start (see its log above); stopped all {workers}"
            )
    finally:
        if previous is None:
            os.environ.pop(SPEC_ENV, None)
        else:
            os.environ[SPEC_ENV] = previous
        spec.unlink(missing_ok=True)


def tcp_socket(sock: socket.socket) -> socket.socket:
    """The same listening socket, saying it speaks TCP (protocol ``IPPROTO_TCP``).

    uvicorn creates the workers' socket with protocol 0 and the spawned workers rebuild it
    with that number; asyncio sets ``TCP_NODELAY`` only on connections whose socket says
    TCP, so every answer of a worker waited for the client's delayed ACK (Nagle): 44 ms per
    request at one connection for any app, against 0.7 ms in one process (wrk, a FastAPI
    hello world, uvicorn 0.54). A Unix socket is returned as it is.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return sock
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def app_from_spec() -> FastAPI:
    """The app of one ``lakehouse serve --workers`` worker, from the parent's spec file.

    A failure is logged as one line and exits with uvicorn's startup-failure code, so the
    supervisor stops instead of restarting the worker forever.
    """
    from uvicorn.config import STARTUP_FAILURE

    from lakehouse.apps.serving.app import create_app

    try:
        path = os.environ.get(SPEC_ENV)
        if not path:
            raise LakehouseError(f"{SPEC_ENV} is not set: start workers with `lakehouse serve`")
        with Path(path).open("rb") as spec_file:
            spec = pickle.load(spec_file)  # written by this user's parent process just before
        return create_app(spec["project"], spec["model"], **spec["options"])
    except Exception as exc:
        logging.getLogger("uvicorn.error").error("serving worker: %s", one_line(exc))
        sys.exit(STARTUP_FAILURE)


@contextlib.contextmanager
def running_server(
    app: FastAPI, port: int = 0, host: str = "127.0.0.1", *, startup_timeout_s: float = 15.0
) -> Iterator[str]:
    """Serve ``app`` in a background thread while the ``with`` block runs; yield its base URL."""
    with background_server(
        app, host, port, name="serving", lifespan="on", startup_timeout_s=startup_timeout_s
    ) as bound:
        yield f"http://{host}:{bound}"
