"""Measurement pieces of the medallion benchmark: a process-tree RSS sampler, layer timing,
Gold checksums that every system's output is compared with, and the hand-written peers'
processed-files log."""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc

GOLD_TABLES = ("pricing_summary", "customer_revenue", "nation_revenue", "daily_shipments")
MB = 1024 * 1024


class ProcessedFiles:
    """The hand-written peers' processed-files log (``processed_files.json`` next to their
    tables): a drop file is new unless its path, size and mtime were ingested before."""

    def __init__(self, root: Path) -> None:
        self.path = root / "processed_files.json"
        self.done: dict[str, list[Any]] = (
            json.loads(self.path.read_text()) if self.path.exists() else {}
        )

    def new_files(self, landing: Path, table: str) -> list[Path]:
        seen = {tuple(x) for x in self.done.get(table, [])}
        folder = landing / table
        files = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))
        return [p for p in files if _identity(p) not in seen]

    def add(self, table: str, files: list[Path]) -> None:
        self.done.setdefault(table, []).extend(list(_identity(p)) for p in files)

    def save(self) -> None:
        self.path.write_text(json.dumps(self.done))


def _identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


class TreeRss(threading.Thread):
    """Samples the summed RSS of a process and all its descendants (a JVM child too).

    ``window()`` starts a new measurement window; ``peak()`` is the highest sum seen in it.
    """

    def __init__(self, pid: int | None = None, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True, name="tree-rss")
        self.root = psutil.Process(pid or os.getpid())
        self.interval_s = interval_s
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._window_peak = 0
        self.overall_peak = 0
        self.max_processes = 1

    def sample(self) -> int:
        procs = [self.root]
        with contextlib.suppress(psutil.Error):
            procs += self.root.children(recursive=True)
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        with self._lock:
            self._window_peak = max(self._window_peak, total)
            self.overall_peak = max(self.overall_peak, total)
            self.max_processes = max(self.max_processes, len(procs))
        return total

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def window(self) -> None:
        current = self.sample()
        with self._lock:
            self._window_peak = current

    def peak(self) -> int:
        self.sample()
        with self._lock:
            return self._window_peak

    def stop(self) -> None:
        self._stop_event.set()


@dataclass
class LayerTimes:
    """Wall seconds and peak tree RSS (bytes) per named layer, in the order run."""

    rss: TreeRss
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def layer(self, name: str) -> Iterator[None]:
        self.rss.window()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), self.rss.peak())

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "peak_rss_mb": {k: round(v / MB, 1) for k, v in self.peak_rss.items()},
            "overall_peak_rss_mb": round(self.rss.overall_peak / MB, 1),
            "max_processes": self.rss.max_processes,
        }


# ---------------------------------------------------------------- Gold checksums


def checksum(table: pa.Table) -> dict[str, Any]:
    """Row count, and per column: NULL count plus the sum (numbers) or distinct count."""
    out: dict[str, Any] = {"rows": table.num_rows}
    for name in sorted(table.column_names):
        col = table.column(name)
        entry: dict[str, Any] = {"nulls": col.null_count}
        kind = col.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            entry["sum"] = float(pc.sum(col.cast(pa.float64())).as_py() or 0.0)
        elif pa.types.is_decimal(kind):  # exact decimal sum, then a float
            entry["sum"] = float(pc.sum(col).as_py() or 0)
        elif pa.types.is_date32(kind):
            entry["distinct"] = pc.count_distinct(col).as_py()
            entry["sum"] = float(pc.sum(col.cast(pa.int32()).cast(pa.int64())).as_py() or 0)
        else:
            entry["distinct"] = pc.count_distinct(col).as_py()
        out[name] = entry
    return out


def read_gold(location: Path) -> pa.Table:
    """A Gold Delta table as Arrow, read with delta-rs (the same reader for every system)."""
    from deltalake import DeltaTable

    return DeltaTable(str(location)).to_pyarrow_table()


def gold_checksums(tables_root: Path) -> dict[str, Any]:
    """Checksums of the four Gold Delta tables under ``tables_root/gold/``."""
    return {t: checksum(read_gold(tables_root / "gold" / t)) for t in GOLD_TABLES}


def compare(ours: dict[str, Any], peer: dict[str, Any], rel: float = 1e-9) -> list[str]:
    """Differences between two checksum sets (empty: equal)."""
    problems: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if key not in a or key not in b:
                    problems.append(f"{path}.{key}: only in {'ours' if key in a else 'peer'}")
                else:
                    walk(a[key], b[key], f"{path}.{key}")
        elif isinstance(a, float) or isinstance(b, float):
            if not math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-6):
                problems.append(f"{path}: {a!r} != {b!r}")
        elif a != b:
            problems.append(f"{path}: {a!r} != {b!r}")

    walk(ours, peer, "gold")
    return problems
