"""Run a serving app with uvicorn: in the foreground (:func:`serve`) or in a thread for tests.

:func:`running_server` starts uvicorn in a background thread on a free loopback port,
waits until it accepts requests (the app's lifespan has run, so the alias refresh and the
prediction-log flush are active), yields the base URL and stops it on exit (the lifespan's
shutdown flushes the prediction log).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from lakehouse.apps.http_guard import allowed_hosts
from lakehouse.apps.local_server import background_server
from lakehouse.config.project import Project


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
) -> None:
    """Serve ``model`` until interrupted (Ctrl-C / SIGTERM flush the prediction log).

    The ``Host`` names answered are loopback, ``host`` when it is a concrete address, and
    ``extra_hosts``; a body over ``max_body_bytes`` (default: the app's) answers 413.
    """
    from lakehouse.apps.serving.app import MAX_BODY_BYTES, create_app

    app = create_app(
        project,
        model,
        challenger_share=challenger_share,
        refresh_seconds=refresh_seconds,
        log_dir=log_dir,
        max_body_bytes=max_body_bytes or MAX_BODY_BYTES,
        hosts=allowed_hosts(extra_hosts, bind_host=host),
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)


@contextlib.contextmanager
def running_server(
    app: FastAPI, port: int = 0, host: str = "127.0.0.1", *, startup_timeout_s: float = 15.0
) -> Iterator[str]:
    """Serve ``app`` in a background thread while the ``with`` block runs; yield its base URL."""
    with background_server(
        app, host, port, name="serving", lifespan="on", startup_timeout_s=startup_timeout_s
    ) as bound:
        yield f"http://{host}:{bound}"
