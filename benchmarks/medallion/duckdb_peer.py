"""The second hand-written peer: DuckDB SQL over Arrow, Delta tables through ``deltalake``.

No DuckDB extensions (they are downloaded at first use, and this machine cannot): the drops
are read with DuckDB's built-in CSV/JSON readers, Delta tables are read as Arrow datasets
from delta-rs and registered in DuckDB, and results are written with delta-rs. The work is
the same as polars_peer.py: new files only to Bronze, the whole Bronze table typed, checked
(same rules), latest per key, delta-rs MERGE into Silver, then the Gold SQL of
``conf/pipelines.yml`` (DuckDB dialect) overwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from deltalake import DeltaTable, write_deltalake
from harness import LayerTimes, ProcessedFiles
from polars_peer import TYPES
from tpch_data import CSV_TABLES, KEYS, TABLES

SQL_TYPE = {
    "Int32": "INTEGER",
    "Int64": "BIGINT",
    "String": "VARCHAR",
    "Date": "DATE",
}

RULES_SQL: dict[str, list[tuple[str, str, str]]] = {
    "customer": [
        (
            "mktsegment_known",
            "warn",
            "c_mktsegment IS NULL OR c_mktsegment IN "
            "('AUTOMOBILE','BUILDING','FURNITURE','HOUSEHOLD','MACHINERY')",
        ),
        ("acctbal_in_range", "warn", "c_acctbal IS NULL OR c_acctbal BETWEEN -999.99 AND 9999.99"),
    ],
    "orders": [
        ("orderstatus_known", "drop", "o_orderstatus IS NULL OR o_orderstatus IN ('F','O','P')"),
        ("totalprice_not_negative", "drop", "o_totalprice IS NULL OR o_totalprice >= 0"),
    ],
    "lineitem": [
        ("quantity_in_range", "drop", "l_quantity IS NULL OR l_quantity BETWEEN 1 AND 50"),
        ("discount_in_range", "drop", "l_discount IS NULL OR l_discount BETWEEN 0 AND 0.1"),
        ("tax_in_range", "warn", "l_tax IS NULL OR l_tax BETWEEN 0 AND 0.08"),
        ("returnflag_known", "drop", "l_returnflag IS NULL OR l_returnflag IN ('A','N','R')"),
        ("linestatus_known", "drop", "l_linestatus IS NULL OR l_linestatus IN ('F','O')"),
        ("received_after_shipped", "warn", "COALESCE(l_receiptdate >= l_shipdate, false)"),
    ],
}


def _sql_type(dtype: Any) -> str:
    name = str(dtype)
    if name.startswith("Decimal"):
        return "DECIMAL(15,2)"
    return SQL_TYPE[name]


def bronze(con: duckdb.DuckDBPyConnection, root: Path, landing: Path) -> dict[str, int]:
    processed = ProcessedFiles(root)
    now = datetime.now(tz=UTC).replace(tzinfo=None, microsecond=0)
    rows = {}
    for table in TABLES:
        new = processed.new_files(landing, table)
        if not new:
            continue
        names = [*TYPES[table], "updated_at"]
        listing = "[" + ", ".join(f"'{p}'" for p in new) + "]"
        if table in CSV_TABLES:
            reader = (
                f"read_csv({listing}, delim='|', header=true, all_varchar=true, "
                "quote='\"', filename=true)"
            )
        else:
            columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
            reader = f"read_json({listing}, format='newline_delimited', columns={columns}, filename=true)"
        data = con.sql(
            f"SELECT {', '.join(names)}, filename AS _source_file, "
            f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}' AS _ingested_at FROM {reader}"
        ).to_arrow_table()
        write_deltalake(str(root / "bronze" / table), data, mode="append")
        rows[table] = data.num_rows
        processed.add(table, new)
    processed.save()
    return rows


def silver_table(con: duckdb.DuckDBPyConnection, root: Path, table: str) -> dict[str, int]:
    bronze_ds = DeltaTable(str(root / "bronze" / table)).to_pyarrow_dataset()
    con.register("bronze_rows", bronze_ds)
    names = [*TYPES[table], "updated_at"]
    keys = KEYS[table]
    casts = []
    unfit = []
    for name, dtype in TYPES[table].items():
        sql_type = _sql_type(dtype)
        if sql_type == "VARCHAR":
            casts.append(name)
        else:
            casts.append(f"TRY_CAST({name} AS {sql_type}) AS {name}")
            unfit.append(f"({name} IS NOT NULL AND TRY_CAST({name} AS {sql_type}) IS NULL)")
    casts.append("TRY_CAST(updated_at AS TIMESTAMP) AS updated_at")
    unfit.append("TRY_CAST(updated_at AS TIMESTAMP) IS NULL")
    unfit += [f"{k} IS NULL" for k in keys]
    rules = RULES_SQL.get(table, [])
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE typed AS
        SELECT {", ".join(casts)}, _source_file, _ingested_at, ({" OR ".join(unfit)}) AS _unfit
        FROM bronze_rows"""
    )
    # the key check of a failed cast is on the typed value; redo it on the typed table
    con.execute(f"UPDATE typed SET _unfit = true WHERE {' OR '.join(f'{k} IS NULL' for k in keys)}")
    counts = {"rows_read": int(con.sql("SELECT count(*) FROM typed").fetchall()[0][0])}
    for name, action, cond in rules:
        failed = con.sql(f"SELECT count(*) FROM typed WHERE NOT _unfit AND NOT ({cond})").fetchall()
        counts[f"{name} ({action})"] = int(failed[0][0])
    drops = [f"NOT ({cond})" for _, action, cond in rules if action == "drop"]
    dropped = " OR ".join(["_unfit", *drops])
    order = "updated_at DESC, _ingested_at DESC, _source_file DESC"
    latest = con.sql(
        f"""SELECT {", ".join(names)} FROM typed WHERE NOT ({dropped})
        QUALIFY row_number() OVER (PARTITION BY {", ".join(keys)} ORDER BY {order}) = 1"""
    ).to_arrow_table()
    rejected = con.sql(
        f"SELECT to_json(struct_pack({', '.join(names)}))::VARCHAR AS _row, _source_file "
        f"FROM typed WHERE {dropped}"
    ).to_arrow_table()
    counts["rows_quarantined"] = rejected.num_rows
    target = root / "silver" / table
    if not DeltaTable.is_deltatable(str(target)):
        write_deltalake(str(target), latest.slice(0, 0), mode="overwrite")
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    (
        DeltaTable(str(target))
        .merge(latest, predicate=on, source_alias="s", target_alias="t")
        .when_matched_update_all(predicate="s.updated_at >= t.updated_at")
        .when_not_matched_insert_all()
        .execute()
    )
    if rejected.num_rows:
        write_deltalake(str(root / "silver" / f"{table}_quarantine"), rejected, mode="append")
    con.unregister("bronze_rows")
    con.execute("DROP TABLE typed")
    return counts


