"""A read-only PostgreSQL wire-protocol (v3) front for the DuckDB mirror.

It speaks what BI tools' PostgreSQL drivers use: startup (TLS when configured, else SSL/GSS
requests refused so clients fall back to plain TCP), trust, cleartext-password or
SCRAM-SHA-256 authentication (:mod:`lakehouse.apps.sql.auth`), simple queries
(several statements per message), the extended protocol (Parse / Bind / Describe / Execute /
Close / Sync / Flush, text and common binary formats, row limits with portal suspension)
ErrorResponse with SQLSTATE codes, and CancelRequest (statement limits, cancel keys and
disconnect checks are in :mod:`lakehouse.apps.sql.limits`). Queries run in DuckDB, which also provides
``information_schema`` and ``pg_catalog``; a few PostgreSQL spellings DuckDB lacks
(``pg_catalog.fn(...)``, ``OPERATOR(pg_catalog.~)``, ``version()``, ``SHOW name``) are
translated. Only reads run: anything else gets SQLSTATE 25006 (read-only transaction).

This module is the connection loop (startup, authentication, message dispatch, row
streaming); values are encoded and decoded in :mod:`lakehouse.apps.sql.codec`, statements run
in :mod:`lakehouse.apps.sql.statements`.

Why not an existing server (checked with the versions on PyPI in 2026-11):
roapi 0.12.7 cannot load a partitioned Delta table with its default memory table and
garbles partition columns without it, riffq has no wheel for Linux x86-64, buenavista 0.5.0
(last release 2024) parses every untyped parameter as a date and treats any query that
contains the word "begin" as a transaction start.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import secrets
import socket
import socketserver
import ssl
import struct
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol, cast

import duckdb

from lakehouse.apps.sql.auth import Authenticator, AuthFailedError
from lakehouse.apps.sql.codec import (
    TEXT_OID,
    ColumnInfo,
    PgError,
    column_encoder,
    column_format,
    cstring,
    decode_parameter,
)
from lakehouse.apps.sql.copy import send_copy
from lakehouse.apps.sql.limits import ResultBudget, Running, SqlLimits, StatementSupervisor
from lakehouse.apps.sql.query_log import CLIENT_GONE, ConnectionLog, QueryLog
from lakehouse.apps.sql.statements import (
    READ_STATEMENTS,
    SETTINGS,
    Portal,
    Prepared,
    QueryEngine,
    Result,
    SessionState,
    split_statements,
)
from lakehouse.apps.sql.tls import start_tls

log = logging.getLogger(__name__)

PROTOCOL_V3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

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
# what a client that vanished (or stopped reading past the send timeout) raises on a write
_CLIENT_GONE = (ConnectionError, BlockingIOError, TimeoutError)


class PrincipalView(Protocol):
    """What one principal's sessions read: a mirror's ``connect`` and ``refresh``."""

    def connect(self) -> duckdb.DuckDBPyConnection: ...

    def refresh(self) -> object: ...


class _Handler(socketserver.StreamRequestHandler):
    """One client connection."""

    server: PgWireServer
    wbufsize = 1 << 16

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _send_timeout(self.request, self.server.limits.send_timeout_s)
        self.admitted = False
        state = None
        gone: PgError | None = CLIENT_GONE
        try:
            state = self._startup()
            if state is not None:
                self.statements = ConnectionLog(self.server.query_log, state)
                self._loop(state)
                gone = None  # Terminate: open portals are closed, not canceled
        except (*_CLIENT_GONE, EOFError):
            pass
        except Exception:  # one broken client must not take the server down
            log.exception("client connection failed")
        finally:
            if self.admitted:
                self.server.supervisor.release()
            if state is not None:
                self.statements.end_all(lambda key: _portal_sent(state, key), gone)
                self.server.supervisor.unregister(state.pid)
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

    def _startup_packet(self) -> bytes | None:
        """The StartupMessage body after SSL/GSS refusals; None after a CancelRequest."""
        while True:
            length = struct.unpack("!i", self._read(4))[0]
            body = self._read(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code == SSL_REQUEST and self.server.tls is not None and not self._tls:
                self._start_tls(self.server.tls)
                continue
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.wfile.write(b"N")
                self._flush()
                continue
            if code == CANCEL_REQUEST:  # process id and secret key of the connection to cancel
                if len(body) >= 12:
                    self.server.supervisor.cancel(struct.unpack("!I", body[4:8])[0], body[8:])
                return None
            if code != PROTOCOL_V3:
                self._fatal(f"unsupported protocol version {code >> 16}.{code & 0xFFFF}", "0A000")
                return None
            return body

    _tls = False
    _user = ""

    def _start_tls(self, context: ssl.SSLContext) -> None:
        """Answer 'S', do the TLS handshake and read and write through it from now on."""
        wrapped = start_tls(self.request, cast(io.BufferedReader, self.rfile), self.wfile, context)
        self.request = self.connection = wrapped
        self.rfile = self.connection.makefile("rb", self.rbufsize)
        self.wfile = self.connection.makefile("wb", self.wbufsize)
        self._tls = True

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):  # the client is gone: nothing left to flush to
                super().finish()
        finally:  # socketserver closes the plain socket it accepted, not the TLS one
            if self._tls:
                self.request.close()

    def _authenticate(self, user: str, authenticator: Authenticator) -> bool:
        refusal = authenticator.refusal(self._tls)
        if refusal is not None:
            self._fatal(refusal, "28000")
            return False

        def send(kind: bytes, payload: bytes) -> None:
            self._send(kind, payload)
            self._flush()

        def receive() -> tuple[bytes, bytes]:
            kind = self._read(1)
            length = struct.unpack("!i", self._read(4))[0]
            if not 4 <= length <= 1 << 16:
                raise AuthFailedError(user)
            return kind, self._read(length - 4)

        try:
            authenticator.authenticate(user, send, receive)
        except AuthFailedError:
            self._fatal(f'password authentication failed for user "{user}"', "28P01")
            return False
        return True

    def _view(self, user: str) -> PrincipalView | None:
        """The principal's mirror (logins) or None (the server's own); FATAL if it fails."""
        if self.server.view_for is None:
            return None
        try:
            return self.server.view_for(user)
        except Exception as exc:
            log.exception("no view for %s", user)
            self._fatal(f"cannot serve {user}: {exc}", "XX000")
            raise ConnectionError from exc

    def _startup(self) -> SessionState | None:
        body = self._startup_packet()
        if body is None:
            return None
        self.admitted = self.server.supervisor.admit()
        if not self.admitted:  # before authentication, as PostgreSQL
            self._fatal("sorry, too many clients already", "53300")
            return None
        parts = body[4:].split(b"\x00")
        params = {
            parts[i].decode(): parts[i + 1].decode()
            for i in range(0, len(parts) - 1, 2)
            if parts[i]
        }
        user = params.get("user", "")
        database = params.get("database") or user
        server = self.server
        if not self._serves(user, database):
            return None
        self._user = user
        if server.authenticator is not None:
            if not self._authenticate(user, server.authenticator):
                return None
        elif server.password is not None and not self._password_ok(server.password):
            return None
        view = self._view(user)
        self._send(b"R", struct.pack("!i", 0))
        for name in STARTUP_PARAMETERS:
            self._parameter_status(name, SETTINGS[name])
        self._parameter_status("application_name", params.get("application_name", ""))
        self._parameter_status("session_authorization", user)
        pid, secret = server.supervisor.register(self.request)
        self._send(b"K", struct.pack("!I", pid) + secret)

        def connect() -> duckdb.DuckDBPyConnection:
            if view is None:
                return server.supervisor.attach(pid, server.connect())
            view.refresh()  # the server-wide before_query does nothing with logins
            return server.supervisor.attach(pid, view.connect())

        state = SessionState(
            user=user,
            database=database,
            connect=connect,
            watch=lambda cursor: server.supervisor.attach(pid, cursor),
            pid=pid,
            server_timeout_s=server.limits.statement_timeout_s,
            principal=user,
            client_address=_address(self.client_address),
            application_name=params.get("application_name", ""),
        )
        self._ready(state)
        return state

    def _serves(self, user: str, database: str) -> bool:
        """Whether this endpoint serves ``user`` and ``database``; FATAL if not."""
        server = self.server
        if server.users is not None and user not in server.users:
            self._fatal(
                f'this endpoint serves principal "{server.principal}": connect as user '
                f'"{server.principal}" (not "{user}")',
                "28000",
            )
            return False
        if database != server.database:
            self._fatal(
                f'database "{database}" does not exist (this endpoint serves "{server.database}")',
                "3D000",
            )
            return False
        return True

    def _password_ok(self, expected: str) -> bool:
        self._send(b"R", struct.pack("!i", 3))  # AuthenticationCleartextPassword
        self._flush()
        kind = self._read(1)
        length = struct.unpack("!i", self._read(4))[0]
        given = self._read(length - 4).rstrip(b"\x00").decode()
        if kind != b"p" or not secrets.compare_digest(given, expected):
            self._fatal(f'password authentication failed for user "{self._user}"', "28P01")
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
            elif kind == b"S":
                skipping = False
                self._ready(state)
            elif kind == b"H":
                self._flush()
            elif not skipping:
                skipping = not self._extended(state, kind, body)

    def _extended(self, state: SessionState, kind: bytes, body: bytes) -> bool:
        """Handle one extended-protocol message; False when it failed (skip until Sync)."""
        handler = self._EXTENDED.get(kind)
        logged = self._log_begin(state, kind, body)
        with self._supervised(state, kind.decode(errors="replace")) as running:
            try:
                if handler is None:
                    raise PgError(f"unsupported message type {kind!r}", "08P01")
                handler(self, state, body)
            except PgError as exc:
                self._fail(state, running.error(exc), logged)
                return False
            except _CLIENT_GONE:
                raise
            except Exception as exc:  # report, keep the connection usable
                log.exception("statement failed")
                self._fail(state, running.error(PgError(str(exc))), logged)
                return False
        self._log_step(state, logged)
        return True

    def _supervised(self, state: SessionState, sql: str) -> AbstractContextManager[Running]:
        """The statement limits (timeout, cancel, disconnect, temp space) around one step."""
        return self.server.supervisor.statement(state.pid, sql, state.statement_timeout_s)

    def _fail(self, state: SessionState, exc: PgError, logged: str | None = None) -> None:
        if logged is not None:  # the portal whose query-log row the failed message started
            self.statements.end(logged, _portal_sent(state, logged), exc)
        if state.in_transaction:
            state.failed = True
        self._error(exc)

    # ----------------------------------------------------------- the query log

    def _log_begin(self, state: SessionState, kind: bytes, body: bytes) -> str | None:
        """Start (or continue) the query-log row of the portal a message runs (Describe
        portal, Execute); close the row of a portal a Bind replaces or a Close drops."""
        portal_message = kind == b"E" or (kind in (b"D", b"C") and body[:1] == b"P")
        if kind == b"B" or portal_message:
            name = cstring(body)[0] if kind in (b"B", b"E") else body[1:].rstrip(b"\x00").decode()
            portal = state.portals.get(name)
            if kind in (b"B", b"C"):
                self.statements.end(name, _portal_sent(state, name))
            elif portal is not None:
                self.statements.begin(name, portal.statement.sql, _portal_sent(state, name))
                return name
        return None

    def _log_step(self, state: SessionState, logged: str | None) -> None:
        if logged is None:
            return
        portal = state.portals.get(logged)
        if portal is not None and portal.result is not None and portal.result.done:
            self.statements.end(logged, portal.result.sent)
        else:
            self.statements.suspend(logged)

    def _simple_query(self, state: SessionState, sql: str) -> None:
        pieces = split_statements(sql)
        for piece in pieces:
            if not piece:
                self._send(b"I")
                continue
            with self._supervised(state, piece) as running:
                self.statements.begin(None, piece)
                result: Result | None = None
                try:
                    result = self.server.engine.run(state, piece)
                    if result.columns is not None:
                        self._row_description(result.columns, [])
                    self._send_rows(result, [], 0)
                    self.statements.end(None, result.sent)
                except PgError as exc:
                    self._statement_failed(state, result, running.error(exc))
                    break
                except _CLIENT_GONE:
                    self._statement_failed(state, result, CLIENT_GONE, send=False)
                    raise
                except Exception as exc:
                    log.exception("statement failed")
                    self._statement_failed(state, result, running.error(PgError(str(exc))))
                    break
        self._ready(state)

    def _statement_failed(
        self, state: SessionState, result: Result | None, exc: PgError, *, send: bool = True
    ) -> None:
        """A simple-query statement failed: log it, free its cursor, tell the client."""
        self.statements.end(None, 0 if result is None else result.sent, exc)
        if result is not None:
            result.close()
        if send:
            self._fail(state, exc)

    def _parse(self, state: SessionState, body: bytes) -> None:
        name, rest = cstring(body)
        sql, rest = cstring(rest)
        count = struct.unpack("!h", rest[:2])[0]
        oids = list(struct.unpack(f"!{count}i", rest[2 : 2 + 4 * count])) if count else []
        placeholders = [int(m) for m in re.findall(r"\$(\d+)", sql)]
        nparams = max([count, *placeholders]) if placeholders else count
        oids += [0] * (nparams - len(oids))
        oids = self.server.engine.parameter_types(state, sql, oids)  # 0s inferred (params.py)
        state.statements[name] = Prepared(sql, oids)
        self._send(b"1")

    def _bind(self, state: SessionState, body: bytes) -> None:
        portal_name, rest = cstring(body)
        statement_name, rest = cstring(rest)
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
        elif portal.result.cursor is not None:  # a later Execute of a suspended portal
            self.server.supervisor.attach(state.pid, portal.result.cursor)
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
        name, rest = cstring(body)
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

    _EXTENDED: ClassVar[dict[bytes, Callable[[_Handler, SessionState, bytes], None]]] = {
        b"P": _parse,
        b"B": _bind,
        b"D": _describe,
        b"E": _execute,
        b"C": _close,
    }

    # ----------------------------------------------------------- rows

    def _budget(self, result: Result) -> ResultBudget:
        """The result caps of ``result``'s statement (every row path takes from it)."""
        if result.budget is None:
            result.budget = self.server.limits.result_budget()
        return result.budget

    def _row_description(self, columns: list[ColumnInfo], formats: list[int]) -> None:
        out = [struct.pack("!h", len(columns))]
        for i, col in enumerate(columns):
            fmt = column_format(formats, i)
            out.append(col.name.encode() + b"\x00")
            out.append(struct.pack("!ihihih", 0, 0, col.oid, col.size, col.typmod, fmt))
        self._send(b"T", b"".join(out))

    def _send_rows(self, result: Result, formats: list[int], limit: int) -> None:
        if result.copy is not None:  # COPY … TO STDOUT (copy.py)
            self._send_copy(result)
            return
        if result.columns is None or result.rows is None:
            if result.tag:
                self._send(b"C", result.tag.encode() + b"\x00")
            else:
                self._send(b"I")
            result.done = True
            return
        encoders = [
            column_encoder(c, column_format(formats, i) == 1) for i, c in enumerate(result.columns)
        ]
        write = self.wfile.write
        pack = struct.Struct("!i").pack
        budget = self._budget(result)
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
            budget.take(1, len(payload) + 5)
            write(b"D" + struct.pack("!i", len(payload) + 4) + payload)
            result.sent += 1
            if limit > 0 and count >= limit:
                self._send(b"s")  # PortalSuspended: more rows on the next Execute
                return
        result.done = True
        result.close()
        tag = "SELECT" if result.tag in READ_STATEMENTS else result.tag
        self._send(b"C", f"{tag} {count}\x00".encode())

    def _send_copy(self, result: Result) -> None:
        assert result.copy is not None

        budget = self._budget(result)

        def count(rows: int, nbytes: int) -> None:
            budget.take(rows, nbytes)
            result.sent += rows

        rows = send_copy(self.wfile.write, result.copy, count)
        result.done = True
        result.close()
        self._send(b"C", f"COPY {rows}\x00".encode())


