"""What the SQL endpoint serves, and the DuckDB copy of it that follows the Delta tables.

The endpoint's SQL engine is an in-process DuckDB database that holds only what the serving
principal may read: one table per visible catalog table, with masked columns already masked.
Raw values of a masked column never enter it, and DuckDB runs with external access off (no
file reads, no extension installs), so no query can reach around the catalog's grants.

Before a query runs, :meth:`DeltaMirror.refresh` compares each table's latest Delta version
with the one loaded and reloads the tables that moved (through ``deltalake``: DuckDB has no
Delta reader without its extension, which cannot be downloaded here). A write committed
after the server started is therefore visible to the next query. Each reload copies the
table into DuckDB memory, which suits Gold tables (aggregates sized for BI); very large
tables would want a lazy scan instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from lakehouse.apps.sql.codec import NUMERIC_OID, TEXT_OID, TYPE_OIDS
from lakehouse.apps.sql.internals import INFORMATION_SCHEMA_VIEWS
from lakehouse.apps.sql.limits import SqlLimits
from lakehouse.apps.sql.statements import SETTINGS
from lakehouse.core.errors import LakehouseError
from lakehouse.governance.masks import MaskKey, duckdb_mask
from lakehouse.governance.scope import AccessDeniedError
from lakehouse.io.delta_arrow import delta_arrow, latest_commit
from lakehouse.io.table_schema import effective_columns

if TYPE_CHECKING:
    from lakehouse.config.project import Project
    from lakehouse.governance.scope import GovernanceScope

log = logging.getLogger(__name__)

STRING_TYPES = {"VARCHAR"}
COMPAT_SCHEMA = "memory.main"
PG_MACROS = {
    "pg_get_userbyid(role_oid)": "{owner}",
    "pg_encoding_to_char(encoding)": "'UTF8'",
    "pg_tablespace_location(tablespace_oid)": "''",
    "pg_get_serial_sequence(lh_table, lh_column)": "CAST(NULL AS VARCHAR)",
    "pg_get_indexdef(lh_index, lh_column, lh_pretty)": "CAST(NULL AS VARCHAR)",
    "pg_get_statisticsobjdef_columns(lh_oid)": "CAST(NULL AS VARCHAR)",
    "pg_get_triggerdef(lh_oid, lh_pretty)": "CAST(NULL AS VARCHAR)",
    "pg_relation_is_publishable(lh_oid)": "false",
    "pg_table_size(lh_oid)": "CAST(NULL AS BIGINT)",
    "array_upper(lh_array, lh_dimension)": "len(lh_array)",
    "array_lower(lh_array, lh_dimension)": "CASE WHEN len(lh_array) > 0 THEN 1 END",
    "pg_partition_ancestors(lh_oid)": "CAST(NULL AS BIGINT)",
    "pg_get_function_result(lh_oid)": "CAST(NULL AS VARCHAR)",
    # information_schema._pg_expandarray: a set of (x: element, n: 1-based index) per array
    "_pg_expandarray(lh_array)": (
        "unnest(list_transform(range(1, len(lh_array) + 1),"
        " lambda lh_i: struct_pack(x := lh_array[lh_i], n := lh_i)))"
    ),
    "to_regtype(lh_name)": f"(SELECT min(oid) FROM {COMPAT_SCHEMA}.pg_type WHERE typname = lh_name)",
    "to_regclass(lh_name)": (
        "CASE WHEN lh_name IN ('pg_class', 'pg_catalog.pg_class') THEN 1259 ELSE"
        " (SELECT min(c.oid) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE c.relname = split_part(lh_name, '.', -1)"
        " AND (NOT contains(lh_name, '.') OR n.nspname = split_part(lh_name, '.', 1))) END"
    ),
    "lh_obj_description(lh_oid, lh_catalog)": (
        "(SELECT min(description) FROM pg_description WHERE objoid = lh_oid AND objsubid = 0)"
    ),
    "lh_col_description(lh_oid, lh_column)": (
        "(SELECT min(description) FROM pg_description"
        " WHERE objoid = lh_oid AND objsubid = lh_column)"
    ),
}


def quote(identifier: str) -> str:
    """A DuckDB / PostgreSQL quoted identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# pg_catalog relations DuckDB lacks or has without columns PostgreSQL 15 clients read, as
