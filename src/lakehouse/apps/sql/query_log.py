"""The SQL endpoint's query log: every statement a client runs, one row in
``<catalog>.meta.sql_query_log``.

The endpoint has no Spark session, so :class:`QueryLog` appends with the ``deltalake``
package, in the Arrow schema equal to the Spark schema the catalog declares (so Spark,
``lakehouse sql`` and the endpoint's own writes agree), creating the table when it is
missing. Rows wait in memory and are written in batches: every ``flush_rows`` rows or
``flush_interval_s`` seconds from a background thread, and at :meth:`QueryLog.close`. A
statement never waits for a write; a failed write keeps its rows for the next one.

:class:`ConnectionLog` is one connection's side: the wire loop calls ``begin`` when a
statement starts (a simple-query statement; a portal's Describe or Execute), ``suspend``
when a portal stops with more rows to come, and ``end`` when it completes, fails or is
closed: one row per statement however many Executes it took.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import sqlglot
from sqlglot import exp

from lakehouse.apps.sql.codec import PgError
from lakehouse.config.system_tables import SqlQueryLogRow, SystemTable, row_values

if TYPE_CHECKING:
    from lakehouse.apps.sql.statements import SessionState
    from lakehouse.config.project import Project

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "error", "canceled", "timeout", "limit")
CLIENT_GONE = PgError("client connection lost", "08006")
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "array<string>": pa.list_(pa.field("element", pa.string())),
}
_DECLARE = re.compile(r"^\s*DECLARE\b.*?\bCURSOR\b.*?\bFOR\s+(.+)$", re.IGNORECASE | re.DOTALL)


def arrow_schema(table: SystemTable) -> pa.Schema:
    """The registered columns as an Arrow schema (what Delta stores as the Spark schema)."""
    return pa.schema(
        [pa.field(c.name, _ARROW_TYPES[c.type], c.nullable) for c in table.spec.columns]
    )


def outcome_of(error: PgError | None) -> str:
    """``ok`` | ``error`` | ``canceled`` | ``timeout`` | ``limit`` from the error sent."""
    if error is None:
        return "ok"
    if error.sqlstate == "57014":
        return "timeout" if "statement timeout" in str(error) else "canceled"
    if error.sqlstate == "08006":  # the client went away mid-statement
        return "canceled"
    if error.sqlstate == "54000":
        return "limit"
    return "error"


def statement_tables(
    sql: str, database: str, served: Collection[str], search_path: tuple[str, ...] = ("main",)
) -> list[str]:
    """The served tables (catalog full names) ``sql`` names, sorted; CTE names and the
    ``pg_catalog`` / ``information_schema`` relations are not tables of the catalog."""
    declared = _DECLARE.match(sql)
    text = declared.group(1) if declared else sql
    trees = None
    for dialect in ("postgres", "duckdb"):
        try:
            trees = sqlglot.parse(text, read=dialect)
            break
        except sqlglot.errors.SqlglotError:
            continue
    if trees is None:
        return []
    known = {name.lower(): name for name in served}
    found: set[str] = set()
    for tree in trees:
        if tree is None:
            continue
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            name = table.name.lower()
            if not table.db:
                if name in ctes:
                    continue
                candidates = [f"{database}.{s}.{name}".lower() for s in search_path]
            else:
                catalog = table.catalog or database
                candidates = [f"{catalog}.{table.db}.{name}".lower()]
            hit = next((known[c] for c in candidates if c in known), None)
            if hit is not None:
                found.add(hit)
    return sorted(found)


@dataclass
class _Statement:
    """A statement in progress (or a finished one waiting for its write)."""

    event_time: dt.datetime
    statement: str
    principal: str
    client_address: str
    application_name: str
    pid: int
    rows_before: int = 0  # rows the portal had sent before this statement's first step
    active_s: float = 0.0  # time spent in its steps so far
    step_started: float = 0.0
    rows: int = 0
    error: PgError | None = None


class QueryLog:
    """Buffers the endpoint's statements and appends them to the query log table."""

    def __init__(
        self,
        location: str,
        *,
        database: str,
        served: Callable[[str], Collection[str]],
        description: str = "",
        flush_rows: int = 500,
        flush_interval_s: float = 5.0,
        endpoint_id: str | None = None,
    ) -> None:
        self.location = location
        self.database = database
        self.served = served
        self.description = description
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.endpoint_id = endpoint_id or uuid.uuid4().hex[:12]
        self.written = 0
        self.failed_flushes = 0
        self._pending: list[_Statement] = []
        self._lock = threading.Lock()  # the buffer
        self._write_lock = threading.Lock()  # one write at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_project(
        cls, project: Project, served: Callable[[str], Collection[str]], **options: float
    ) -> QueryLog:
        """The project's ``<catalog>.meta.sql_query_log`` at its catalog location."""
        ref = project.system_table(SystemTable.SQL_QUERY_LOG)
        return cls(
            ref.location,
            database=project.catalog.name,
            served=served,
            description=ref.spec.description,
            **options,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------ recording

    def record(self, statement: _Statement) -> None:
        """Queue one finished statement (never waits for a write)."""
        with self._lock:
            self._pending.append(statement)
            full = len(self._pending) >= self.flush_rows
        if full:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # ------------------------------------------------------------ writing

    def start(self) -> QueryLog:
        """Flush from a background thread every ``flush_interval_s`` (or when full)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sql-query-log", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if not self._stop.is_set():
                self.flush()

    def close(self) -> None:
        """Stop the thread and write what is left (kept in memory if that write fails)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()

    def flush(self) -> int:
        """Append the queued rows; the number written (0 when the write failed: the rows
        stay queued, in order, for the next flush)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                self._write([self._row(s) for s in batch])
            except Exception as exc:  # keep the rows: the next flush retries them
                with self._lock:
                    self._pending[:0] = batch
                self.failed_flushes += 1
                log.warning(
                    "query log: could not append %d rows to %s (kept for the next flush): %s",
                    len(batch),
                    self.location,
                    exc,
                )
                return 0
            self.written += len(batch)
            return len(batch)

    def _row(self, s: _Statement) -> SqlQueryLogRow:
        return SqlQueryLogRow(
            event_time=s.event_time,
            principal=s.principal,
            client_address=s.client_address,
            application_name=s.application_name,
            statement=s.statement,
            tables=statement_tables(s.statement, self.database, self.served(s.principal)),
            rows_returned=s.rows,
            duration_ms=s.active_s * 1000.0,
            outcome=outcome_of(s.error),
            sqlstate=None if s.error is None else s.error.sqlstate,
            error=None if s.error is None else str(s.error),
            pid=s.pid,
            endpoint_id=self.endpoint_id,
        )

    def _write(self, rows: list[SqlQueryLogRow]) -> None:
        from deltalake import write_deltalake

        schema = arrow_schema(SystemTable.SQL_QUERY_LOG)
        columns = list(zip(*(row_values(r) for r in rows), strict=True))
        data = pa.Table.from_arrays(
            [
                pa.array(list(values), type=f.type)
                for values, f in zip(columns, schema, strict=True)
            ],
            schema=schema,
        )
        write_deltalake(
            self.location,
            data,
            mode="append",
            name=SystemTable.SQL_QUERY_LOG.table,
            description=self.description or None,
        )


class ConnectionLog:
    """One connection's statements on their way into the :class:`QueryLog` (no-ops
    without one). Keys: ``None`` for the simple-query statement, a portal's name."""

    def __init__(self, query_log: QueryLog | None, state: SessionState) -> None:
        self.query_log = query_log
        self.state = state
        self._open: dict[str | None, _Statement] = {}

    def begin(self, key: str | None, statement: str, rows_before: int = 0) -> None:
        """A step of a statement starts (a new statement unless ``key``'s is suspended)."""
        if self.query_log is None:
            return
        open_ = self._open.get(key)
        if open_ is None:
            state = self.state
            open_ = _Statement(
                event_time=dt.datetime.now(dt.UTC),
                statement=statement,
                principal=state.principal or state.user,
                client_address=state.client_address,
                application_name=state.application_name,
                pid=state.pid,
                rows_before=rows_before,
            )
            self._open[key] = open_
        open_.step_started = time.perf_counter()

    def is_open(self, key: str | None) -> bool:
        return key in self._open

    def suspend(self, key: str | None) -> None:
        """The step ended with the statement still open (a suspended portal)."""
        open_ = self._open.get(key)
        if open_ is not None and open_.step_started:
            open_.active_s += time.perf_counter() - open_.step_started
            open_.step_started = 0.0

    def end(self, key: str | None, rows: int, error: PgError | None = None) -> None:
        """The statement completed (``rows`` sent in all, counted from its portal's
        start), failed with ``error`` or was closed: queue its row."""
        self.suspend(key)
        open_ = self._open.pop(key, None)
        if open_ is None or self.query_log is None:
            return
        open_.rows = max(0, rows - open_.rows_before)
        open_.error = error
        self.query_log.record(open_)

    def end_all(self, rows: Callable[[str | None], int], error: PgError | None) -> None:
        """The connection ends: close every open statement."""
        for key in list(self._open):
            self.end(key, rows(key), error)
