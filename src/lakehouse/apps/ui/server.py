"""Run the UI with uvicorn: in the foreground (:func:`serve`) or in a thread (:func:`running_ui`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import uvicorn
from fastapi import FastAPI

from lakehouse.apps.http_guard import allowed_hosts
from lakehouse.apps.local_server import background_server
from lakehouse.config.project import Project
from lakehouse.io.store import TableStore


def serve(
    project: Project,
    model: str,
    tables: TableStore,
    *,
    serving_url: str,
    host: str = "127.0.0.1",
    port: int = 8501,
    log_level: str = "info",
    max_body_bytes: int | None = None,
    extra_hosts: Sequence[str] = (),
) -> None:
    """Serve the UI of ``model`` until interrupted.

    The ``Host`` names answered are loopback, ``host`` when it is a concrete address, and
    ``extra_hosts``; a body over ``max_body_bytes`` (default: the app's) answers 413.
    """
    from lakehouse.apps.ui.app import MAX_BODY_BYTES, create_app

    app = create_app(
        project,
        model,
        serving_url=serving_url,
        tables=tables,
        max_body_bytes=max_body_bytes or MAX_BODY_BYTES,
        hosts=allowed_hosts(extra_hosts, bind_host=host),
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


@contextlib.contextmanager
def running_ui(app: FastAPI, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the UI ``app`` in a background thread while the ``with`` block runs; yield its URL."""
    with background_server(app, host, port, name="ui", lifespan="on") as bound:
        yield f"http://{host}:{bound}"