# views in the served database's main schema (the wire layer points pg_catalog.X here).
def _empty(columns: str) -> str:
    """SQL for an empty relation with ``columns`` ("name TYPE, ...")."""
    items = [c.strip().split(" ", 1) for c in columns.split(",")]
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in items) + " WHERE false"


# PostgreSQL 15's built-in types that the endpoint reports or accepts as parameter types:
# (oid, typname, typlen, typcategory, typispreferred). DuckDB's own pg_type lacks several
# (text, name, oid, json) and has rows without an OID.
PG_TYPES = (
    (16, "bool", 1, "B", True),
    (17, "bytea", -1, "U", False),
    (18, "char", 1, "Z", False),
    (19, "name", 64, "S", False),
    (20, "int8", 8, "N", False),
    (21, "int2", 2, "N", False),
    (23, "int4", 4, "N", False),
    (25, "text", -1, "S", True),
    (26, "oid", 4, "N", True),
    (114, "json", -1, "U", False),
    (700, "float4", 4, "N", False),
    (701, "float8", 8, "N", True),
    (1042, "bpchar", -1, "S", False),
    (1043, "varchar", -1, "S", False),
    (1082, "date", 4, "D", False),
    (1083, "time", 8, "D", False),
    (1114, "timestamp", 8, "D", False),
    (1184, "timestamptz", 8, "D", True),
    (1186, "interval", 16, "T", True),
    (1266, "timetz", 12, "D", False),
    (1560, "bit", -1, "V", False),
    (1700, "numeric", -1, "N", False),
    (2950, "uuid", 16, "U", False),
    (3802, "jsonb", -1, "U", False),
)
# The OID of DuckDB's system pg_catalog schema, which owns the catalog relations in pg_class.
_PG_CATALOG_OID = (
    "(SELECT min(oid) FROM duckdb_schemas()"
    " WHERE database_name = 'system' AND schema_name = 'pg_catalog')"
)


# PostgreSQL's binary I/O function names: boolrecv, int8recv, float8recv, varcharrecv, but
# date_recv, numeric_recv, json_recv (ADBC's driver maps types by these names)
_IO_SUFFIX = (
    "CASE WHEN oid >= 114 AND typname NOT IN ('float4', 'float8', 'bpchar', 'varchar')"
    " THEN '_{io}' ELSE '{io}' END"
)


def _pg_type() -> str:
    """SQL for pg_type: one row per :data:`PG_TYPES` entry, in PostgreSQL's columns."""
    rows = ", ".join(
        f"({oid}, '{name}', {length}, '{category}', {str(preferred).lower()})"
        for oid, name, length, category, preferred in PG_TYPES
    )
    return (
        "SELECT CAST(oid AS BIGINT) AS oid, typname, CAST("
        + _PG_CATALOG_OID
        + " AS BIGINT) AS typnamespace, CAST(10 AS BIGINT) AS typowner,"
        " CAST(typlen AS SMALLINT) AS typlen, typlen IN (1, 2, 4, 8) AS typbyval,"
        " 'b' AS typtype, typcategory, typispreferred, true AS typisdefined, ',' AS typdelim,"
        " CAST(0 AS BIGINT) AS typrelid, CAST(0 AS BIGINT) AS typsubscript,"
        " CAST(0 AS BIGINT) AS typelem, CAST(0 AS BIGINT) AS typarray,"
        " typname || 'in' AS typinput, typname || 'out' AS typoutput,"
        f" typname || {_IO_SUFFIX.format(io='recv')} AS typreceive,"
        f" typname || {_IO_SUFFIX.format(io='send')} AS typsend,"
        " '-' AS typmodin, '-' AS typmodout, '-' AS typanalyze,"
        " CASE WHEN typlen = 8 THEN 'd' WHEN typlen IN (1, 2) THEN 'c' ELSE 'i' END AS typalign,"
        " CASE WHEN typlen = -1 THEN 'x' ELSE 'p' END AS typstorage, false AS typnotnull,"
        " CAST(0 AS BIGINT) AS typbasetype, -1 AS typtypmod, 0 AS typndims,"
        " CAST(CASE WHEN typcategory = 'S' THEN 100 ELSE 0 END AS BIGINT) AS typcollation,"
        " CAST(NULL AS VARCHAR) AS typdefaultbin, CAST(NULL AS VARCHAR) AS typdefault,"
        " CAST(NULL AS VARCHAR[]) AS typacl"
        f" FROM (VALUES {rows}) AS t(oid, typname, typlen, typcategory, typispreferred)"
    )


