"""Bounds on what one client can make the SQL endpoint do, as PostgreSQL bounds its backends.

* **Statement timeout** (PostgreSQL's ``statement_timeout``): a statement running longer is
  interrupted and fails with SQLSTATE 57014 ``canceling statement due to statement
  timeout``. The server's value is a ceiling; a session may lower it with ``SET
  statement_timeout``.
* **Cancel requests**: each connection gets a random process id and a random secret key
  (BackendKeyData); a CancelRequest carrying both (psql's Ctrl-C, libpq's ``PQcancel``,
  psycopg's ``conn.cancel()``) interrupts that connection's running statement, which fails
  with 57014 ``canceling statement due to user request``.
* **Client gone** (as PostgreSQL's ``client_connection_check_interval``): a statement whose
  client has closed its socket (``POLLRDHUP``) is interrupted, so no core keeps working
  for nobody.
* **Memory**: DuckDB's ``memory_limit`` for the whole server, ``operator_memory_limit`` per
  statement (sorts and hash tables spill beyond it); a query that needs more fails with
  53200 out_of_memory and the server goes on.
* **Result size**: ``max_result_rows`` / ``max_result_bytes`` cap what one statement sends
  (:class:`ResultBudget`): the rows up to the cap reach the client, then the statement fails
  with 54000 ``result exceeds the endpoint's limit of N rows``.
* **Connections**: at most ``max_connections`` clients at once; one more gets FATAL 53300
  ``sorry, too many clients already`` before authentication, as PostgreSQL answers.
* **Stalled clients**: a client that stops reading while rows are written is dropped after
  ``send_timeout_s`` (the socket's ``SO_SNDTIMEO``), so its statement and thread end.
* **Temp space**: spills go to ``temp_directory`` (under the data root), capped by
  ``max_temp_directory_size``. DuckDB 2.0 does not hold spills to that setting (a 1 MB cap
  let 230 MB through), so the supervisor also measures the directory every tick and
  interrupts the running statements when it is over the cap (53400, as PostgreSQL's
  ``temp_file_limit``); the overshoot is bounded by one tick of writing.

One supervisor thread per server checks the running statements every ``check_interval_s``
and interrupts (``DuckDBPyConnection.interrupt``) those with a reason to stop, again on
every tick until they have stopped.
"""

from __future__ import annotations

import logging
import os
import secrets
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.apps.sql.codec import PgError

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

MIB = 1 << 20
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL | getattr(select, "POLLRDHUP", 0)


@dataclass(frozen=True)
class SqlLimits:
    """The endpoint's limits (``lakehouse sql serve`` options); 0 means none for a timeout."""

    statement_timeout_s: float = 300.0
    memory_limit_mb: int = 2048
    query_memory_mb: int = 512
    temp_limit_mb: int = 10240
    temp_directory: Path | None = None
    threads: int = 2
    check_interval_s: float = 0.1
    max_result_rows: int = 0  # 0: no cap
    max_result_bytes: int = 0  # 0: no cap (DataRow messages as sent)
    max_connections: int = 64
    send_timeout_s: float = 60.0  # 0: wait for a stalled client forever

    def result_budget(self) -> ResultBudget:
        """A fresh budget for one statement's result."""
        return ResultBudget(self.max_result_rows, self.max_result_bytes)

    def duckdb_config(self) -> dict[str, str | int]:
        """The server-wide DuckDB settings."""
        config: dict[str, str | int] = {
            "memory_limit": f"{self.memory_limit_mb}MiB",
            "max_temp_directory_size": f"{self.temp_limit_mb}MiB",
            "threads": self.threads,
        }
        if self.temp_directory is not None:
            config["temp_directory"] = str(self.temp_directory)
        return config


@dataclass
class ResultBudget:
    """What one statement's result may send: every row path (DataRow, COPY data) takes
    from it before writing a row, and a row over a cap is not sent."""

    max_rows: int = 0
    max_bytes: int = 0
    rows: int = 0
    bytes: int = 0

    def take(self, rows: int, nbytes: int) -> None:
        """Count ``rows`` rows of ``nbytes`` bytes about to be sent; 54000 over a cap."""
        if self.max_rows and self.rows + rows > self.max_rows:
            raise PgError(f"result exceeds the endpoint's limit of {self.max_rows} rows", "54000")
        if self.max_bytes and self.bytes + nbytes > self.max_bytes:
            raise PgError(f"result exceeds the endpoint's limit of {self.max_bytes} bytes", "54000")
        self.rows += rows
        self.bytes += nbytes


@dataclass
class Running:
    """One statement in progress on one connection."""

    pid: int
    sql: str
    started: float
    deadline: float | None
    cursor: duckdb.DuckDBPyConnection | None = None
    reason: str | None = None  # timeout | cancel | disconnect | temp

    def error(self, exc: PgError) -> PgError:
        """The error the client sees: why the statement was stopped, else ``exc``."""
        if self.reason == "timeout":
            return PgError("canceling statement due to statement timeout", "57014")
        if self.reason in ("cancel", "disconnect"):
            return PgError("canceling statement due to user request", "57014")
        if self.reason == "temp":
            return PgError(
                "temporary file size exceeds the SQL endpoint's temp space cap "
                "(lakehouse sql serve --temp-limit-mb)",
                "53400",
            )
        return exc


