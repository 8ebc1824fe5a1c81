"""What the governed store publishes, the sink it publishes to, and a task's outcome."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from lakehouse.io.results import WriteResult
from lakehouse.io.store import TableStore


@dataclass(frozen=True)
class TaskStarted:
    """A task scope opened: what follows is attributed to ``task``."""

    task: str


@dataclass(frozen=True)
class TableRead:
    """A table was read at a Delta version."""

    table: str
    version: int


@dataclass(frozen=True)
class WriteCommitted:
    """A write finished (``result.committed`` tells whether it made a new version)."""

    result: WriteResult


@dataclass(frozen=True)
class AccessChecked:
    """An access decision, allowed or denied, with who asked in which run and task."""

    at: dt.datetime
    principal: str
    privilege: str
    securable: str
    allowed: bool
    reason: str
    job: str
    task: str
    run_id: str


GovernanceEvent = TaskStarted | TableRead | WriteCommitted | AccessChecked


@dataclass(frozen=True)
class TaskOutcome:
    """How a task scope ended: ``error`` is the exception it ended with, if any."""

    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


SUCCEEDED = TaskOutcome()


class Subscriber(Protocol):
    """Sees the events of a run and writes what it keeps when a scope flushes."""

    def handle(self, event: GovernanceEvent) -> None: ...

    def flush(self, store: TableStore, outcome: TaskOutcome) -> None:
        """Write the buffered rows through ``store`` (the system's own, ungoverned)."""
        ...


class EventSink:
    """Passes every event to its subscribers, in order."""

    def __init__(self, subscribers: list[Subscriber] | None = None) -> None:
        self.subscribers: list[Subscriber] = list(subscribers or [])

    def __bool__(self) -> bool:
        return bool(self.subscribers)

    def publish(self, event: GovernanceEvent) -> None:
        for subscriber in self.subscribers:
            subscriber.handle(event)
