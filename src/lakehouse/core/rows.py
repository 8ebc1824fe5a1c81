"""Result rows as text: cells for a table on screen, CSV, or JSON lines (pure).

Values are what a Spark ``Row`` holds. In every format NULL is distinct from the empty
string: a table shows ``NULL``, CSV leaves the field empty (an empty string is quoted:
``""``), JSON writes ``null``. Dates and timestamps are ISO 8601, binary values hex,
decimals exact (CSV and tables) or JSON numbers, arrays, maps and structs JSON.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FORMATS = ("table", "csv", "json")
NULL = "NULL"


def plain(value: Any) -> Any:
    """A JSON-ready Python value for one Spark value (rows and structs become dicts)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if hasattr(value, "asDict"):
        return {k: plain(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def cell(value: Any) -> str:
    """One value as text (NULL shown as ``NULL``; nested values as JSON)."""
    if value is None:
        return NULL
    if isinstance(value, str):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, float | bool | int):
        return str(value).lower() if isinstance(value, bool) else str(value)
    simple = plain(value)
    return simple if isinstance(simple, str) else json.dumps(simple, ensure_ascii=False)


def csv_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV (RFC 4180 quoting, ``\\n`` line ends): a header, then one line per row."""
    yield ",".join(_csv_field(c) for c in columns) + "\n"
    for row in rows:
        yield ",".join("" if v is None else _csv_field(cell(v)) for v in row) + "\n"


def _csv_field(text: str) -> str:
    """A field quoted when it must be, and always when empty (the bare empty field is NULL)."""
    if text == "" or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def json_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """One JSON object per row, keys in column order."""
    for row in rows:
        record = {name: plain(value) for name, value in zip(columns, row, strict=True)}
        yield json.dumps(record, ensure_ascii=False) + "\n"
