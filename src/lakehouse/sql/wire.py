"""A read-only PostgreSQL wire-protocol (v3) front for the DuckDB mirror.

It speaks what BI tools' PostgreSQL drivers use: startup (SSL/GSS requests refused so
clients fall back to plain TCP), trust or cleartext-password authentication, simple queries
(several statements per message), the extended protocol (Parse / Bind / Describe / Execute /
Close / Sync / Flush, text and common binary formats, row limits with portal suspension)
and ErrorResponse with SQLSTATE codes. Queries run in DuckDB, which also provides
``information_schema`` and ``pg_catalog``; a few PostgreSQL spellings DuckDB lacks
(``pg_catalog.fn(...)``, ``OPERATOR(pg_catalog.~)``, ``version()``, ``SHOW name``) are
translated. Only reads run: anything else gets SQLSTATE 25006 (read-only transaction).

Why not an existing server (checked with the versions on PyPI in 2026-11):
roapi 0.12.7 cannot load a partitioned Delta table with its default memory table and
garbles partition columns without it, riffq has no wheel for Linux x86-64, buenavista 0.5.0
(last release 2024) parses every untyped parameter as a date and treats any query that
contains the word "begin" as a transaction start.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import itertools
import json
import logging
import math
import re
import secrets
import socket
import socketserver
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

log = logging.getLogger(__name__)

PROTOCOL_V3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
SERVER_VERSION = "15.0"
PG_EPOCH = dt.datetime(2000, 1, 1)
PG_EPOCH_DATE = dt.date(2000, 1, 1)

# DuckDB type name -> (PostgreSQL type OID, type size)
TYPE_OIDS: dict[str, tuple[int, int]] = {
    "BOOLEAN": (16, 1),
    "TINYINT": (21, 2),
    "SMALLINT": (21, 2),
    "UTINYINT": (21, 2),
    "INTEGER": (23, 4),
    "USMALLINT": (23, 4),
    "BIGINT": (20, 8),
    "UINTEGER": (20, 8),
    "UBIGINT": (1700, -1),
    "HUGEINT": (1700, -1),
    "UHUGEINT": (1700, -1),
    "FLOAT": (700, 4),
    "DOUBLE": (701, 8),
    "VARCHAR": (25, -1),
    "DATE": (1082, 4),
    "TIME": (1083, 8),
    "TIMESTAMP": (1114, 8),
    "TIMESTAMP_S": (1114, 8),
    "TIMESTAMP_MS": (1114, 8),
    "TIMESTAMP_NS": (1114, 8),
    "TIMESTAMP WITH TIME ZONE": (1184, 8),
    "INTERVAL": (1186, 16),
    "BLOB": (17, -1),
    "UUID": (2950, 16),
    "JSON": (114, -1),
}
TEXT_OID = 25
NUMERIC_OID = 1700
INT_OIDS = {20, 21, 23, 26}
FLOAT_OIDS = {700, 701}

# What ``SHOW name`` answers, and the ParameterStatus values sent at startup.
SETTINGS: dict[str, str] = {
    "server_version": SERVER_VERSION,
    "server_version_num": "150000",
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "is_superuser": "off",
    "default_transaction_read_only": "on",
    "transaction_read_only": "on",
    "transaction_isolation": "read committed",
    "default_transaction_isolation": "read committed",
    "search_path": '"$user", public',
    "max_identifier_length": "63",
    "max_index_keys": "32",
    "lc_collate": "C",
    "lc_ctype": "C",
    "default_table_access_method": "heap",
}
STARTUP_PARAMETERS = (
    "server_version",
    "server_encoding",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "integer_datetimes",
    "standard_conforming_strings",
    "is_superuser",
    "default_transaction_read_only",
)
READ_STATEMENTS = {"SELECT", "EXPLAIN"}

_FN_PREFIX = re.compile(r"\b(?:pg_catalog|information_schema)\s*\.\s*(\w+)\s*\(", re.IGNORECASE)
_OPERATOR = re.compile(r"OPERATOR\s*\(\s*pg_catalog\s*\.\s*([^\s)]+)\s*\)", re.IGNORECASE)
_VERSION = re.compile(r"\bversion\s*\(\s*\)", re.IGNORECASE)
_REG_CAST = re.compile(r"::\s*(pg_catalog\s*\.\s*)?reg(class|type|proc|namespace)\b", re.IGNORECASE)
_GET_EXPR = re.compile(r"\bpg_get_expr\s*\(([^,()]+),([^,()]+),\s*(true|false)\s*\)", re.IGNORECASE)
_CATALOG_CAST = re.compile(r"::\s*pg_catalog\s*\.\s*", re.IGNORECASE)
_COLLATE = re.compile(r'\s+COLLATE\s+(pg_catalog\s*\.\s*)?"?default"?', re.IGNORECASE)
_REGCLASS = re.compile(r"CAST\s*\(\s*(\$\d+|'[^']*')\s+AS\s+REGCLASS\s*\)", re.IGNORECASE)
_REG_LITERAL = re.compile(  # 'pg_class'::regclass, 'int4'::regtype: a name looked up as an OID
    r"('(?:[^']|'')*')\s*::\s*(?:pg_catalog\s*\.\s*)?reg(class|type)\b", re.IGNORECASE
)
_AS_REG = re.compile(r"AS\s+REG(CLASS|TYPE|PROC|NAMESPACE)\s*\)", re.IGNORECASE)
EMULATED_RELATIONS = (
    "pg_attribute",
    "pg_class",
    "pg_collation",
    "pg_database",
    "pg_description",
    "pg_index",
    "pg_inherits",
    "pg_namespace",
    "pg_opclass",
    "pg_policy",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_roles",
    "pg_settings",
    "pg_statistic_ext",
    "pg_trigger",
    "pg_type",
)
_EMULATED = re.compile(
    r"\bpg_catalog\s*\.\s*(" + "|".join(EMULATED_RELATIONS) + r")\b",
    re.IGNORECASE,
)
_JSON_BUILD = re.compile(r"\bjsonb?_build_object\s*\(", re.IGNORECASE)
_FORMAT_TYPE = re.compile(r"\bformat_type\s*\(", re.IGNORECASE)
_CURRENT_SETTING = re.compile(r"\bcurrent_setting\s*\(", re.IGNORECASE)
_DESCRIPTION = re.compile(r"\b(obj|col)_description\s*\(", re.IGNORECASE)
_DECLARE = re.compile(
    r'^DECLARE\s+("[^"]+"|\w+)\s+(?:BINARY\s+)?(?:INSENSITIVE\s+)?(?:NO\s+)?(?:SCROLL\s+)?'
    r"CURSOR\s+(?:(?:WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(.+)$",
    re.IGNORECASE | re.DOTALL,
)
_FETCH = re.compile(
    r"^(FETCH|MOVE)\s+(?:(NEXT|ALL|FORWARD\s+ALL|FORWARD\s+\d+|FORWARD|\d+)\s+)?"
    r'(?:FROM|IN)\s+("[^"]+"|\w+)$',
    re.IGNORECASE,
)
_CLOSE = re.compile(r'^CLOSE\s+("[^"]+"|\w+)$', re.IGNORECASE)
_SHOW = re.compile(r"^SHOW\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_TXN = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK\s+TO|ROLLBACK|ABORT|SAVEPOINT|RELEASE)\b",
    re.IGNORECASE | re.DOTALL,
)
_NOOP = re.compile(r"^(SET|RESET|DISCARD|DEALLOCATE|CLOSE|UNLISTEN)\b", re.IGNORECASE)


class PgError(Exception):
    """An error the client sees with its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str = "XX000") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class ReadOnlyError(PgError):
    """A statement other than a read."""

    def __init__(self, kind: str) -> None:
        super().__init__(
            f"the lakehouse SQL endpoint is read-only: {kind} statements are not allowed "
            "(write through lakehouse jobs instead)",
            "25006",
        )


