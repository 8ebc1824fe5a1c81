"""Statement handling for the SQL endpoint: PostgreSQL spellings, the read-only gate, DuckDB.

:class:`QueryEngine` runs one statement for a session: transaction words, SQL cursors
(DECLARE / FETCH / MOVE / CLOSE), ``SET``-like no-ops and ``SHOW name`` are answered here;
anything else is translated (:func:`translate`: the ``pg_catalog`` spellings DuckDB lacks),
refused unless it reads (SQLSTATE 25006) and run in DuckDB. The session, prepared statement
and portal state the protocol loop in :mod:`lakehouse.apps.sql.wire` keeps lives here too.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from lakehouse.apps.sql.codec import ColumnInfo, PgError
from lakehouse.apps.sql.copy import CopyOut, parse_copy
from lakehouse.apps.sql.copy_format import arrow_batches
from lakehouse.apps.sql.internals import (
    check_client_sql,
    check_setting,
    translate_information_schema,
)
from lakehouse.apps.sql.limits import ResultBudget
from lakehouse.apps.sql.params import infer_types

SERVER_VERSION = "15.0"

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
# regproc columns compared with 0 (ADBC: "typreceive != 0"); ours hold names, '-' for none
_REGPROC_ZERO = re.compile(r"\b(typreceive|typsend)\s*(!=|<>|=)\s*0\b", re.IGNORECASE)
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
_SETTING = re.compile(
    r'^(SET|RESET)\s+(?:SESSION\s+|LOCAL\s+|GLOBAL\s+)?"?(\w+)"?\s*(?:(?:=|TO)\s*(.*?))?\s*$',
    re.IGNORECASE | re.DOTALL,
)
# DuckDB settings that belong to the whole server: a client may not change them.
SERVER_SETTINGS = {
    "memory_limit",
    "max_memory",
    "operator_memory_limit",
    "threads",
    "worker_threads",
    "external_threads",
    "temp_directory",
    "max_temp_directory_size",
    "lock_configuration",
    "allocator_background_threads",
    "block_allocator_memory",
}
_DURATION = re.compile(r"^'?\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*'?$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


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
    sql = _REGPROC_ZERO.sub(r"\1 \2 '-'", sql)
    sql = _REGCLASS.sub(r"to_regclass(\1)", sql)
    sql = _REG_LITERAL.sub(r"to_reg\2(\1)", sql)
    sql = _AS_REG.sub("AS BIGINT)", sql)
    sql = _EMULATED.sub(r"memory.main.\1", sql)
    sql = translate_information_schema(sql)
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
    budget: ResultBudget | None = None  # the result caps, taken from as rows are sent
    copy: CopyOut | None = None  # a COPY … TO STDOUT: rows go out as CopyData (copy.py)

    def close(self) -> None:
        if self.cursor is not None:
            self.cursor.close()
            self.cursor = None


def _rows(cursor: duckdb.DuckDBPyConnection, batch: int = 2048) -> Iterator[tuple[Any, ...]]:
    """The rows of a streaming result; DuckDB errors while fetching (interrupts, memory)
    become PostgreSQL errors like those of the execute itself."""
    while True:
        try:
            chunk = cursor.fetchmany(batch)
        except duckdb.Error as exc:
            raise _pg_error(exc) from exc
        if not chunk:
            return
        yield from chunk


def _batches(cursor: duckdb.DuckDBPyConnection) -> Iterator[Any]:
    """A streaming result's Arrow batches; DuckDB errors become PostgreSQL errors."""
    try:
        yield from arrow_batches(cursor)
    except duckdb.Error as exc:
        raise _pg_error(exc) from exc


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
    # called with the DuckDB cursor a FETCH reads, so the statement limits can interrupt it
    watch: Callable[[duckdb.DuckDBPyConnection], object] = lambda cursor: cursor
    pid: int = 0
    principal: str = ""  # who logged in (the catalog principal the session reads as)
    client_address: str = ""  # "host:port" of the client
    application_name: str = ""
    server_timeout_s: float = 0.0  # the server's statement timeout (0: none), a ceiling
    session_timeout_s: float = 0.0  # SET statement_timeout (0: the server's)
    in_transaction: bool = False
    failed: bool = False
    statements: dict[str, Prepared] = field(default_factory=dict)
    portals: dict[str, Portal] = field(default_factory=dict)
    cursors: dict[str, Result] = field(default_factory=dict)

    @property
    def statement_timeout_s(self) -> float:
        """The timeout in force: the session's if set and lower than the server's."""
        limits = [t for t in (self.server_timeout_s, self.session_timeout_s) if t > 0]
        return min(limits) if limits else 0.0


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
        answered = self._answered_here(state, text, params)
        if answered is not None:
            return answered
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

    def _answered_here(
        self, state: SessionState, text: str, params: list[Any] | None
    ) -> Result | None:
        """Cursors, session words, SHOW and COPY; DuckDB's internals refused first."""
        check_client_sql(text)  # DuckDB's own statements and functions (internals.py)
        cursor_result = self._cursor_command(state, text, params)
        if cursor_result is not None:
            return cursor_result
        session_result = _session_command(state, text)
        if session_result is not None:
            return session_result
        show = _SHOW.match(text)
        if show:
            shown = self._show(show.group(1), state)
            if shown is not None:
                return shown
        copy = parse_copy(text)
        if copy is not None:
            return self._copy(state, copy.query, copy.options, params)
        return None

    def _copy(
        self, state: SessionState, query: str, options: Any, params: list[Any] | None
    ) -> Result:
        """``COPY (query) TO STDOUT``: the query runs as a read; its rows stream as Arrow."""
        inner = self.run(state, query, params)
        if inner.cursor is None or inner.columns is None:
            inner.close()
            raise PgError("COPY query must be a SELECT that returns rows", "0A000")
        batches = _batches(inner.cursor)
        copy = CopyOut(inner.columns, options, batches)
        return Result(tag="COPY", cursor=inner.cursor, copy=copy)

    def describe(self, state: SessionState, sql: str, nparams: int) -> list[ColumnInfo] | None:
        """Result columns of a prepared statement without running it (None: no rows)."""
        text = sql.strip().rstrip(";").strip()
        if not text or _TXN.match(text) or _NOOP.match(text) or parse_copy(text):
            return None
        check_client_sql(text)
        show = _SHOW.match(text)
        if show and (shown := self._show(show.group(1), state)) is not None:
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

    def parameter_types(self, state: SessionState, sql: str, oids: list[int]) -> list[int]:
        """``oids`` with the unspecified (0) ones inferred from the statement where possible
        (:mod:`lakehouse.apps.sql.params`); still 0 where unknown (described as text)."""
        text = sql.strip().rstrip(";").strip()
        if 0 not in oids or not text or _TXN.match(text) or _NOOP.match(text):
            return oids
        translated = translate(text)
        try:
            check_client_sql(text)
            if parse_copy(text) or statement_kind(translated) not in READ_STATEMENTS:
                return oids
        except PgError:
            return oids
        cursor = state.connect()

        def describe(query: str) -> list[ColumnInfo]:
            cursor.execute(f"DESCRIBE {query}")
            return [ColumnInfo(str(r[0]), str(r[1])) for r in cursor.fetchall()]

        try:
            inferred = infer_types(translated, len(oids), describe)
        finally:
            cursor.close()
        return [
            oid or (ColumnInfo("", kind).oid if kind is not None else 0)
            for oid, kind in zip(oids, inferred, strict=True)
        ]

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
            if cursor.cursor is not None:  # a FETCH may do the query's work: supervise it
                state.watch(cursor.cursor)
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
    def _show(name: str, state: SessionState) -> Result | None:
        key = re.sub(r"\s+", " ", name.strip().strip('"')).lower()
        if key == "statement_timeout":
            return _values_result(["statement_timeout"], [(_duration(state.statement_timeout_s),)])
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


