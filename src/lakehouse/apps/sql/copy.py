"""``COPY … TO STDOUT`` for the SQL endpoint: statement parsing and PostgreSQL's three formats.

Arrow-native clients (ADBC's PostgreSQL driver, connectorx, ``polars.read_database_uri``)
and ``psql``'s ``\\copy`` fetch results with ``COPY (query) TO STDOUT``. The query runs like
any other read (the read-only gate, translation, the statement limits); its rows come from
DuckDB as Arrow record batches and are encoded a column at a time in PostgreSQL's ``text``,
``csv`` or ``binary`` COPY format (:mod:`lakehouse.apps.sql.copy_format`), one CopyData
message per row as PostgreSQL sends them, a batch of messages per write. ``COPY … FROM``
is a write (25006) and ``COPY … TO 'file'`` / ``PROGRAM`` would write on the server (42501).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lakehouse.apps.sql.codec import ColumnInfo, PgError
from lakehouse.apps.sql.copy_format import (
    CopyOptions,
    copy_header,
    copy_messages,
    copy_trailer,
    encode_rows,
)

_HEAD = re.compile(r"^COPY\s+", re.IGNORECASE)
_TABLE = re.compile(
    r'^((?:"[^"]+"|\w+)(?:\s*\.\s*(?:"[^"]+"|\w+)){0,2})\s*(\([^()]*\))?\s*', re.IGNORECASE
)
_TARGET = re.compile(
    r"^(TO|FROM)\s+(STDOUT|STDIN|PROGRAM\b|'(?:[^']|'')*')\s*(.*)$", re.IGNORECASE | re.DOTALL
)
_OPTION_WORDS = re.compile(
    r"\s*(BINARY|CSV|HEADER|DELIMITER|NULL|QUOTE|ESCAPE|ENCODING|FORCE\s+QUOTE|"
    r"FORCE_QUOTE|FORMAT|FREEZE|OIDS)\b\s*(?:AS\s+)?",
    re.IGNORECASE,
)
# a string literal, or FORCE QUOTE's * or column list
_OPTION_ARG = re.compile(r"\s*('(?:[^']|'')*'|\*|(?:\"[^\"]+\"|\w+)(?:\s*,\s*(?:\"[^\"]+\"|\w+))*)")


@dataclass
class CopyCommand:
    """A parsed ``COPY source TO STDOUT``: the query to run and how to write its rows."""

    query: str
    options: CopyOptions


def parse_copy(sql: str) -> CopyCommand | None:
    """The COPY statement in ``sql`` (None if it is no COPY); refuses what is not TO STDOUT."""
    head = _HEAD.match(sql)
    if head is None:
        return None
    rest = sql[head.end() :]
    if rest.startswith("("):
        end = _closing_paren(rest)
        query, rest = rest[1:end].strip(), rest[end + 1 :].lstrip()
    else:
        table = _TABLE.match(rest)
        if table is None:
            raise PgError("syntax error in COPY: expected a table name or (query)", "42601")
        columns = (table.group(2) or "(*)")[1:-1].strip() or "*"
        query, rest = f"SELECT {columns} FROM {table.group(1)}", rest[table.end() :]
    target = _TARGET.match(rest)
    if target is None:
        raise PgError("syntax error in COPY: expected TO STDOUT", "42601")
    direction, where = target.group(1).upper(), target.group(2).upper()
    if direction == "FROM":
        raise PgError(
            "the lakehouse SQL endpoint is read-only: COPY FROM statements are not allowed "
            "(write through lakehouse jobs instead)",
            "25006",
        )
    if where != "STDOUT":
        raise PgError(
            "permission denied: COPY to a file or program is not allowed on the SQL endpoint; "
            "use COPY … TO STDOUT (psql: \\copy)",
            "42501",
        )
    return CopyCommand(query, parse_options(target.group(3)).check())


def _closing_paren(text: str) -> int:
    depth, i, quote = 0, 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise PgError("syntax error in COPY: unbalanced parentheses", "42601")


def parse_options(text: str) -> CopyOptions:
    """``WITH (FORMAT csv, HEADER true, …)`` or the old ``WITH CSV HEADER DELIMITER ','``."""
    text = re.sub(r"^WITH\b", "", text.strip(), flags=re.IGNORECASE).strip()
    options = CopyOptions()
    if text.startswith("("):
        inner = text[1 : _closing_paren(text)]
        for item in _split_options(inner):
            name, _, value = item.strip().partition(" ")
            _set_option(options, name.lower(), value.strip())
        return options
    pos = 0
    while pos < len(text):
        word = _OPTION_WORDS.match(text, pos)
        if word is None:
            raise PgError(f'syntax error in COPY options at "{text[pos:]}"', "42601")
        name, pos = re.sub(r"\s+", "_", word.group(1).lower()), word.end()
        value = ""
        if name in ("delimiter", "null", "quote", "escape", "encoding", "force_quote"):
            arg = _OPTION_ARG.match(text, pos)
            if arg is None:
                raise PgError(f"syntax error in COPY option {name.upper()}", "42601")
            value, pos = arg.group(1).strip(), arg.end()
        elif name in ("binary", "csv"):
            name, value = "format", name
        _set_option(options, name, value)
    return options


def _split_options(inner: str) -> list[str]:
    items, depth, start, quote = [], 0, 0, False
    for i, ch in enumerate(inner):
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and depth == 0 and ch == ",":
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    return [item for item in items if item.strip()]


def _set_option(options: CopyOptions, name: str, value: str) -> None:
    unquoted = value[1:-1].replace("''", "'") if value.startswith("'") else value
    if name == "format":
        options.format = unquoted.lower()
    elif name == "header":
        options.header = unquoted.lower() not in ("false", "off", "0")
    elif name in ("delimiter", "null", "quote", "escape"):
        setattr(options, name, unquoted)
    elif name == "force_quote":
        cols = unquoted.strip().strip("()").strip()
        options.force_quote = (
            True if cols == "*" else [c.strip().strip('"') for c in cols.split(",")]
        )
    elif name in ("encoding", "freeze", "oids", "force_not_null", "force_null"):
        return
    else:
        raise PgError(f'option "{name}" not recognized', "42601")


@dataclass
class CopyOut:
    """A running ``COPY … TO STDOUT``: the query's columns, the options, its Arrow batches."""

    columns: list[ColumnInfo]
    options: CopyOptions
    batches: Iterator[pa.RecordBatch]