def _pg_settings() -> str:
    """SQL for pg_settings: the PostgreSQL settings the endpoint reports (:data:`SETTINGS`),
    none of them changeable (SET is accepted and ignored)."""
    rows = ", ".join(f"({sql_literal(k)}, {sql_literal(v)})" for k, v in SETTINGS.items())
    vartype = (
        "CASE WHEN regexp_matches(setting, '^[0-9]+$') THEN 'integer'"
        " WHEN setting IN ('on', 'off') THEN 'bool' ELSE 'string' END"
    )
    return (
        "SELECT name, setting, CAST(NULL AS VARCHAR) AS unit, 'Preset Options' AS category,"
        " name AS short_desc, CAST(NULL AS VARCHAR) AS extra_desc, 'internal' AS context,"
        f" {vartype} AS vartype, 'default' AS source, CAST(NULL AS VARCHAR) AS min_val,"
        " CAST(NULL AS VARCHAR) AS max_val, CAST(NULL AS VARCHAR[]) AS enumvals,"
        " setting AS boot_val, setting AS reset_val, CAST(NULL AS VARCHAR) AS sourcefile,"
        " CAST(NULL AS INTEGER) AS sourceline, false AS pending_restart"
        f" FROM (VALUES {rows}) AS s(name, setting)"
    )


