"""Named kill points for the crash-matrix tests (``tests/reliability/test_crash_matrix.py``).

Some moments cannot be hit from outside by watching files: the MLflow registry commits a
model version and moves its aliases a few milliseconds apart. A run started with
``LAKEHOUSE_CRASH_AT=<point>`` kills its own process with SIGKILL (no cleanup, no
``finally``) the first time it passes ``<point>``, which is exactly what a power cut or an
OOM kill does there. Without the variable (every real run) :func:`crash_point` is a
dictionary lookup and nothing else.

Points: ``task:<task_key>`` (a task attempt ended and was recorded), ``commit:<table>`` (a
Delta commit to ``<table>``, e.g. ``commit:lakehouse.meta.processed_files``: the ingest
ledger), ``model:registered`` (a model version was created, no alias yet) and
``model:champion`` (``@champion`` was moved to it).
"""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "LAKEHOUSE_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process when ``LAKEHOUSE_CRASH_AT`` names ``name`` (tests only)."""
    if os.environ.get(CRASH_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