def send_copy(
    write: Callable[[Any], object], copy: CopyOut, count: Callable[[int, int], None]
) -> int:
    """Stream ``copy`` as CopyOutResponse, CopyData messages and CopyDone; the row count.

    One CopyData message per row, as PostgreSQL sends them (psycopg's ``Copy.rows()`` reads
    a row per message), framed a batch at a time and written in one call per batch.
    ``count(rows, bytes)`` is told each batch before it is sent (the result's accounting and
    caps: an error it raises ends the COPY with that error, as PostgreSQL ends a failed one).
    """
    binary = copy.options.format == "binary"
    ncols = len(copy.columns)
    write(_message(b"H", struct.pack(f"!bh{ncols}h", int(binary), ncols, *[int(binary)] * ncols)))
    pending = copy_header(copy.columns, copy.options)
    if pending and not binary:  # the header line is a message of its own
        write(_message(b"d", pending))
        pending = b""
    rows = 0
    for batch in copy.batches:
        if not batch.num_rows:
            continue
        encoded = encode_rows(batch, copy.columns, copy.options)
        first = b""
        if pending:  # the binary signature goes with the first row, as PostgreSQL sends it
            first = _message(b"d", pending + encoded[0].as_py())
            encoded, pending = encoded.slice(1), b""
        data = copy_messages(encoded)
        count(batch.num_rows, len(first) + data.nbytes)
        rows += batch.num_rows
        if first:
            write(first)
        write(data)
    pending += copy_trailer(copy.options)
    if pending:
        write(_message(b"d", pending))
    write(_message(b"c"))
    return rows


def _message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload
