"""``lakehouse sql serve``: the catalog's tables over the PostgreSQL protocol, per principal."""

from __future__ import annotations

import dataclasses
import hashlib
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from lakehouse.apps.sql.auth import Authenticator, AuthMethod, SqlLogins
from lakehouse.apps.sql.limits import SqlLimits
from lakehouse.apps.sql.mirror import (
    DeltaMirror,
    ServedTable,
    SqlEndpointError,
    default_schemas,
    served_tables,
)
from lakehouse.apps.sql.query_log import QueryLog
from lakehouse.apps.sql.tls import SqlTls, TlsError
from lakehouse.apps.sql.wire import PgWireServer
from lakehouse.config.project import Project
from lakehouse.governance.scope import GovernanceScope

MIN_MIRROR_MEMORY_MB = 64  # a principal's mirror never gets less, however many log in


@dataclass(frozen=True)
class ConnectionInfo:
    """What a BI tool needs to connect."""

    host: str
    port: int
    database: str
    user: str
    password_required: bool
    principals: tuple[str, ...] = ()  # with logins: who may log in (each as itself)
    tls: bool = False
    sslrootcert: str | None = None  # the self-signed certificate a client may verify against

    def url(self, user: str | None = None) -> str:
        """A libpq URL (psql, SQLAlchemy with ``postgresql+psycopg://``)."""
        url = f"postgresql://{user or self.user}@{self.host}:{self.port}/{self.database}"
        if self.sslrootcert:
            return f"{url}?sslmode=verify-full&sslrootcert={self.sslrootcert}"
        return f"{url}?sslmode=require" if self.tls else url


