"""Harness pieces shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def git_commit() -> str | None:
    """Short hash of HEAD, recorded with every result; None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def timed(label: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` and print how long it took (to stderr, so tables on stdout stay clean)."""
    started = time.perf_counter()
    value = fn()
    print(f"  {label}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return value


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