def _session_command(state: SessionState, text: str) -> Result | None:
    """SET / RESET (see :func:`_set`) and the other session words answered without DuckDB."""
    setting = _SETTING.match(text)
    if setting:
        return _set(state, setting.group(1).upper(), setting.group(2), setting.group(3))
    if _NOOP.match(text):
        return Result(tag=text.split()[0].upper())
    return None


def _set(state: SessionState, verb: str, name: str, value: str | None) -> Result:
    """SET / RESET: statement_timeout per session, server resources refused, else ignored."""
    key = name.lower()
    if key in SERVER_SETTINGS:
        raise PgError(
            f'permission denied to set parameter "{name}": the SQL endpoint\'s memory, threads '
            "and temp space are the server's (options of `lakehouse sql serve`)",
            "42501",
        )
    check_setting(name)
    if key == "application_name":
        state.application_name = "" if value is None else value.strip().strip("'")
    if key in ("statement_timeout", "all"):
        if verb == "RESET" or value is None or value.strip().upper() == "DEFAULT":
            state.session_timeout_s = 0.0
        else:
            state.session_timeout_s = _seconds(value)
    return Result(tag=verb)


def _seconds(value: str) -> float:
    """A PostgreSQL duration setting (milliseconds by default: ``5000``, ``'5s'``, ``1min``)."""
    match = _DURATION.match(value.strip())
    if not match:
        raise PgError(f'invalid value for parameter "statement_timeout": {value}', "22023")
    unit = (match.group(2) or "ms").lower()
    return float(match.group(1)) * _UNIT_SECONDS[unit]


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "0"
    if seconds < 1 or seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    return f"{int(seconds)}s"


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
    if isinstance(exc, duckdb.InterruptException):
        return PgError("canceling statement due to user request", "57014")
    if isinstance(exc, duckdb.OutOfMemoryException):
        first = message.splitlines()[0] if message else "out of memory"
        return PgError(f"{first} (the SQL endpoint's memory limit)", "53200")
    return PgError(message, "XX000")