class PgWireServer(socketserver.ThreadingTCPServer):
    """A PostgreSQL-protocol server answering from ``connect()``'s DuckDB connections.

    ``before_query`` runs before each read (the mirror's refresh). ``users``: the user
    names accepted (None: any); ``password``: required cleartext password (None: trust);
    ``authenticator``: the logins (SCRAM-SHA-256 or cleartext), instead of ``password``;
    ``view_for``: each user's own ``connect``/``refresh`` (built at its first login) instead
    of ``connect``/``before_query``; ``tls``: answer SSLRequest with TLS;
    ``limits``: the statement timeout and supervision interval (memory and temp space are
    the DuckDB database's, set where it is opened).
    """

    daemon_threads = True
    allow_reuse_address = True
    query_log: QueryLog | None = None  # where each statement is logged (None: nowhere)

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
        limits: SqlLimits | None = None,
        authenticator: Authenticator | None = None,
        view_for: Callable[[str], PrincipalView] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.connect = connect
        self.authenticator = authenticator
        self.view_for = view_for
        self.tls = tls
        self.limits = limits or SqlLimits()
        self.supervisor = StatementSupervisor(self.limits)
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

    def server_close(self) -> None:
        super().server_close()
        self.supervisor.close()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _portal_sent(state: SessionState, key: str | None) -> int:
    """Rows portal ``key`` has sent so far (0: no such portal or not run yet)."""
    portal = state.portals.get(key) if key is not None else None
    return portal.result.sent if portal is not None and portal.result is not None else 0


def _address(address: object) -> str:
    """``host:port`` of a client socket address."""
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _send_timeout(sock: socket.socket, seconds: float) -> None:
    """Writes to a client that has stopped reading fail after ``seconds`` (0: never)."""
    if seconds > 0:
        whole = int(seconds)
        value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
