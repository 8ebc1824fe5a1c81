"""A read-only SQL endpoint over the catalog's Gold tables for BI tools (PostgreSQL wire).

``served_tables`` decides what a principal sees (catalog grants, masks), ``DeltaMirror``
keeps those tables, masked, in an in-process DuckDB database that follows the latest Delta
version, and ``PgWireServer`` answers PostgreSQL clients (psql, JDBC/ODBC drivers, psycopg)
from it.
"""

from __future__ import annotations

from lakehouse.apps.sql.mirror import DeltaMirror, ServedTable, masked_projection, served_tables
from lakehouse.apps.sql.statements import ReadOnlyError
from lakehouse.apps.sql.wire import PgWireServer

__all__ = [
    "DeltaMirror",
    "PgWireServer",
    "ReadOnlyError",
    "ServedTable",
    "masked_projection",
    "served_tables",
]
