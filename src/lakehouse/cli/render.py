"""Where command output goes, and the tables commands print."""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable

from rich.console import Console, OverflowMethod
from rich.table import Table

console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


def new_table(
    title: str,
    columns: Iterable[str],
    *,
    right: Collection[str] = (),
    overflow: OverflowMethod = "fold",
) -> Table:
    """An empty table with these columns: left-justified unless named in ``right``."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", overflow=overflow)
    return table
