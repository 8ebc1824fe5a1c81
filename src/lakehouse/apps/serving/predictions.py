"""The prediction log: every served prediction as a JSON line, landed for Bronze to ingest.

Lines are buffered in memory and written as one *complete* file per flush (every
``flush_records`` lines, every ``flush_seconds`` and on shutdown):
``<dir>/predictions-<YYYYMMDD>-<pid>-<token>-<seq>.jsonl``. Each file is written under a
``.tmp`` name and renamed when complete, and a file is never appended to afterwards: the
Bronze file source skips ``.tmp`` files and ingests each file once (path + size + mtime), so
it never sees a half-written file and never re-reads a grown one. ``token`` is random per
process, so a restarted server with the same pid (pid 1 in a container) never overwrites
earlier files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class PredictionLog:
    """Thread-safe buffered JSON-lines writer (see the module docstring)."""

    def __init__(
        self, directory: Path, *, flush_records: int = 1000, flush_seconds: float = 10.0
    ) -> None:
        self.directory = Path(directory)
        self.flush_records = max(1, flush_records)
        self.flush_seconds = flush_seconds
        self._token = uuid.uuid4().hex[:8]
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._seq = 0
        self._last_flush = time.monotonic()
        self.lines_written = 0
        self.files_written = 0

    def append(self, records: list[dict[str, Any]]) -> None:
        """Buffer these records; flush when the buffer is full.

        Each line is strict JSON: a non-finite number (``NaN``, ``Infinity``, which JSON has
        no token for) raises ``ValueError`` and nothing of ``records`` is buffered.
        """
        lines = [
            json.dumps(r, separators=(",", ":"), default=str, allow_nan=False) for r in records
        ]
        with self._lock:
            self._buffer.extend(lines)
            full = len(self._buffer) >= self.flush_records
        if full:
            self.flush()

    def flush_if_due(self) -> None:
        """Flush when ``flush_seconds`` passed since the last flush (called periodically)."""
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered lines as one complete file; return it (None when empty)."""
        with self._write_lock:
            with self._lock:
                lines, self._buffer = self._buffer, []
                self._last_flush = time.monotonic()
            if not lines:
                return None
            self._seq += 1
            day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
            name = f"predictions-{day}-{os.getpid()}-{self._token}-{self._seq:06d}.jsonl"
            self.directory.mkdir(parents=True, exist_ok=True)
            final = self.directory / name
            partial = final.with_name(name + ".tmp")
            with partial.open("w", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
                out.flush()
                os.fsync(out.fileno())
            partial.replace(final)
            self.lines_written += len(lines)
            self.files_written += 1
            log.debug("prediction log: %d lines -> %s", len(lines), final)
            return final

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)
