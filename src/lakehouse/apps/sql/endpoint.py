"""``lakehouse sql serve``: the catalog's tables for one principal over the PostgreSQL protocol."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from lakehouse.apps.sql.limits import SqlLimits
from lakehouse.apps.sql.mirror import (
    DeltaMirror,
    ServedTable,
    SqlEndpointError,
    default_schemas,
    served_tables,
)
from lakehouse.apps.sql.query_log import QueryLog
from lakehouse.apps.sql.wire import PgWireServer
from lakehouse.config.project import Project
from lakehouse.governance.scope import GovernanceScope


@dataclass(frozen=True)
class ConnectionInfo:
    """What a BI tool needs to connect."""

    host: str
    port: int
    database: str
    user: str
    password_required: bool

    def url(self) -> str:
        """A libpq URL (psql, SQLAlchemy with ``postgresql+psycopg://``)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


class SqlEndpoint:
    """The mirror plus the wire server for one principal; ``start``/``stop`` or ``serve``.

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
        query_log: bool = True,
    ) -> None:
        self.project = project
        limits = limits or SqlLimits()
        if limits.temp_directory is None:
            temp = project.data_root / "_sql_endpoint" / "tmp"
            limits = dataclasses.replace(limits, temp_directory=temp)
        self.limits = limits
        self.principal = governance.principal
        wanted = list(schemas) if schemas else default_schemas(project)
        self.tables: list[ServedTable] = served_tables(project, governance, wanted)
        if not self.tables:
            raise SqlEndpointError(
                f"{self.principal} may SELECT no table in schema {', '.join(wanted)} "
                "(see `lakehouse catalog grants`)"
            )
        self.database = project.catalog.name
        hashed = any("hash" in t.masks.values() for t in self.tables)
        key = governance.policy.mask_key() if hashed else None
        self.mirror = DeltaMirror(self.tables, self.database, mask_key=key, limits=limits)
        self.mirror.refresh()
        self.server = PgWireServer(
            (host, port),
            connect=self.mirror.connect,
            database=self.database,
            principal=self.principal,
            before_query=self.mirror.refresh,
            users={self.principal},
            password=password,
            limits=limits,
        )
        self.query_log: QueryLog | None = None
        if query_log:
            served = frozenset(t.full_name for t in self.tables)
            self.query_log = QueryLog.for_project(project, lambda principal: served)
            self.server.query_log = self.query_log
        self.info = ConnectionInfo(
            host=host,
            port=self.server.port,
            database=self.database,
            user=self.principal,
            password_required=password is not None,
        )

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
            self.mirror.close()

    def stop(self) -> None:
        self.server.stop()
        self._close_log()
        self.mirror.close()

    def _close_log(self) -> None:
        """Write the statements still queued (those of clients still connected after this
        are not logged)."""
        if self.query_log is not None:
            self.query_log.close()
