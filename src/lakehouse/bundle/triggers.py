"""When ``lakehouse schedule`` starts a job: a cron ``schedule``, ``trigger.periodic`` or a
local ``trigger.file_arrival``, each as a timer the scheduler loop asks.

- **schedule**: the Quartz/cron fire times (:mod:`lakehouse.bundle.schedule`).
- **periodic** (``interval`` ``HOURS|DAYS|WEEKS``): every interval from the last start. The
  first start is one interval after the job's last recorded start (the run log under the
  data root), or at once when it never ran or that is overdue.
- **file_arrival** (``url``: a local directory, or a ``file:`` URI): the directory is
  polled (every ``poll_s`` seconds); files that are new or changed since the last start
  (or since the scheduler started) start the job once no file changed for
  ``wait_after_last_change_seconds`` and at least ``min_time_between_triggers_seconds``
  passed since the last start. Files already there when the scheduler starts do not
  trigger; removed files do not; hidden files (``.name``) are ignored. While the job has
  ``max_concurrent_runs`` runs going, the new files wait for the next start.
- ``table_update`` and ``continuous`` are Databricks' and are not run locally.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from lakehouse.config.job_settings import FileArrival, Periodic, Trigger

DEFAULT_POLL_S = 10.0
Snapshot = dict[str, tuple[int, int]]  # relative path -> (mtime_ns, size)


class Timer(Protocol):
    """What the scheduler asks a job's schedule or trigger."""

    @property
    def zone(self) -> ZoneInfo: ...

    @property
    def description(self) -> str: ...

    def first(self, start: datetime) -> datetime: ...

    def ready(self, now: datetime) -> bool: ...

    def fired(self, now: datetime) -> str: ...

    def next_after(self, fire: datetime, now: datetime) -> datetime: ...


def describe_trigger(trigger: Trigger) -> str:
    """``periodic every 2 HOURS`` / ``file arrival in <url>`` / ``table update of a, b``."""
    if trigger.periodic is not None:
        return f"periodic every {trigger.periodic.interval} {trigger.periodic.unit}"
    if trigger.file_arrival is not None:
        return f"file arrival in {trigger.file_arrival.url}"
    update = trigger.table_update or trigger.table
    tables = ", ".join(update.table_names) if update is not None else ""
    return f"table update of {tables}"


@dataclass
class PeriodicTimer:
    """Every ``interval`` from the last start."""

    periodic: Periodic
    last_start: datetime | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @property
    def description(self) -> str:
        return f"periodic every {self.periodic.interval} {self.periodic.unit}"

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.periodic.seconds)

    def first(self, start: datetime) -> datetime:
        if self.last_start is None:
            return start
        return max(start, self.last_start + self.interval)

    def ready(self, now: datetime) -> bool:
        return True

    def fired(self, now: datetime) -> str:
        return ""

    def next_after(self, fire: datetime, now: datetime) -> datetime:
        following = fire + self.interval
        while following <= now:  # a fire missed while busy or asleep is not caught up
            following += self.interval
        return following


def local_directory(url: str, resolve: Callable[[str], str]) -> Path | None:
    """The local directory a ``file_arrival.url`` names, or None for a remote location."""
    if url.startswith("file://"):
        url = url.removeprefix("file://")
    elif url.startswith("file:"):
        url = url.removeprefix("file:")
    elif "://" in url or url.startswith(("/Volumes/", "dbfs:")):
        return None
    return Path(resolve(url))


def snapshot(directory: Path) -> Snapshot:
    """Every visible file under ``directory`` with its modification time and size."""
    found: Snapshot = {}
    if not directory.is_dir():
        return found
    for folder, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                stat = path.stat()
            except OSError:  # removed meanwhile
                continue
            found[path.relative_to(directory).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return found


@dataclass
class FileArrivalTimer:
    """Polls a local directory; new or changed files start the job once they settle."""

    spec: FileArrival
    directory: Path
    start: datetime
    poll_s: float = DEFAULT_POLL_S
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    baseline: Snapshot = field(default_factory=dict)
    last_seen: Snapshot = field(default_factory=dict)
    last_change: datetime | None = None
    last_trigger: datetime | None = None

    def __post_init__(self) -> None:
        self.baseline = snapshot(self.directory)
        self.last_seen = dict(self.baseline)

    @property
    def description(self) -> str:
        return f"file arrival in {self.directory}"

    def pending(self) -> list[str]:
        """Files new or changed since the last start (as of the last poll)."""
        return sorted(k for k, v in self.last_seen.items() if self.baseline.get(k) != v)

    def first(self, start: datetime) -> datetime:
        return start + timedelta(seconds=self.poll_s)

    def ready(self, now: datetime) -> bool:
        current = snapshot(self.directory)
        if current != self.last_seen:
            self.last_seen = current
            self.last_change = now
        if not self.pending():
            return False
        settle = timedelta(seconds=self.spec.wait_after_last_change_seconds)
        if self.last_change is not None and now - self.last_change < settle:
            return False
        gap = timedelta(seconds=self.spec.min_time_between_triggers_seconds)
        return self.last_trigger is None or now - self.last_trigger >= gap

    def fired(self, now: datetime) -> str:
        files = self.pending()
        self.baseline = dict(self.last_seen)
        self.last_trigger = now
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        return f"{len(files)} new or changed file{'s' if len(files) != 1 else ''}: {shown}"

    def next_after(self, fire: datetime, now: datetime) -> datetime:
        return max(fire, now) + timedelta(seconds=self.poll_s)


def utc(at: datetime) -> datetime:
    """An aware datetime (naive means UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
