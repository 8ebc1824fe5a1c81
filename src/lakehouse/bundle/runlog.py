"""Run locks and the run log: one writer per data root, and a record of every run's life.

Locks (``filelock``, released by the OS when a process dies, even under SIGKILL):

- ``<data_root>/.locks/data_root.lock``: one job run writes a data root at a time. A second
  run waits up to ``wait_s`` seconds (``LAKEHOUSE_RUN_LOCK_WAIT_S``, default 0) and is then
  refused with one line naming the run that holds it.
- ``<data_root>/.locks/job.<job>.<slot>.lock``: ``max_concurrent_runs`` slots per job; a run
  that finds every slot taken is refused at once (as Databricks skips such a run). Runs on
  one data root are serialized by the data-root lock whatever this limit says.

The run log (``<data_root>/runs/<run_id>.json``) is written when a run starts (status
``RUNNING``, pid and host), when each of its tasks starts and ends, and when it ends (``SUCCESS`` or
``FAILED``). A killed run never writes its end: a ``RUNNING`` entry whose process is gone is
``ABANDONED`` (:func:`run_status`), and the next run on the data root records it so
(:meth:`RunLog.reap`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from lakehouse.core.errors import LakehouseError

LOCK_WAIT_ENV = "LAKEHOUSE_RUN_LOCK_WAIT_S"
RUNNING, ABANDONED = "RUNNING", "ABANDONED"


class RunRefusedError(LakehouseError):
    """Another run holds the data root, or the job's ``max_concurrent_runs`` slots."""


@dataclass
class RunEntry:
    """One run's life as the run log records it."""

    run_id: str
    job: str
    status: str
    pid: int
    host: str
    started: str
    ended: str | None = None
    running_tasks: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        """Whether the run's process still exists (on another host: assumed so)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def run_status(entry: RunEntry) -> str:
    """The entry's status, ``ABANDONED`` for a ``RUNNING`` run whose process is gone."""
    if entry.status == RUNNING and not entry.alive:
        return ABANDONED
    return entry.status


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


class RunLog:
    """The run log of one data root: ``<data_root>/runs/<run_id>.json``."""

    def __init__(self, data_root: Path) -> None:
        self.directory = data_root / "runs"

    def _path(self, run_id: str) -> Path:
        return self.directory / f"{run_id}.json"

    def write(self, entry: RunEntry) -> None:
        """Replace the entry atomically (a crash leaves the old or the new one)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(entry.run_id)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(entry), indent=1))
        tmp.replace(path)

    def start(self, run_id: str, job: str) -> RunEntry:
        """Record that run ``run_id`` of ``job`` started in this process."""
        entry = RunEntry(run_id, job, RUNNING, os.getpid(), socket.gethostname(), _now())
        self.write(entry)
        return entry

    def task_started(self, entry: RunEntry, task_key: str) -> None:
        if task_key not in entry.running_tasks:
            entry.running_tasks.append(task_key)
            self.write(entry)

    def task_ended(self, entry: RunEntry, task_key: str) -> None:
        if task_key in entry.running_tasks:
            entry.running_tasks.remove(task_key)
            self.write(entry)

    def end(self, entry: RunEntry, status: str) -> None:
        entry.status, entry.ended = status, _now()
        self.write(entry)

    def entries(self, job: str | None = None) -> dict[str, RunEntry]:
        """Every recorded run (of ``job``) by run id; unreadable entries are skipped."""
        out: dict[str, RunEntry] = {}
        for path in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []:
            try:
                entry = RunEntry(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if job is None or entry.job == job:
                out[entry.run_id] = entry
        return out

    def reap(self) -> list[RunEntry]:
        """Mark runs that never ended ``ABANDONED``; return them (with their running tasks).

        Called while holding the data-root lock: no other run on this root is alive, so a
        ``RUNNING`` entry is a run that was killed (its pid may even belong to another
        process by now).
        """
        reaped = [e for e in self.entries().values() if e.status == RUNNING]
        for entry in reaped:
            self.end(entry, ABANDONED)
        return reaped


def _holder(log: RunLog, job: str | None = None) -> str:
    """Who holds a lock, from the run log: ``run <id> (job <job>, pid <pid>)`` or a hint."""
    live = [e for e in log.entries(job).values() if run_status(e) == RUNNING]
    if not live:
        return f"a run of job {job} waiting for the data root" if job else "another process"
    newest = max(live, key=lambda e: e.started)
    return f"run {newest.run_id} (job {newest.job}, pid {newest.pid}, since {newest.started})"


def _lock_wait_s(wait_s: float | None) -> float:
    if wait_s is not None:
        return wait_s
    raw = os.environ.get(LOCK_WAIT_ENV, "0")
    try:
        return max(0.0, float(raw))
    except ValueError as exc:
        raise LakehouseError(f"{LOCK_WAIT_ENV}: expected seconds, got {raw!r}") from exc


@contextlib.contextmanager
def run_locks(
    data_root: Path, job: str, max_concurrent_runs: int, *, wait_s: float | None = None
) -> Iterator[None]:
    """Hold a slot of ``job`` and the data root's lock while the ``with`` block runs.

    Raises :class:`RunRefusedError` (one line) when every job slot is taken, or when the
    data root stays locked for ``wait_s`` seconds. Reentrant in one thread (the CLI takes the
    locks before it starts an engine, the runner takes them again).
    """
    locks = data_root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    log = RunLog(data_root)
    with contextlib.ExitStack() as stack:
        for slot in range(max_concurrent_runs):
            lock = FileLock(locks / f"job.{job}.{slot}.lock", is_singleton=True)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            stack.callback(lock.release)
            break
        else:
            raise RunRefusedError(
                f"job {job} not started: max_concurrent_runs={max_concurrent_runs} reached on "
                f"{data_root} ({_holder(log, job)} is running)"
            )
        root = FileLock(locks / "data_root.lock", is_singleton=True)
        wait = _lock_wait_s(wait_s)
        try:
            root.acquire(timeout=wait)
        except Timeout:
            raise RunRefusedError(
                f"job {job} not started: data root {data_root} is in use by {_holder(log)}"
                f" (waited {wait:g}s; set {LOCK_WAIT_ENV} to wait longer)"
            ) from None
        stack.callback(root.release)
        yield
