"""Spark SQL text parsed with sqlglot (pure): one place that parses the user's SQL."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp


# functions whose value changes between calls or readers, or that reach outside the row
NON_DETERMINISTIC = frozenset(
    {
        "rand",
        "randn",
        "random",
        "uuid",
        "shuffle",
        "now",
        "current_timestamp",
        "current_date",
        "current_time",
        "current_datetime",
        "current_timezone",
        "localtimestamp",
        "current_user",
        "user",
        "session_user",
        "current_catalog",
        "current_database",
        "current_schema",
        "monotonically_increasing_id",
        "spark_partition_id",
        "input_file_name",
        "input_file_block_start",
        "input_file_block_length",
        "reflect",
        "java_method",
        "try_reflect",
    }
)


def parse_spark(text: str) -> list[exp.Expr]:
    """The statements of ``text`` in the Spark dialect; raises ``sqlglot.errors.SqlglotError``.

    sqlglot's warnings (e.g. "falling back to parsing as a Command") are silenced: callers
    refuse what they cannot use with an error of their own.
    """
    import sqlglot

    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return [tree for tree in sqlglot.parse(text, dialect="spark") if tree is not None]
    finally:
        quiet.setLevel(level)
