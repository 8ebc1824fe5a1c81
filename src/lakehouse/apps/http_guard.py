"""What every HTTP app of the project refuses before a route runs: foreign hosts, huge bodies.

- **Allowed hosts** (DNS rebinding): a page on another site can point its own domain name at
  127.0.0.1 and have the victim's browser talk to a local server as that site. Every app
  checks the ``Host`` header with Starlette's ``TrustedHostMiddleware``: the loopback names
  (``127.0.0.1``, ``localhost``, ``[::1]``) always, the address the server is bound to when it
  is a concrete one, and the hosts the operator names (``--allowed-host``); any other host
  gets 400.
- **Body size**: FastAPI's ``max_body_size`` refuses a body over the limit with 413, from its
  ``Content-Length`` or, for a chunked body, as soon as the bytes read pass the limit.
- **422 answers stay JSON**: a validation error echoes the input, which may be ``NaN`` or
  ``Infinity`` (Python's JSON parser reads those tokens); FastAPI's handler would fail to
  encode it (a 500), so :func:`json_safe_validation_errors` writes such numbers as strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from lakehouse.core.errors import LakehouseError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")


def host_pattern(host: str) -> str:
    """``host`` as it appears in a ``Host`` header (IPv6 literals in brackets), lower case."""
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def allowed_hosts(configured: Iterable[str] = (), bind_host: str | None = None) -> list[str]:
    """The ``Host`` names an app answers: loopback, a concrete bind address, ``configured``.

    ``configured`` entries are host names or addresses without a port; ``*.example.com``
    allows the subdomains of ``example.com``; ``*`` allows every host (no check).
    """
    hosts = list(LOOPBACK_HOSTS)
    if bind_host is not None and bind_host.strip() not in WILDCARD_BINDS:
        hosts.append(host_pattern(bind_host))
    for host in configured:
        pattern = host_pattern(host)
        if not pattern or "/" in pattern or "*" in pattern[1:] or "]:" in pattern:
            raise LakehouseError(
                f"allowed host {host!r}: give a host name or address without scheme or port "
                "(e.g. serving.internal, 10.0.0.5 or *.example.com)"
            )
        if pattern.count(":") == 1:
            raise LakehouseError(
                f"allowed host {host!r}: give a host name or address without scheme or port "
                "(e.g. serving.internal, 10.0.0.5 or *.example.com)"
            )
        if pattern.startswith("*") and pattern != "*" and not pattern.startswith("*."):
            raise LakehouseError(f"allowed host {host!r}: a wildcard must look like *.example.com")
        hosts.append(pattern)
    return list(dict.fromkeys(hosts))


def guard_hosts(app: FastAPI, hosts: Iterable[str]) -> None:
    """Answer 400 to requests whose ``Host`` header is not one of ``hosts``."""
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts), www_redirect=False)


def check_body_limit(max_body_bytes: int) -> int:
    """``max_body_bytes`` when it is a positive byte count; else a one-line error."""
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
        raise LakehouseError(f"max body size {max_body_bytes!r} is not a whole number of bytes")
    if max_body_bytes < 1:
        raise LakehouseError(f"max body size {max_body_bytes} must be at least 1 byte")
    return max_body_bytes


def json_safe(value: Any) -> Any:
    """``value`` (JSON-able) with every non-finite float written as a string (``"nan"``, ``"inf"``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def json_safe_validation_errors(app: FastAPI) -> None:
    """422 answers as FastAPI gives them, with non-finite inputs echoed as strings."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))}
        )
