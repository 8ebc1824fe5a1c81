"""POST a JSON document to a webhook (standard library only)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def post_json(url: str, payload: dict[str, Any], *, timeout: float = 10.0) -> int:
    """POST ``payload`` as JSON; return the HTTP status (raises ``OSError`` on failure)."""
    body = json.dumps(payload, default=str, allow_nan=False).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "lakehouse-monitor"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)