def translate(sql: str) -> str:
    """Rewrite the PostgreSQL spellings DuckDB does not parse or bind."""
    sql = _OPERATOR.sub(r"\1", sql)
    sql = _REGCLASS.sub(r"to_regclass(\1)", sql)
    sql = _REG_LITERAL.sub(r"to_reg\2(\1)", sql)
    sql = _AS_REG.sub("AS BIGINT)", sql)
    sql = _EMULATED.sub(r"memory.main.\1", sql)
    sql = _FN_PREFIX.sub(r"\1(", sql)
    sql = _FORMAT_TYPE.sub("lh_format_type(", sql)
    sql = _DESCRIPTION.sub(r"lh_\1_description(", sql)
    sql = _VERSION.sub(f"'PostgreSQL {SERVER_VERSION} (lakehouse SQL endpoint on DuckDB)'", sql)
    sql = _COLLATE.sub("", sql)
    sql = _CURRENT_SETTING.sub("lh_current_setting(", sql)
    sql = _JSON_BUILD.sub("json_object(", sql)
    sql = _REG_CAST.sub("", sql)
    sql = _GET_EXPR.sub(r"pg_get_expr(\1,\2)", sql)
    return _CATALOG_CAST.sub("::", sql)


def split_statements(sql: str) -> list[str]:
    """The statements of a simple-query message (DuckDB's parser; one piece if it fails)."""
    try:
        pieces = [s.query for s in duckdb.extract_statements(sql)]
    except duckdb.Error:
        return [sql]
    return [p for p in (piece.strip().rstrip(";").strip() for piece in pieces) if p] or [""]