PG_RELATIONS = {
    "pg_type": _pg_type(),
    "pg_settings": _pg_settings(),
    "pg_namespace": (  # the served database's schemas, and pg_catalog and information_schema
        "SELECT * FROM pg_catalog.pg_namespace WHERE nspname <> 'main' UNION ALL"
        " SELECT oid, schema_name, 0, NULL FROM duckdb_schemas()"
        " WHERE database_name = 'system' AND schema_name IN ('pg_catalog', 'information_schema')"
    ),
    "pg_policy": _empty(
        "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN,"
        " polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR"
    ),
    "pg_statistic_ext": _empty(
        "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT,"
        " stxstattarget INTEGER, stxkeys INTEGER[], stxkind VARCHAR[], stxexprs VARCHAR"
    ),
    "pg_publication": _empty(
        "oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN,"
        " pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN"
    ),
    "pg_publication_rel": _empty(
        "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs INTEGER[]"
    ),
    "pg_publication_namespace": _empty("oid BIGINT, pnpubid BIGINT, pnnspid BIGINT"),
    "pg_description": (  # comments on tables and columns, filed under pg_class like PostgreSQL
        "SELECT objoid, CAST(1259 AS BIGINT) AS classoid, objsubid, description"
        " FROM pg_catalog.pg_description WHERE coalesce(description, '') <> ''"
    ),
    "pg_roles": "SELECT CAST(10 AS BIGINT) AS oid, current_database() AS rolname",
    "pg_trigger": _empty(
        "oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT,"
        " tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN, tgconstrrelid BIGINT,"
        " tgconstraint BIGINT"
    ),
    "pg_opclass": (
        "SELECT CAST(NULL AS BIGINT) AS oid, CAST(NULL AS BIGINT) AS opcmethod,"
        " CAST(NULL AS VARCHAR) AS opcname, CAST(NULL AS BIGINT) AS opcnamespace,"
        " CAST(NULL AS BIGINT) AS opcfamily, CAST(NULL AS BIGINT) AS opcintype,"
        " CAST(NULL AS BOOLEAN) AS opcdefault WHERE false"
    ),
    "pg_index": "SELECT *, false AS indnullsnotdistinct FROM pg_catalog.pg_index",
    "pg_attribute": (
        "SELECT a.* REPLACE (lh_pg_oid(col.data_type) AS atttypid,"
        " CASE WHEN col.data_type LIKE 'DECIMAL%'"
        " THEN ((col.numeric_precision << 16) | col.numeric_scale) + 4 ELSE -1 END AS atttypmod)"
        " FROM pg_catalog.pg_attribute a LEFT JOIN duckdb_columns() col"
        " ON col.table_oid = a.attrelid AND col.column_index = a.attnum"
    ),
    "pg_inherits": (
        "SELECT CAST(NULL AS BIGINT) AS inhrelid, CAST(NULL AS BIGINT) AS inhparent,"
        " CAST(NULL AS INTEGER) AS inhseqno, false AS inhdetachpending WHERE false"
    ),
    "pg_database": (
        "SELECT oid, datname, datallowconn, datistemplate, CAST(10 AS BIGINT) AS datdba,"
        " 6 AS encoding, 'c' AS datlocprovider, 'C' AS datcollate, 'C' AS datctype,"
        " CAST(NULL AS VARCHAR) AS daticulocale, CAST(NULL AS VARCHAR[]) AS datacl,"
        " -1 AS datconnlimit, CAST(0 AS BIGINT) AS dattablespace"
        " FROM pg_catalog.pg_database WHERE datname = current_database()"
    ),
    "pg_class": (
        "SELECT * REPLACE (CAST(NULL AS VARCHAR[]) AS reloptions),"
        " false AS relforcerowsecurity FROM pg_catalog.pg_class"
    ),
    "pg_collation": (
        "SELECT oid, collname, CAST(NULL AS BIGINT) AS collnamespace FROM pg_catalog.pg_collation"
    ),
}


class SqlEndpointError(LakehouseError):
    """The endpoint cannot serve what was asked (unknown schema, nothing visible)."""


@dataclass(frozen=True)
class ServedTable:
    """One catalog table as the endpoint serves it to its principal."""

    full_name: str
    schema: str
    name: str
    location: str
    masks: dict[str, str] = field(default_factory=dict)
    description: str = ""
    comments: dict[str, str] = field(default_factory=dict)
    row_filter: str | None = None  # DuckDB SQL: the rows the principal sees (None: all)


def default_schemas(project: Project) -> list[str]:
    """The schemas that hold Gold tables (what a BI endpoint serves unless told otherwise)."""
    return sorted({ref.schema for ref in project.tables.values() if ref.spec.layer == "gold"})


def served_tables(
    project: Project, governance: GovernanceScope, schemas: Iterable[str]
) -> list[ServedTable]:
    """The tables of ``schemas`` the governance's principal may SELECT, with their masks.

    Every decision goes through :meth:`GovernanceScope.authorize`, so it lands in the access
    audit when the scope has a system store to write it to. The masks and row filters are
    the policy's (:meth:`AccessPolicy.masks_for`, :meth:`AccessPolicy.duckdb_row_filter`),
    the ones :meth:`GovernedStore.read` applies.
    """
    wanted = set(schemas)
    unknown = wanted - {ref.schema for ref in project.tables.values()}
    if unknown:
        known = sorted({ref.schema for ref in project.tables.values()})
        raise SqlEndpointError(
            f"unknown schema {', '.join(sorted(unknown))} (catalog schemas: {', '.join(known)})"
        )
    policy = governance.policy
    out: list[ServedTable] = []
    for ref in sorted(project.tables.values(), key=lambda r: (r.schema, r.name)):
        if ref.schema not in wanted or ref.spec.layer == "system":
            continue
        try:
            governance.authorize("SELECT", ref.full_name)
        except AccessDeniedError:
            continue
        out.append(
            ServedTable(
                full_name=ref.full_name,
                schema=ref.schema,
                name=ref.name,
                location=ref.location,
                masks=policy.masks_for(governance.principal, ref.full_name),
                row_filter=policy.duckdb_row_filter(governance.principal, ref.full_name),
                description=ref.spec.description,
                comments={c.name: c.comment for c in effective_columns(ref) if c.comment},
            )
        )
    return out