GOLD_SQL = {
    "pricing_summary": """
        SELECT l_returnflag, l_linestatus,
               SUM(l_quantity) AS sum_qty,
               SUM(l_extendedprice) AS sum_base_price,
               SUM(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
               SUM(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
               AVG(CAST(l_quantity AS DOUBLE)) AS avg_qty,
               AVG(CAST(l_extendedprice AS DOUBLE)) AS avg_price,
               AVG(CAST(l_discount AS DOUBLE)) AS avg_disc,
               COUNT(*) AS count_order
        FROM lineitem WHERE l_shipdate <= DATE '1998-09-02'
        GROUP BY l_returnflag, l_linestatus""",
    "customer_revenue": """
        WITH order_revenue AS (
          SELECT o.o_orderkey, o.o_custkey, o.o_orderdate, COUNT(l.l_orderkey) AS lines,
                 SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
          FROM orders o LEFT JOIN lineitem l ON l.l_orderkey = o.o_orderkey
          GROUP BY o.o_orderkey, o.o_custkey, o.o_orderdate)
        SELECT c.c_custkey, n.n_name AS nation, r.r_name AS region, c.c_mktsegment,
               COUNT(o.o_orderkey) AS orders, COALESCE(SUM(o.lines), 0)::BIGINT AS lines,
               SUM(o.revenue) AS revenue, MAX(o.o_orderdate) AS last_order_date,
               CASE WHEN COUNT(o.o_orderkey) > 0
                    THEN CAST(SUM(o.revenue) AS DOUBLE) / COUNT(o.o_orderkey) ELSE 0.0 END
                 AS avg_order_value
        FROM customer c
        LEFT JOIN nation n ON n.n_nationkey = c.c_nationkey
        LEFT JOIN region r ON r.r_regionkey = n.n_regionkey
        LEFT JOIN order_revenue o ON o.o_custkey = c.c_custkey
        GROUP BY c.c_custkey, n.n_name, r.r_name, c.c_mktsegment""",
    "nation_revenue": """
        SELECT n.n_name AS nation, r.r_name AS region, CAST(YEAR(o.o_orderdate) AS INTEGER) AS order_year,
               COUNT(DISTINCT o.o_custkey) AS customers, COUNT(DISTINCT o.o_orderkey) AS orders,
               SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
        FROM lineitem l JOIN orders o ON o.o_orderkey = l.l_orderkey
        JOIN customer c ON c.c_custkey = o.o_custkey
        JOIN nation n ON n.n_nationkey = c.c_nationkey
        JOIN region r ON r.r_regionkey = n.n_regionkey
        GROUP BY n.n_name, r.r_name, YEAR(o.o_orderdate)""",
    "daily_shipments": """
        SELECT l_shipdate AS ship_date, l_shipmode AS ship_mode, COUNT(*) AS lines,
               SUM(l_quantity) AS units, SUM(l_extendedprice * (1 - l_discount)) AS revenue,
               COUNT(DISTINCT l_orderkey) AS orders
        FROM lineitem GROUP BY l_shipdate, l_shipmode""",
}


def gold(con: duckdb.DuckDBPyConnection, root: Path) -> dict[str, int]:
    for table in TABLES:
        con.register(table, DeltaTable(str(root / "silver" / table)).to_pyarrow_dataset())
    rows = {}
    for name, sql in GOLD_SQL.items():
        data = con.sql(sql).to_arrow_table()
        write_deltalake(str(root / "gold" / name), data, mode="overwrite")
        rows[name] = data.num_rows
    for table in TABLES:
        con.unregister(table)
    return rows


def run(root: Path, landing: Path, times: LayerTimes) -> dict[str, Any]:
    """Bronze, Silver, Gold, timed per layer."""
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        with times.layer("bronze"):
            bronze_rows = bronze(con, root, landing)
        with times.layer("silver"):
            silver = {t: silver_table(con, root, t) for t in TABLES}
        with times.layer("gold"):
            gold_rows = gold(con, root)
    finally:
        con.close()
    return {
        "counters": {"bronze": bronze_rows, "silver": silver, "gold": gold_rows},
        "engine": f"duckdb {duckdb.__version__}",
        "format": "delta",
    }
