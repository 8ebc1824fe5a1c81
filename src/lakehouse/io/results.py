"""What store operations report: writes, commits, compactions, restores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WriteResult:
    """What one write did to one table."""

    table: str
    operation: str
    rows_written: int
    version: int
    previous_version: int | None
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def committed(self) -> bool:
        """False when the write changed nothing (e.g. a MERGE with no changed rows)."""
        return self.version != self.previous_version


@dataclass(frozen=True)
class HistoryEntry:
    """One commit of a table's Delta log."""

    version: int
    timestamp_ms: int
    operation: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Compaction:
    """What an OPTIMIZE did."""

    files_added: int
    files_removed: int


@dataclass(frozen=True)
class Restored:
    """What a RESTORE did (data files taken out of and put back into the table)."""

    files_removed: int
    files_restored: int