@dataclass
class _Session:
    secret: bytes
    sock: socket.socket


@dataclass
class StatementSupervisor:
    """Cancel keys, running statements and the thread that stops those over a limit."""

    limits: SqlLimits
    interrupted: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    _sessions: dict[int, _Session] = field(default_factory=dict)
    _running: dict[int, Running] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------ sessions

    def admit(self) -> bool:
        """Take a connection slot; False when ``max_connections`` clients are connected."""
        with self._lock:
            if 0 < self.limits.max_connections <= self.connections:
                return False
            self.connections += 1
            return True

    def release(self) -> None:
        """Give back the slot of a connection that has closed."""
        with self._lock:
            self.connections = max(0, self.connections - 1)

    def register(self, sock: socket.socket) -> tuple[int, bytes]:
        """A new connection's BackendKeyData: a random unused process id and secret key."""
        with self._lock:
            pid = secrets.randbelow(2**31 - 2) + 1
            while pid in self._sessions:
                pid = secrets.randbelow(2**31 - 2) + 1
            secret = secrets.token_bytes(4)
            self._sessions[pid] = _Session(secret, sock)
        return pid, secret

    def unregister(self, pid: int) -> None:
        with self._lock:
            self._sessions.pop(pid, None)

    def cancel(self, pid: int, secret: bytes) -> bool:
        """A CancelRequest: interrupt ``pid``'s running statement if the key matches."""
        with self._lock:
            session = self._sessions.get(pid)
            if session is None or not secrets.compare_digest(session.secret, secret):
                log.warning("cancel request with an unknown key ignored")
                return False
            running = self._running.get(pid)
            if running is not None and running.reason is None:
                self._stop_statement(running, "cancel")
        return True

    # ------------------------------------------------------------ statements

    @contextmanager
    def statement(self, pid: int, sql: str, timeout_s: float) -> Iterator[Running]:
        """Supervise one statement of connection ``pid`` while the block runs."""
        now = time.monotonic()
        running = Running(pid, sql, now, now + timeout_s if timeout_s > 0 else None)
        with self._lock:
            self._running[pid] = running
        self._ensure_thread()
        try:
            yield running
        finally:
            with self._lock:
                self._running.pop(pid, None)

    def attach(self, pid: int, cursor: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Make ``cursor`` the one interrupted when ``pid``'s running statement must stop."""
        with self._lock:
            running = self._running.get(pid)
            if running is not None:
                running.cursor = cursor
                if running.reason is not None:
                    _interrupt(cursor)
        return cursor

    def running(self) -> list[Running]:
        """The statements in progress (a snapshot)."""
        with self._lock:
            return list(self._running.values())

    # ------------------------------------------------------------ the thread

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="sql-supervisor", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.limits.check_interval_s):
            try:
                self.check()
            except Exception:  # the supervisor must outlive any one check
                log.exception("statement supervisor check failed")

    def check(self) -> None:
        """One tick: find statements over a limit and (again) interrupt stopped ones."""
        with self._lock:
            if not self._running:
                return
            now = time.monotonic()
            over_temp = self._temp_bytes() > self.limits.temp_limit_mb * MIB
            for running in self._running.values():
                if running.reason is not None:
                    _interrupt(running.cursor)  # until it has stopped
                elif running.deadline is not None and now >= running.deadline:
                    self._stop_statement(running, "timeout")
                elif self._client_gone(running.pid):
                    self._stop_statement(running, "disconnect")
                elif over_temp:
                    self._stop_statement(running, "temp")

    def _stop_statement(self, running: Running, reason: str) -> None:
        running.reason = reason
        self.interrupted[reason] += 1
        log.info("interrupting statement of connection %d (%s)", running.pid, reason)
        _interrupt(running.cursor)

    def _client_gone(self, pid: int) -> bool:
        session = self._sessions.get(pid)
        if session is None:
            return False
        poller = select.poll()
        try:
            poller.register(session.sock, _GONE)
        except (ValueError, OSError):  # closed socket
            return True
        return any(events & _GONE for _, events in poller.poll(0))

    def _temp_bytes(self) -> int:
        directory = self.limits.temp_directory
        if directory is None:
            return 0
        return _disk_bytes(directory)


def _disk_bytes(directory: Path) -> int:
    """Bytes on disk under ``directory`` (its files and those of its subdirectories: the
    spill directories of each principal's mirror)."""
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        total += _disk_bytes(Path(entry.path))
                    else:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return 0
    return total


def _interrupt(cursor: duckdb.DuckDBPyConnection | None) -> None:
    if cursor is None:
        return
    try:
        cursor.interrupt()
    except Exception:  # closed meanwhile: the statement has ended
        log.debug("interrupt of a finished statement ignored")