class PrincipalMirrors:
    """One :class:`DeltaMirror` per principal with a login, made at its first login.

    Each mirror is a DuckDB database of its own (so no query reaches another principal's
    tables). They share the server's limits: with n mirrors each holds ``memory_limit_mb / n``
    (the ones already made are lowered when another is made) and spills to a directory of
    its own under the server's temp directory, counted against the server's temp cap.
    """

    def __init__(
        self,
        project: Project,
        governance: GovernanceScope,
        tables: dict[str, list[ServedTable]],
        limits: SqlLimits,
    ) -> None:
        self.project = project
        self.policy = governance.policy
        self.tables = tables
        self.limits = limits
        self._mirrors: dict[str, DeltaMirror] = {}
        self._lock = threading.Lock()

    def view_for(self, principal: str) -> DeltaMirror:
        """The principal's mirror, refreshed (built on first use; thread-safe)."""
        with self._lock:
            mirror = self._mirrors.get(principal)
            if mirror is None:
                tables = self.tables[principal]
                hashed = any("hash" in t.masks.values() for t in tables)
                key = self.policy.mask_key() if hashed else None
                database = self.project.catalog.name
                share = self._memory_share(len(self._mirrors) + 1)
                for other in self._mirrors.values():
                    other.set_memory_limit(share)
                limits = dataclasses.replace(
                    self.limits,
                    memory_limit_mb=share,
                    temp_directory=_principal_directory(self.limits.temp_directory, principal),
                )
                mirror = DeltaMirror(tables, database, mask_key=key, limits=limits)
                mirror.refresh()
                self._mirrors[principal] = mirror
        return mirror

    def _memory_share(self, mirrors: int) -> int:
        """MiB of the server's memory limit for each of ``mirrors`` mirrors."""
        return max(MIN_MIRROR_MEMORY_MB, self.limits.memory_limit_mb // mirrors)

    @property
    def built(self) -> list[str]:
        """The principals whose mirror exists (those who logged in)."""
        with self._lock:
            return sorted(self._mirrors)

    def close(self) -> None:
        with self._lock:
            for mirror in self._mirrors.values():
                mirror.close()
            self._mirrors.clear()


def _principal_directory(base: Path | None, principal: str) -> Path | None:
    """A spill directory of the principal's own under ``base`` (a name safe on any disk)."""
    if base is None:
        return None
    return base / ("p-" + hashlib.sha256(principal.encode()).hexdigest()[:16])


def _no_session_mirror() -> duckdb.DuckDBPyConnection:
    raise SqlEndpointError("with logins every session reads its principal's mirror")


class SqlEndpoint:
    """The mirror(s) plus the wire server; ``start``/``stop`` or ``serve``.

    Without ``logins`` it serves the governance's principal (trust, or the cleartext
    ``password``); with ``logins`` every principal listed logs in as itself (SCRAM-SHA-256,
    or cleartext over TLS with ``auth_method="password"``) and reads what it may SELECT,
    with its masks, from its own mirror. ``tls``: answer SSLRequest with TLS.
    ``limits``: statement timeout, memory and temp space (:mod:`lakehouse.apps.sql.limits`);
    spills go to ``<data_root>/_sql_endpoint/tmp`` unless the limits name a directory.
    ``query_log``: record every statement in ``<catalog>.meta.sql_query_log``
    (:mod:`lakehouse.apps.sql.query_log`), written in batches and at ``stop``.
    """

    def __init__(
        self,
        project: Project,
        governance: GovernanceScope,
        *,
        schemas: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 15432,
        password: str | None = None,
        limits: SqlLimits | None = None,
        logins: SqlLogins | None = None,
        tls: SqlTls | None = None,
        auth_method: AuthMethod = "scram-sha-256",
        query_log: bool = True,
    ) -> None:
        self.project = project
        limits = limits or SqlLimits()
        if limits.temp_directory is None:
            temp = project.data_root / "_sql_endpoint" / "tmp"
            limits = dataclasses.replace(limits, temp_directory=temp)
        self.limits = limits
        self.principal = governance.principal
        self.database = project.catalog.name
        wanted = list(schemas) if schemas else default_schemas(project)
        self.logins = logins
        self.auth_method: AuthMethod = auth_method
        self.mirror: DeltaMirror | None = None
        self.mirrors: PrincipalMirrors | None = None
        context, self.tls_cert = self._tls_context(tls, host, auth_method)
        if logins is not None:
            if password is not None:
                raise SqlEndpointError("give either logins or a password, not both")
            self.tables_for = {
                p: _principal_tables(project, governance, p, wanted) for p in logins.principals
            }
            self.tables = _union(self.tables_for.values())
            self.mirrors = PrincipalMirrors(project, governance, self.tables_for, limits)
        else:
            self.tables = served_tables(project, governance, wanted)
            if not self.tables:
                raise SqlEndpointError(
                    f"{self.principal} may SELECT no table in schema {', '.join(wanted)} "
                    "(see `lakehouse catalog grants`)"
                )
            self.tables_for = {self.principal: self.tables}
            hashed = any("hash" in t.masks.values() for t in self.tables)
            key = governance.policy.mask_key() if hashed else None
            self.mirror = DeltaMirror(self.tables, self.database, mask_key=key, limits=limits)
            self.mirror.refresh()
        self.server = PgWireServer(
            (host, port),
            connect=self.mirror.connect if self.mirror else _no_session_mirror,
            database=self.database,
            principal=self.principal,
            before_query=self.mirror.refresh if self.mirror else lambda: None,
            users=None if logins else {self.principal},
            password=password,
            limits=limits,
            authenticator=Authenticator(logins, auth_method) if logins else None,
            view_for=self.mirrors.view_for if self.mirrors else None,
            tls=context,
        )
        self.query_log: QueryLog | None = None
        if query_log:
            served = {p: frozenset(t.full_name for t in ts) for p, ts in self.tables_for.items()}
            self.query_log = QueryLog.for_project(
                project, lambda principal: served.get(principal, frozenset())
            )
            self.server.query_log = self.query_log
        principals = tuple(logins.principals) if logins else ()
        self.info = ConnectionInfo(
            host=host,
            port=self.server.port,
            database=self.database,
            user=principals[0] if principals else self.principal,
            password_required=password is not None or logins is not None,
            principals=principals,
            tls=context is not None,
            sslrootcert=str(self.tls_cert) if tls is not None and tls.self_signed else None,
        )

    def _tls_context(
        self, tls: SqlTls | None, host: str, auth_method: AuthMethod
    ) -> tuple[ssl.SSLContext | None, Path | None]:
        if tls is None:
            if auth_method == "password":
                raise SqlEndpointError(
                    "cleartext passwords (auth password) need TLS: give a certificate or "
                    "use a self-signed one"
                )
            return None, None
        directory = self.project.data_root / "_sql_endpoint" / "tls"
        try:
            return tls.server_context(directory, host)
        except TlsError as exc:
            raise SqlEndpointError(str(exc)) from None

    def start(self) -> SqlEndpoint:
        """Serve in a background thread."""
        if self.query_log is not None:
            self.query_log.start()
        self.server.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until ``KeyboardInterrupt`` (Ctrl-C), then close everything."""
        if self.query_log is not None:
            self.query_log.start()
        try:
            self.server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server.server_close()
            self._close_log()
            self._close_mirrors()

    def stop(self) -> None:
        self.server.stop()
        self._close_log()
        self._close_mirrors()

    def _close_log(self) -> None:
        """Write the statements still queued (those of clients still connected after this
        are not logged)."""
        if self.query_log is not None:
            self.query_log.close()

    def _close_mirrors(self) -> None:
        if self.mirror is not None:
            self.mirror.close()
        if self.mirrors is not None:
            self.mirrors.close()


def _principal_tables(
    project: Project, governance: GovernanceScope, principal: str, schemas: list[str]
) -> list[ServedTable]:
    """What ``principal`` may SELECT in ``schemas``, decided in a scope of its own."""
    scope = GovernanceScope(
        project,
        principal,
        run_id=governance.run_id,
        job=governance.job,
        events=governance.events,  # the decisions go where the endpoint's own go (the audit)
        system_store=governance.system_store,
    )
    return served_tables(project, scope, schemas)


def _union(lists: Iterable[list[ServedTable]]) -> list[ServedTable]:
    """Every table any principal sees, once (by name), in name order."""
    seen: dict[str, ServedTable] = {}
    for tables in lists:
        for table in tables:
            seen.setdefault(table.full_name, table)
    return sorted(seen.values(), key=lambda t: (t.schema, t.name))
