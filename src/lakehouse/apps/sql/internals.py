"""DuckDB's internals, hidden from or refused to SQL endpoint clients.

The endpoint answers as PostgreSQL; what belongs to DuckDB stays out of reach:

* **Listings**: the served database's ``main`` schema and the compatibility objects in
  ``memory.main`` are not listed: ``information_schema.schemata`` / ``tables`` /
  ``columns`` read views (:data:`INFORMATION_SCHEMA_VIEWS`) that show the served schemas
  plus ``information_schema`` and ``pg_catalog``, as PostgreSQL lists them.
* **Statements**: ``PRAGMA``, ``CALL``, ``ATTACH``/``DETACH``, ``INSTALL``, ``LOAD``,
  ``EXPORT``/``IMPORT DATABASE``, ``CHECKPOINT``, ``USE``, ``SUMMARIZE`` are refused (42501).
* **Functions**: DuckDB's ``duckdb_*()`` and ``pragma_*()`` table functions (and the
  ``duckdb_*`` views) in a client's SQL are refused (42501); the endpoint's own views use
  them internally.
* **Settings**: ``SET``/``RESET`` of a DuckDB setting that is no PostgreSQL session
  setting is refused (42501); PostgreSQL session settings (``application_name``,
  ``extra_float_digits``, ``DateStyle``, ``search_path`` …) are accepted as before.
"""

from __future__ import annotations

import functools
import re

import duckdb

from lakehouse.apps.sql.codec import PgError

_LITERALS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_INTERNAL_FUNCTION = re.compile(r"\b(duckdb_\w+|pragma_\w+)\b", re.IGNORECASE)
_INTERNAL_STATEMENT = re.compile(
    r"^\s*(PRAGMA|CALL|ATTACH|DETACH|INSTALL|FORCE\s+INSTALL|LOAD|EXPORT\s+DATABASE|"
    r"IMPORT\s+DATABASE|CHECKPOINT|FORCE\s+CHECKPOINT|USE|SUMMARIZE)\b",
    re.IGNORECASE,
)
_INFO_SCHEMA = re.compile(
    r"\binformation_schema\s*\.\s*(schemata|tables|columns)\b(?!\s*\()", re.IGNORECASE
)
# PostgreSQL session settings a client may SET (accepted, mostly without effect), also
# when DuckDB has a setting of that name
PG_SESSION_SETTINGS = {
    "application_name",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "extra_float_digits",
    "idle_in_transaction_session_timeout",
    "intervalstyle",
    "lock_timeout",
    "search_path",
    "standard_conforming_strings",
    "statement_timeout",
    "timezone",
    "transaction_isolation",
    "transaction_read_only",
    "all",
}
_SCHEMA_FILTER = (
    "(catalog_name = current_database() AND schema_name <> 'main')"
    " OR (catalog_name = 'system' AND schema_name IN ('information_schema', 'pg_catalog'))"
)
# information_schema views as PostgreSQL lists them (created in memory.main by the mirror)
INFORMATION_SCHEMA_VIEWS = {
    "lh_is_schemata": (
        "SELECT * REPLACE (current_database() AS catalog_name)"
        f" FROM system.information_schema.schemata WHERE {_SCHEMA_FILTER}"
    ),
    "lh_is_tables": (
        "SELECT * FROM system.information_schema.tables"
        " WHERE table_catalog = current_database() AND table_schema <> 'main'"
    ),
    "lh_is_columns": (
        "SELECT * FROM system.information_schema.columns"
        " WHERE table_catalog = current_database() AND table_schema <> 'main'"
    ),
}


def _code(sql: str) -> str:
    """``sql`` without its string literals, quoted identifiers and comments."""
    return _LITERALS.sub(" ", sql)


def check_client_sql(sql: str) -> None:
    """Refuse DuckDB's own statements and introspection functions (42501)."""
    statement = _INTERNAL_STATEMENT.match(sql)
    if statement:
        word = re.sub(r"\s+", " ", statement.group(1).upper())
        raise PgError(
            f"permission denied: {word} is DuckDB's, not available on the lakehouse SQL "
            "endpoint (it answers as PostgreSQL: use pg_catalog and information_schema)",
            "42501",
        )
    function = _INTERNAL_FUNCTION.search(_code(sql))
    if function:
        raise PgError(
            f"permission denied for function {function.group(1)}: DuckDB's internal "
            "functions are not available on the lakehouse SQL endpoint (use pg_catalog and "
            "information_schema)",
            "42501",
        )


def translate_information_schema(sql: str) -> str:
    """Point ``information_schema.schemata/tables/columns`` at the filtered views."""
    return _INFO_SCHEMA.sub(r"memory.main.lh_is_\1", sql)


@functools.cache
def duckdb_settings() -> frozenset[str]:
    """The names of DuckDB's settings (lower case)."""
    with duckdb.connect() as db:
        return frozenset(
            str(r[0]).lower() for r in db.execute("SELECT name FROM duckdb_settings()").fetchall()
        )


def check_setting(name: str) -> None:
    """Refuse SET/RESET of a DuckDB setting that is no PostgreSQL session setting (42501)."""
    key = name.lower()
    if key in duckdb_settings() and key not in PG_SESSION_SETTINGS:
        raise PgError(
            f'permission denied to set parameter "{name}": it is a DuckDB setting, not '
            "available on the lakehouse SQL endpoint",
            "42501",
        )
