"""Fault injection for the sample API: the queued faults and how they change a response.

See :mod:`lakehouse.samples.api` for the kinds and what ``POST /faults`` accepts.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, model_validator

FaultKind = Literal["5xx", "429", "slow", "truncated", "repeat", "4xx"]


class FaultSpec(BaseModel):
    """Body of ``POST /faults``."""

    kind: FaultKind
    count: int = Field(default=1, ge=1)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: int = Field(default=1, ge=0)
    delay_s: float = Field(default=2.0, ge=0, le=60)
    paths: list[str] | None = None

    @model_validator(mode="after")
    def _status_fits_kind(self) -> FaultSpec:
        if self.status is not None:
            low = {"5xx": 500, "4xx": 400}.get(self.kind)
            if low is None or not low <= self.status < low + 100:
                raise ValueError(f"status {self.status} does not fit fault kind {self.kind!r}")
        return self


@dataclass
class QueuedFault:
    """A queued fault and how many more requests it applies to."""

    id: int
    spec: FaultSpec
    remaining: int

    def matches(self, path: str) -> bool:
        if self.spec.kind == "repeat" and path != "/data":
            return False
        return self.spec.paths is None or path in self.spec.paths

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "remaining": self.remaining, **self.spec.model_dump()}


async def early_response(fault: FaultSpec) -> Response | None:
    """The response a fault answers instead of the endpoint (None: the endpoint answers)."""
    if fault.kind == "5xx":
        status = fault.status or 503
        return JSONResponse({"detail": "injected fault", "kind": "5xx"}, status_code=status)
    if fault.kind == "4xx":
        status = fault.status or 404
        return JSONResponse({"detail": "injected fault", "kind": "4xx"}, status_code=status)
    if fault.kind == "429":
        return JSONResponse(
            {"detail": "rate limited", "kind": "429"},
            status_code=429,
            headers={"Retry-After": str(fault.retry_after)},
        )
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay_s)
    return None


def render(payload: dict[str, Any], fault: FaultSpec | None, status: int = 200) -> Response:
    """A JSON response; a ``truncated`` fault cuts its body in half (no longer valid JSON)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    if fault is not None and fault.kind == "truncated":
        return Response(body[: len(body) // 2], status_code=200, media_type="application/json")
    return Response(body, status_code=status, media_type="application/json")