def statement_kind(sql: str) -> str:
    """DuckDB's statement type name (``SELECT``, ``INSERT``, …)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.ParserException as exc:
        raise PgError(str(exc), "42601") from exc
    if len(statements) != 1:
        raise PgError("one statement per prepared statement", "42601")
    return str(statements[0].type).rsplit(".", 1)[-1]


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_name: str

    @property
    def oid(self) -> int:
        return _oid(self.type_name)[0]

    @property
    def size(self) -> int:
        return _oid(self.type_name)[1]

    @property
    def typmod(self) -> int:
        m = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", self.type_name)
        if m:
            return ((int(m.group(1)) << 16) | int(m.group(2))) + 4
        return -1


def _oid(type_name: str) -> tuple[int, int]:
    if type_name.startswith("DECIMAL"):
        return NUMERIC_OID, -1
    if type_name.startswith("VARCHAR"):
        return TEXT_OID, -1
    return TYPE_OIDS.get(type_name, (TEXT_OID, -1))


def _text_timestamp(value: dt.datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        hours, mins = divmod(abs(minutes), 60)
        text += f"{sign}{hours:02d}" + (f":{mins:02d}" if mins else "")
    return text


def _text_interval(value: dt.timedelta) -> str:
    days, seconds = value.days, value.seconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if value.microseconds:
        clock += f".{value.microseconds:06d}".rstrip("0")
    day_part = f"{days} day{'s' if abs(days) != 1 else ''}" if days else ""
    return " ".join(p for p in (day_part, clock) if p and (p != "00:00:00" or not day_part))


def _text_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def text_value(value: Any) -> str:
    """A Python value from DuckDB in PostgreSQL's text output format."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return _text_float(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return _text_timestamp(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _text_interval(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _binary_numeric(value: decimal.Decimal) -> bytes:
    if value.is_nan():
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    if value.is_infinite():
        return struct.pack("!hhHh", 0, 0, 0xF000 if value < 0 else 0xD000, 0)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    dscale = max(0, -exponent)
    text = "".join(map(str, digits))
    if exponent > 0:
        text += "0" * exponent
        exponent = 0
    int_len = len(text) + exponent
    int_part, frac_part = text[: max(int_len, 0)] or "0", text[max(int_len, 0) :]
    frac_part = "0" * max(-int_len, 0) + frac_part
    int_part = int_part.zfill((len(int_part) + 3) // 4 * 4)
    frac_part = frac_part.ljust((len(frac_part) + 3) // 4 * 4, "0")
    groups = [int(int_part[i : i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i : i + 4]) for i in range(0, len(frac_part), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    head = struct.pack("!hhhh", len(groups), weight, 0x4000 if sign else 0, dscale)
    return head + b"".join(struct.pack("!H", g) for g in groups)


def binary_value(value: Any, oid: int) -> bytes:
    """A value in PostgreSQL's binary format for ``oid`` (the types drivers ask for)."""
    if oid == 16:
        return b"\x01" if value else b"\x00"
    if oid == 21:
        return struct.pack("!h", value)
    if oid == 23:
        return struct.pack("!i", value)
    if oid == 20:
        return struct.pack("!q", value)
    if oid == 700:
        return struct.pack("!f", value)
    if oid == 701:
        return struct.pack("!d", value)
    if oid == NUMERIC_OID:
        return _binary_numeric(decimal.Decimal(value))
    if oid == 1082:
        return struct.pack("!i", (value - PG_EPOCH_DATE).days)
    if oid in (1114, 1184):
        naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        delta = naive - PG_EPOCH
        return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds)
    if oid == 1083:
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**6
        return struct.pack("!q", micros + value.microsecond)
    if oid == 1186:
        return struct.pack("!qii", value.seconds * 10**6 + value.microseconds, value.days, 0)
    if oid == 17:
        return bytes(value)
    if oid == 2950:
        return uuid.UUID(str(value)).bytes
    return text_value(value).encode()


def decode_parameter(raw: bytes | None, oid: int, binary: bool) -> Any:
    """A bound parameter as the Python value DuckDB should see."""
    if raw is None:
        return None
    if binary:
        return _binary_parameter(raw, oid)
    return _text_parameter(raw.decode(), oid)


def _binary_parameter(raw: bytes, oid: int) -> Any:
    """A parameter in PostgreSQL's binary format (what drivers send for typed values)."""
    if oid == 16:
        return raw != b"\x00"
    if oid in INT_OIDS:
        return int.from_bytes(raw, "big", signed=True)
    if oid == 700:
        return struct.unpack("!f", raw)[0]
    if oid == 701:
        return struct.unpack("!d", raw)[0]
    if oid == NUMERIC_OID:
        return _numeric_from_binary(raw)
    if oid == 17:
        return raw
    if oid in (0, 25, 1043, 1042, 19, 114):
        return raw.decode()
    if oid == 1082:
        return PG_EPOCH_DATE + dt.timedelta(days=struct.unpack("!i", raw)[0])
    if oid in (1114, 1184):
        stamp = PG_EPOCH + dt.timedelta(microseconds=struct.unpack("!q", raw)[0])
        return stamp.replace(tzinfo=dt.UTC) if oid == 1184 else stamp
    if oid == 1083:
        return (dt.datetime.min + dt.timedelta(microseconds=struct.unpack("!q", raw)[0])).time()
    if oid == 2950:
        return str(uuid.UUID(bytes=raw))
    raise PgError(f"binary parameters of type OID {oid} are not supported", "0A000")


def _numeric_from_binary(raw: bytes) -> decimal.Decimal:
    """PostgreSQL's binary numeric: digit count, weight, sign, scale, base-10000 digits."""
    ndigits, weight, sign, dscale = struct.unpack("!hhHh", raw[:8])
    if sign == 0xC000:
        return decimal.Decimal("NaN")
    if sign in (0xD000, 0xF000):
        return decimal.Decimal("-Infinity" if sign == 0xF000 else "Infinity")
    digits = struct.unpack(f"!{ndigits}H", raw[8 : 8 + 2 * ndigits])
    coefficient = int("".join(f"{d:04d}" for d in digits) or "0")
    value = decimal.Decimal(-coefficient if sign == 0x4000 else coefficient)
    value = value.scaleb(4 * (weight - ndigits + 1), context=_WIDE)
    return value.quantize(decimal.Decimal(1).scaleb(-dscale), context=_WIDE)


_WIDE = decimal.Context(prec=131072 + 16383)  # exact: PostgreSQL's most numeric digits
# A date with a time zone ("2024-03-01 +00", pgjdbc's setDate): PostgreSQL's date, timestamp
# and timestamptz inputs accept it, DuckDB's do not (they do with a midnight time added).
_DATE_WITH_ZONE = re.compile(r"^(\d{4,}-\d{2}-\d{2})\s*([+-]\d{2}(?::?\d{2}){0,2})$")


def _text_parameter(text: str, oid: int) -> Any:
    """A parameter in PostgreSQL's text format, parsed as the type ``oid`` names."""
    if oid == 16:
        return text.lower() in ("t", "true", "1", "yes", "on")
    if oid in INT_OIDS:
        return int(text)
    if oid in FLOAT_OIDS:
        return float(text)
    if oid == NUMERIC_OID:
        return decimal.Decimal(text)
    if oid == 1082:  # PostgreSQL's date input ignores a zone after the date
        return dt.date.fromisoformat(text.split()[0])
    dated = _DATE_WITH_ZONE.match(text.strip()) if oid in (0, 1114, 1184) else None
    if dated:
        text = f"{dated.group(1)} 00:00:00{dated.group(2)}"
    if oid == 1114:  # and so does its timestamp (without time zone) input
        return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    if oid == 1184:
        stamp = dt.datetime.fromisoformat(text.strip())
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)  # the session zone
    return text


# ------------------------------------------------------------------ results


@dataclass
class Result:
    """A statement's outcome: columns and rows for a query, else just a command tag."""

    tag: str
    columns: list[ColumnInfo] | None = None
    rows: Iterator[tuple[Any, ...]] | None = None
    sent: int = 0
    done: bool = False
    cursor: duckdb.DuckDBPyConnection | None = None

    def close(self) -> None:
        if self.cursor is not None:
            self.cursor.close()
            self.cursor = None


def _rows(cursor: duckdb.DuckDBPyConnection, batch: int = 2048) -> Iterator[tuple[Any, ...]]:
    while True:
        chunk = cursor.fetchmany(batch)
        if not chunk:
            return
        yield from chunk


def _values_result(columns: list[str], rows: list[tuple[Any, ...]], tag: str = "SHOW") -> Result:
    return Result(tag=tag, columns=[ColumnInfo(c, "VARCHAR") for c in columns], rows=iter(rows))


@dataclass
class Prepared:
    sql: str
    param_oids: list[int]


@dataclass
class Portal:
    statement: Prepared
    params: list[Any]
    result_formats: list[int]
    result: Result | None = None


@dataclass
class SessionState:
    """One client connection's state."""

    user: str
    database: str
    connect: Callable[[], duckdb.DuckDBPyConnection]
    in_transaction: bool = False
    failed: bool = False
    statements: dict[str, Prepared] = field(default_factory=dict)
    portals: dict[str, Portal] = field(default_factory=dict)
    cursors: dict[str, Result] = field(default_factory=dict)


class QueryEngine:
    """Runs one statement for a session: intercepts, the read-only gate, then DuckDB."""

    def __init__(self, before_query: Callable[[], object]) -> None:
        self.before_query = before_query

    def run(self, state: SessionState, sql: str, params: list[Any] | None = None) -> Result:
        text = sql.strip().rstrip(";").strip()
        if not text:
            return Result(tag="")
        txn = _TXN.match(text)
        if txn:
            return self._transaction(state, re.sub(r"\s+", " ", txn.group(1).upper()))
        if state.failed:
            raise PgError(
                "current transaction is aborted, commands ignored until end of transaction block",
                "25P02",
            )
        cursor_result = self._cursor_command(state, text, params)
        if cursor_result is not None:
            return cursor_result
        if _NOOP.match(text):
            return Result(tag=text.split()[0].upper())
        show = _SHOW.match(text)
        if show:
            shown = self._show(show.group(1))
            if shown is not None:
                return shown
        sql = translate(text)
        kind = statement_kind(sql)
        if kind not in READ_STATEMENTS:
            raise ReadOnlyError(kind.replace("_", " "))
        self.before_query()
        cursor = state.connect()
        try:
            cursor.execute(sql, params or None)
        except duckdb.Error as exc:
            cursor.close()
            raise _pg_error(exc) from exc
        description = cursor.description or []
        columns = [ColumnInfo(str(d[0]), str(d[1])) for d in description]
        return Result(tag=kind, columns=columns, rows=_rows(cursor), cursor=cursor)

    def describe(self, state: SessionState, sql: str, nparams: int) -> list[ColumnInfo] | None:
        """Result columns of a prepared statement without running it (None: no rows)."""
        text = sql.strip().rstrip(";").strip()
        if not text or _TXN.match(text) or _NOOP.match(text):
            return None
        show = _SHOW.match(text)
        if show and (shown := self._show(show.group(1))) is not None:
            return shown.columns
        sql = translate(text)
        if statement_kind(sql) not in READ_STATEMENTS:
            return None
        self.before_query()
        cursor = state.connect()
        try:
            cursor.execute(f"DESCRIBE {sql}", [None] * nparams or None)
            return [ColumnInfo(str(r[0]), str(r[1])) for r in cursor.fetchall()]
        except duckdb.Error as exc:
            raise _pg_error(exc) from exc
        finally:
            cursor.close()

    def _cursor_command(
        self, state: SessionState, text: str, params: list[Any] | None
    ) -> Result | None:
        """SQL cursors (DECLARE / FETCH / MOVE / CLOSE), as ODBC drivers and psql use them."""
        declare = _DECLARE.match(text)
        if declare:
            name = _cursor_name(declare.group(1))
            old = state.cursors.pop(name, None)
            if old is not None:
                old.close()
            state.cursors[name] = self.run(state, declare.group(2), params)
            return Result(tag="DECLARE CURSOR")
        fetch = _FETCH.match(text)
        if fetch:
            verb, how, name = fetch.group(1).upper(), (fetch.group(2) or "").upper(), fetch.group(3)
            cursor = state.cursors.get(_cursor_name(name))
            if cursor is None or cursor.rows is None:
                raise PgError(f'cursor "{_cursor_name(name)}" does not exist', "34000")
            count = None if "ALL" in how else int(re.sub(r"\D", "", how) or 1)
            rows = list(itertools.islice(cursor.rows, count))
            if verb == "MOVE":
                return Result(tag=f"MOVE {len(rows)}")
            return Result(tag="FETCH", columns=cursor.columns, rows=iter(rows))
        close = _CLOSE.match(text)
        if close:
            names = list(state.cursors) if close.group(1).upper() == "ALL" else [close.group(1)]
            for name in names:
                found = state.cursors.pop(_cursor_name(name), None)
                if found is not None:
                    found.close()
            return Result(tag="CLOSE CURSOR")
        return None

    @staticmethod
    def _transaction(state: SessionState, word: str) -> Result:
        if word in ("BEGIN", "START TRANSACTION"):
            state.in_transaction = True
            return Result(tag="BEGIN")
        if word in ("SAVEPOINT", "RELEASE"):
            return Result(tag=word)
        if word == "ROLLBACK TO":  # back to a savepoint: the transaction goes on, usable again
            state.failed = False
            return Result(tag="ROLLBACK")
        was_failed = state.failed
        state.in_transaction = False
        state.failed = False
        if word in ("ROLLBACK", "ABORT") or was_failed:
            return Result(tag="ROLLBACK")
        return Result(tag="COMMIT")

    @staticmethod
    def _show(name: str) -> Result | None:
        key = re.sub(r"\s+", " ", name.strip().strip('"')).lower()
        if key == "transaction isolation level":
            key = "transaction_isolation"
        lookup = {k.lower(): (k, v) for k, v in SETTINGS.items()}
        if key == "all":
            rows = [(k, v, "") for k, v in SETTINGS.items()]
            return _values_result(["name", "setting", "description"], rows)
        if key in lookup:
            shown_name, value = lookup[key]
            return _values_result([shown_name], [(value,)])
        return None


def _cursor_name(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name.lower()


def _pg_error(exc: duckdb.Error) -> PgError:
    message = str(exc)
    if isinstance(exc, duckdb.ParserException):
        return PgError(message, "42601")
    if isinstance(exc, duckdb.CatalogException):
        return PgError(message, "42P01" if "Table" in message else "42883")
    if isinstance(exc, duckdb.BinderException):
        return PgError(message, "42703")
    if isinstance(exc, duckdb.PermissionException):
        return PgError(message, "42501")
    if isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException):
        return PgError(message, "22000")
    return PgError(message, "XX000")


# ------------------------------------------------------------------ protocol


class _Handler(socketserver.StreamRequestHandler):
    """One client connection."""

    server: PgWireServer
    wbufsize = 1 << 16

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = None
        try:
            state = self._startup()
            if state is not None:
                self._loop(state)
        except (ConnectionError, EOFError):
            pass
        except Exception:  # one broken client must not take the server down
            log.exception("client connection failed")
        finally:
            if state is not None:
                for portal in state.portals.values():
                    if portal.result is not None:
                        portal.result.close()
                for cursor in state.cursors.values():
                    cursor.close()

    # ----------------------------------------------------------- framing

    def _read(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise EOFError
        return data

    def _send(self, kind: bytes, payload: bytes = b"") -> None:
        self.wfile.write(kind + struct.pack("!i", len(payload) + 4) + payload)

    def _flush(self) -> None:
        self.wfile.flush()

    # ----------------------------------------------------------- startup

    def _startup(self) -> SessionState | None:
        while True:
            length = struct.unpack("!i", self._read(4))[0]
            body = self._read(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.wfile.write(b"N")
                self._flush()
                continue
            if code == CANCEL_REQUEST:
                return None
            if code != PROTOCOL_V3:
                self._fatal(f"unsupported protocol version {code >> 16}.{code & 0xFFFF}", "0A000")
                return None
            break
        parts = body[4:].split(b"\x00")
        params = {
            parts[i].decode(): parts[i + 1].decode()
            for i in range(0, len(parts) - 1, 2)
            if parts[i]
        }
        user = params.get("user", "")
        database = params.get("database") or user
        server = self.server
        if server.users is not None and user not in server.users:
            self._fatal(
                f'this endpoint serves principal "{server.principal}": connect as user '
                f'"{server.principal}" (not "{user}")',
                "28000",
            )
            return None
        if database != server.database:
            self._fatal(
                f'database "{database}" does not exist (this endpoint serves "{server.database}")',
                "3D000",
            )
            return None
        if server.password is not None and not self._password_ok(server.password):
            return None
        self._send(b"R", struct.pack("!i", 0))
        for name in STARTUP_PARAMETERS:
            self._parameter_status(name, SETTINGS[name])
        self._parameter_status("application_name", params.get("application_name", ""))
        self._parameter_status("session_authorization", user)
        self._send(b"K", struct.pack("!II", secrets.randbits(31), secrets.randbits(31)))
        state = SessionState(user=user, database=database, connect=server.connect)
        self._ready(state)
        return state

    def _password_ok(self, expected: str) -> bool:
        self._send(b"R", struct.pack("!i", 3))  # AuthenticationCleartextPassword
        self._flush()
        kind = self._read(1)
        length = struct.unpack("!i", self._read(4))[0]
        given = self._read(length - 4).rstrip(b"\x00").decode()
        if kind != b"p" or not secrets.compare_digest(given, expected):
            self._fatal("password authentication failed", "28P01")
            return False
        return True

    def _parameter_status(self, name: str, value: str) -> None:
        self._send(b"S", name.encode() + b"\x00" + value.encode() + b"\x00")

    def _ready(self, state: SessionState) -> None:
        status = b"I"
        if state.in_transaction:
            status = b"E" if state.failed else b"T"
        self._send(b"Z", status)
        self._flush()

    def _error(self, exc: PgError, severity: str = "ERROR") -> None:
        fields = [("S", severity), ("V", severity), ("C", exc.sqlstate), ("M", str(exc))]
        payload = b"".join(k.encode() + v.encode() + b"\x00" for k, v in fields) + b"\x00"
        self._send(b"E", payload)

    def _fatal(self, message: str, sqlstate: str) -> None:
        self._error(PgError(message, sqlstate), "FATAL")
        self._flush()

    # ----------------------------------------------------------- messages

    def _loop(self, state: SessionState) -> None:
        skipping = False  # after an extended-protocol error: ignore until Sync
        while True:
            kind = self._read(1)
            length = struct.unpack("!i", self._read(4))[0]
            body = self._read(length - 4)
            if kind == b"X":
                return
            if kind == b"Q":
                self._simple_query(state, body.rstrip(b"\x00").decode())
                continue
            if kind == b"S":
                skipping = False
                self._ready(state)
                continue
            if kind == b"H":
                self._flush()
                continue
            if skipping:
                continue
            try:
                if kind == b"P":
                    self._parse(state, body)
                elif kind == b"B":
                    self._bind(state, body)
                elif kind == b"D":
                    self._describe(state, body)
                elif kind == b"E":
                    self._execute(state, body)
                elif kind == b"C":
                    self._close(state, body)
                else:
                    raise PgError(f"unsupported message type {kind!r}", "08P01")
            except PgError as exc:
                self._fail(state, exc)
                skipping = True
            except Exception as exc:  # report, keep the connection usable
                log.exception("statement failed")
                self._fail(state, PgError(str(exc)))
                skipping = True

    def _fail(self, state: SessionState, exc: PgError) -> None:
        if state.in_transaction:
            state.failed = True
        self._error(exc)

    def _simple_query(self, state: SessionState, sql: str) -> None:
        pieces = split_statements(sql)
        for piece in pieces:
            if not piece:
                self._send(b"I")
                continue
            try:
                result = self.server.engine.run(state, piece)
                if result.columns is not None:
                    self._row_description(result.columns, [])
                self._send_rows(result, [], 0)
            except PgError as exc:
                self._fail(state, exc)
                break
            except Exception as exc:
                log.exception("statement failed")
                self._fail(state, PgError(str(exc)))
                break
        self._ready(state)

    def _parse(self, state: SessionState, body: bytes) -> None:
        name, rest = _cstring(body)
        sql, rest = _cstring(rest)
        count = struct.unpack("!h", rest[:2])[0]
        oids = list(struct.unpack(f"!{count}i", rest[2 : 2 + 4 * count])) if count else []
        placeholders = [int(m) for m in re.findall(r"\$(\d+)", sql)]
        nparams = max([count, *placeholders]) if placeholders else count
        oids += [0] * (nparams - len(oids))
        state.statements[name] = Prepared(sql, oids)
        self._send(b"1")

    def _bind(self, state: SessionState, body: bytes) -> None:
        portal_name, rest = _cstring(body)
        statement_name, rest = _cstring(rest)
        statement = state.statements.get(statement_name)
        if statement is None:
            raise PgError(f'prepared statement "{statement_name}" does not exist', "26000")
        nformats = struct.unpack("!h", rest[:2])[0]
        formats = list(struct.unpack(f"!{nformats}h", rest[2 : 2 + 2 * nformats]))
        rest = rest[2 + 2 * nformats :]
        nparams = struct.unpack("!h", rest[:2])[0]
        rest = rest[2:]
        params: list[Any] = []
        for i in range(nparams):
            size = struct.unpack("!i", rest[:4])[0]
            raw = None if size < 0 else rest[4 : 4 + size]
            rest = rest[4 + max(size, 0) :]
            fmt = formats[i] if len(formats) > 1 else (formats[0] if formats else 0)
            oid = statement.param_oids[i] if i < len(statement.param_oids) else 0
            params.append(decode_parameter(raw, oid, fmt == 1))
        nresult = struct.unpack("!h", rest[:2])[0]
        result_formats = list(struct.unpack(f"!{nresult}h", rest[2 : 2 + 2 * nresult]))
        old = state.portals.pop(portal_name, None)
        if old is not None and old.result is not None:
            old.result.close()
        state.portals[portal_name] = Portal(statement, params, result_formats)
        self._send(b"2")

    def _portal_result(self, state: SessionState, portal: Portal) -> Result:
        if portal.result is None:
            portal.result = self.server.engine.run(state, portal.statement.sql, portal.params)
        return portal.result

    def _describe(self, state: SessionState, body: bytes) -> None:
        target, name = body[:1], body[1:].rstrip(b"\x00").decode()
        if target == b"S":
            statement = state.statements.get(name)
            if statement is None:
                raise PgError(f'prepared statement "{name}" does not exist', "26000")
            oids = [oid or TEXT_OID for oid in statement.param_oids]
            self._send(b"t", struct.pack(f"!h{len(oids)}i", len(oids), *oids))
            columns = self.server.engine.describe(state, statement.sql, len(oids))
            if columns is None:
                self._send(b"n")
            else:
                self._row_description(columns, [])
            return
        portal = state.portals.get(name)
        cursor = state.cursors.get(name)
        if portal is None and cursor is not None:  # a DECLAREd cursor is a portal too
            self._row_description(cursor.columns or [], [])
            return
        if portal is None:
            raise PgError(f'portal "{name}" does not exist', "34000")
        result = self._portal_result(state, portal)
        if result.columns is None:
            self._send(b"n")
        else:
            self._row_description(result.columns, portal.result_formats)

    def _execute(self, state: SessionState, body: bytes) -> None:
        name, rest = _cstring(body)
        limit = struct.unpack("!i", rest[:4])[0]
        portal = state.portals.get(name)
        if portal is None:
            raise PgError(f'portal "{name}" does not exist', "34000")
        result = self._portal_result(state, portal)
        if result.done:
            self._send(b"C", b"SELECT 0\x00" if result.columns is not None else b"\x00")
            return
        self._send_rows(result, portal.result_formats, limit)

    def _close(self, state: SessionState, body: bytes) -> None:
        target, name = body[:1], body[1:].rstrip(b"\x00").decode()
        if target == b"S":
            state.statements.pop(name, None)
        else:
            portal = state.portals.pop(name, None)
            if portal is not None and portal.result is not None:
                portal.result.close()
        self._send(b"3")

    # ----------------------------------------------------------- rows

    def _row_description(self, columns: list[ColumnInfo], formats: list[int]) -> None:
        out = [struct.pack("!h", len(columns))]
        for i, col in enumerate(columns):
            fmt = _format(formats, i)
            out.append(col.name.encode() + b"\x00")
            out.append(struct.pack("!ihihih", 0, 0, col.oid, col.size, col.typmod, fmt))
        self._send(b"T", b"".join(out))

    def _send_rows(self, result: Result, formats: list[int], limit: int) -> None:
        if result.columns is None or result.rows is None:
            if result.tag:
                self._send(b"C", result.tag.encode() + b"\x00")
            else:
                self._send(b"I")
            result.done = True
            return
        encoders = [_encoder(c, _format(formats, i) == 1) for i, c in enumerate(result.columns)]
        write = self.wfile.write
        pack = struct.Struct("!i").pack
        count = 0  # rows of this Execute: PostgreSQL's tag counts those, not the portal's total
        for count, row in enumerate(result.rows, start=1):
            parts = [struct.pack("!h", len(row))]
            for value, encode in zip(row, encoders, strict=True):
                if value is None:
                    parts.append(b"\xff\xff\xff\xff")
                else:
                    data = encode(value)
                    parts.append(pack(len(data)) + data)
            payload = b"".join(parts)
            write(b"D" + struct.pack("!i", len(payload) + 4) + payload)
            result.sent += 1
            if limit > 0 and count >= limit:
                self._send(b"s")  # PortalSuspended: more rows on the next Execute
                return
        result.done = True
        result.close()
        tag = "SELECT" if result.tag in READ_STATEMENTS else result.tag
        self._send(b"C", f"{tag} {count}\x00".encode())


def _encoder(column: ColumnInfo, binary: bool) -> Callable[[Any], bytes]:
    """The value encoder for one result column (plain fast paths for text and integers)."""
    if binary:
        return functools.partial(_binary_for, column.oid)
    if column.type_name == "VARCHAR":
        return str.encode
    if column.oid in INT_OIDS:
        return _int_text
    return _any_text


def _binary_for(oid: int, value: Any) -> bytes:
    return binary_value(value, oid)


def _int_text(value: int) -> bytes:
    return str(value).encode()


def _any_text(value: Any) -> bytes:
    return text_value(value).encode()


def _format(formats: list[int], index: int) -> int:
    if not formats:
        return 0
    return formats[index] if len(formats) > 1 else formats[0]


def _cstring(data: bytes) -> tuple[str, bytes]:
    end = data.index(b"\x00")
    return data[:end].decode(), data[end + 1 :]


class PgWireServer(socketserver.ThreadingTCPServer):
    """A PostgreSQL-protocol server answering from ``connect()``'s DuckDB connections.

    ``before_query`` runs before each read (the mirror's refresh). ``users``: the user
    names accepted (None: any); ``password``: required cleartext password (None: trust).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        connect: Callable[[], duckdb.DuckDBPyConnection],
        database: str,
        principal: str,
        before_query: Callable[[], object] = lambda: None,
        users: set[str] | None = None,
        password: str | None = None,
    ) -> None:
        self.connect = connect
        self.database = database
        self.principal = principal
        self.users = users
        self.password = password
        self.engine = QueryEngine(before_query)
        self._thread: threading.Thread | None = None
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> PgWireServer:
        """Serve in a background thread (tests, notebooks); ``stop()`` ends it."""
        self._thread = threading.Thread(target=self.serve_forever, name="pgwire", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
