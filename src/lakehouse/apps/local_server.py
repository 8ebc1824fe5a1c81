"""uvicorn in a background thread on a loopback port: for the sample API, serving and tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Literal

import uvicorn
from fastapi import FastAPI


@contextlib.contextmanager
def background_server(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    name: str = "http",
    lifespan: Literal["on", "off"] = "on",
    startup_timeout_s: float = 15.0,
) -> Iterator[int]:
    """Serve ``app`` while the ``with`` block runs; yield the bound port (``port=0``: a free one).

    Returns once uvicorn accepts connections (after the app's lifespan startup) and stops it
    on exit. Access logs are off: they would show query strings, and with them any api_key.
    """
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
        lifespan=lifespan,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-{bound}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the {name} server on {host}:{bound} failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the {name} server on {host}:{bound} did not start in {startup_timeout_s}s"
                )
            time.sleep(0.01)
        yield bound
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