def _pg_oid_case(arg: str) -> str:
    """SQL: a DuckDB type name -> the PostgreSQL type OID the wire layer reports for it."""
    whens = " ".join(f"WHEN '{name}' THEN {oid}" for name, (oid, _) in TYPE_OIDS.items())
    return (
        f"CASE WHEN {arg} LIKE 'DECIMAL%' THEN {NUMERIC_OID} "
        f"ELSE CASE {arg} {whens} ELSE {TEXT_OID} END END"
    )


def _format_type_case(oid: str, typmod: str) -> str:
    """SQL: PostgreSQL's ``format_type(oid, typmod)`` for the OIDs the endpoint reports."""
    names = {
        16: "boolean",
        17: "bytea",
        20: "bigint",
        21: "smallint",
        23: "integer",
        25: "text",
        114: "json",
        700: "real",
        701: "double precision",
        1082: "date",
        1083: "time without time zone",
        1114: "timestamp without time zone",
        1184: "timestamp with time zone",
        1186: "interval",
        2950: "uuid",
    }
    whens = " ".join(f"WHEN {o} THEN '{n}'" for o, n in names.items())
    numeric = (
        f"CASE WHEN {typmod} > 4 THEN 'numeric(' || (({typmod} - 4) >> 16) || ',' "
        f"|| (({typmod} - 4) & 65535) || ')' ELSE 'numeric' END"
    )
    return f"CASE {oid} WHEN {NUMERIC_OID} THEN {numeric} {whens} ELSE 'text' END"


def masked_projection(
    columns: list[tuple[str, str]], masks: dict[str, str], key: MaskKey | None = None
) -> str:
    """A DuckDB select list that masks like :func:`lakehouse.governance.policy.mask_expression`.

    ``columns`` are (name, DuckDB type). hash: HMAC-SHA256 hex of the value as text under
    ``key`` (refused without one); redact: ``'***'``; null: NULL; NULL stays NULL, and the
    column keeps its type (a value that cannot be cast back becomes NULL, as Spark's cast
    does). The key enters only this load statement, never a macro a client could call.
    """
    items = []
    for name, dtype in columns:
        col = quote(name)
        kind = masks.get(name)
        if kind is None:
            items.append(col)
            continue
        expr = duckdb_mask(col, kind, key)
        if kind == "null":
            expr = f"CAST(NULL AS {dtype})"
        if kind != "null" and dtype not in STRING_TYPES:
            expr = f"TRY_CAST({expr} AS {dtype})"
        items.append(f"{expr} AS {col}")
    return ", ".join(items)


class DeltaMirror:
    """An in-memory DuckDB database holding the served tables at their latest Delta version."""

    def __init__(
        self,
        tables: list[ServedTable],
        database: str,
        *,
        mask_key: MaskKey | None = None,
        limits: SqlLimits | None = None,
    ) -> None:
        self.tables = tables
        self.database = database
        self._mask_key = mask_key
        self.limits = limits or SqlLimits()
        if self.limits.temp_directory is not None:
            self.limits.temp_directory.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                **self.limits.duckdb_config(),
            },
        )
        self.db.execute("SET TimeZone = 'UTC'")
        # PostgreSQL-compatibility objects live in the default database ("memory"), out of
        # the served database's listings; sessions find them through the search path.
        self.db.execute(f"CREATE MACRO lh_pg_oid(lh_type) AS {_pg_oid_case('lh_type')}")
        self.db.execute(
            "CREATE MACRO lh_format_type(lh_oid, lh_typmod) AS "
            + _format_type_case("lh_oid", "lh_typmod")
        )
        settings = " ".join(
            f"WHEN {sql_literal(k.lower())} THEN {sql_literal(v)}" for k, v in SETTINGS.items()
        )
        self.db.execute(
            f"CREATE MACRO lh_current_setting(lh_name) AS CASE lower(lh_name) {settings} END"
        )
        for name, query in {**PG_RELATIONS, **INFORMATION_SCHEMA_VIEWS}.items():
            self.db.execute(f"CREATE VIEW {name} AS {query}")
        for name, body in PG_MACROS.items():
            self.db.execute(f"CREATE MACRO {name} AS {body.format(owner=sql_literal(database))}")
        self.db.execute(f"ATTACH ':memory:' AS {quote(database)}")
        for schema in sorted({t.schema for t in tables}):
            self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(database)}.{quote(schema)}")
        self.db.execute(f"USE {quote(database)}")
        self.versions: dict[str, int] = {}
        self._lock = threading.Lock()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the mirror (one per client statement), in the served database."""
        with self._lock:  # the parent connection is used by one thread at a time
            cursor = self.db.cursor()
        cursor.execute(f"USE {quote(self.database)}")
        cursor.execute(f"SET search_path = '{self.database}.main,{COMPAT_SCHEMA}'")
        # this statement's sorts and hash tables spill beyond this (DuckDB's per-connection cap)
        cursor.execute(f"SET operator_memory_limit = '{self.limits.query_memory_mb}MiB'")
        return cursor

    def refresh(self) -> list[str]:
        """Reload every table whose latest Delta version differs from the loaded one."""
        changed: list[str] = []
        with self._lock:
            for table in self.tables:
                loaded = self.versions.get(table.full_name)
                if loaded is not None and latest_commit(table.location) == loaded:
                    continue  # unchanged: known from the log's file names, no log read
                try:
                    delta = DeltaTable(table.location)
                except TableNotFoundError:
                    if self.versions.pop(table.full_name, None) is not None:
                        self.db.execute(f"DROP TABLE IF EXISTS {self._name(table)}")
                        changed.append(table.full_name)
                    continue
                version = delta.version()
                if self.versions.get(table.full_name) == version:
                    continue
                self._load(table, delta)
                self.versions[table.full_name] = version
                changed.append(table.full_name)
        if changed:
            log.info("loaded %s", ", ".join(f"{n}@{self.versions.get(n)}" for n in changed))
        return changed

    @staticmethod
    def _name(table: ServedTable) -> str:
        return f"{quote(table.schema)}.{quote(table.name)}"

    def _load(self, table: ServedTable, delta: DeltaTable) -> None:
        source = "__lakehouse_source"
        self.db.register(source, delta_arrow(delta))
        try:
            described = self.db.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            columns = [(str(row[0]), str(row[1])) for row in described]
            projection = masked_projection(columns, table.masks, self._mask_key)
            rows = source  # the row filter sees raw values; the rows it drops never enter DuckDB
            if table.row_filter is not None:
                rows = f"(SELECT * FROM {source} WHERE ({table.row_filter})) AS {source}"
            self.db.execute(
                f"CREATE OR REPLACE TABLE {self._name(table)} AS SELECT {projection} FROM {rows}"
            )
        finally:
            self.db.unregister(source)
        if table.description:
            self.db.execute(
                f"COMMENT ON TABLE {self._name(table)} IS {sql_literal(table.description)}"
            )
        for column, comment in table.comments.items():
            if any(column == name for name, _ in columns):
                self.db.execute(
                    f"COMMENT ON COLUMN {self._name(table)}.{quote(column)} "
                    f"IS {sql_literal(comment)}"
                )

    def set_memory_limit(self, mb: int) -> None:
        """Change the database's memory limit (a share of the server's)."""
        with self._lock:
            self.db.execute(f"SET memory_limit = '{int(mb)}MiB'")

    def close(self) -> None:
        self.db.close()
