"""The hand-written peer: the same medallion work with Polars + ``deltalake`` (delta-rs).

What a careful engineer would write by hand for this job, doing the same work as the
bundle's job so the times compare:

* Bronze: new files only (a processed-files list kept as JSON next to the tables), every
  value read as text, ``_source_file`` and ``_ingested_at`` added, one Delta append per table.
* Silver: the whole Bronze table read, typed (a value that does not fit its type goes to
  quarantine), the same rules (drop -> quarantine, warn -> counted, fail -> stop), the latest
  version per key (``updated_at``, then ``_ingested_at``, ``_source_file``), then a delta-rs
  MERGE on the keys (update when the source is at least as new, insert otherwise).
* Gold: the four tables of ``conf/pipelines.yml`` as Polars lazy queries, overwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake
from harness import LayerTimes, ProcessedFiles
from tpch_data import CSV_TABLES, KEYS, TABLES

DEC = pl.Decimal(15, 2)
TYPES: dict[str, dict[str, Any]] = {
    "region": {"r_regionkey": pl.Int32, "r_name": pl.String, "r_comment": pl.String},
    "nation": {
        "n_nationkey": pl.Int32,
        "n_name": pl.String,
        "n_regionkey": pl.Int32,
        "n_comment": pl.String,
    },
    "customer": {
        "c_custkey": pl.Int64,
        "c_name": pl.String,
        "c_address": pl.String,
        "c_nationkey": pl.Int32,
        "c_phone": pl.String,
        "c_acctbal": DEC,
        "c_mktsegment": pl.String,
        "c_comment": pl.String,
    },
    "orders": {
        "o_orderkey": pl.Int64,
        "o_custkey": pl.Int64,
        "o_orderstatus": pl.String,
        "o_totalprice": DEC,
        "o_orderdate": pl.Date,
        "o_orderpriority": pl.String,
        "o_clerk": pl.String,
        "o_shippriority": pl.Int32,
        "o_comment": pl.String,
    },
    "lineitem": {
        "l_orderkey": pl.Int64,
        "l_partkey": pl.Int64,
        "l_suppkey": pl.Int64,
        "l_linenumber": pl.Int32,
        "l_quantity": DEC,
        "l_extendedprice": DEC,
        "l_discount": DEC,
        "l_tax": DEC,
        "l_returnflag": pl.String,
        "l_linestatus": pl.String,
        "l_shipdate": pl.Date,
        "l_commitdate": pl.Date,
        "l_receiptdate": pl.Date,
        "l_shipinstruct": pl.String,
        "l_shipmode": pl.String,
        "l_comment": pl.String,
    },
}


def _between(col: str, lo: float | None, hi: float | None) -> pl.Expr:
    c = pl.col(col).cast(pl.Float64)
    expr = pl.lit(True)
    if lo is not None:
        expr = expr & (c >= lo)
    if hi is not None:
        expr = expr & (c <= hi)
    return pl.col(col).is_null() | expr


# (name, action, passes) per table, as in conf/pipelines.yml (NULL passes, as in GX)
RULES: dict[str, list[tuple[str, str, pl.Expr]]] = {
    "customer": [
        (
            "mktsegment_known",
            "warn",
            pl.col("c_mktsegment").is_null()
            | pl.col("c_mktsegment").is_in(
                ["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"]
            ),
        ),
        ("acctbal_in_range", "warn", _between("c_acctbal", -999.99, 9999.99)),
    ],
    "orders": [
        (
            "orderstatus_known",
            "drop",
            pl.col("o_orderstatus").is_null() | pl.col("o_orderstatus").is_in(["F", "O", "P"]),
        ),
        ("totalprice_not_negative", "drop", _between("o_totalprice", 0, None)),
    ],
    "lineitem": [
        ("quantity_in_range", "drop", _between("l_quantity", 1, 50)),
        ("discount_in_range", "drop", _between("l_discount", 0, 0.1)),
        ("tax_in_range", "warn", _between("l_tax", 0, 0.08)),
        (
            "returnflag_known",
            "drop",
            pl.col("l_returnflag").is_null() | pl.col("l_returnflag").is_in(["A", "N", "R"]),
        ),
        (
            "linestatus_known",
            "drop",
            pl.col("l_linestatus").is_null() | pl.col("l_linestatus").is_in(["F", "O"]),
        ),
        (
            "received_after_shipped",
            "warn",
            (pl.col("l_receiptdate") >= pl.col("l_shipdate")).fill_null(False),
        ),
    ],
}


# ---------------------------------------------------------------- Bronze


def bronze(root: Path, landing: Path) -> dict[str, int]:
    """Append the new files of every drop to its Bronze table; rows per table."""
    processed = ProcessedFiles(root)
    now = datetime.now(tz=UTC).replace(tzinfo=None, microsecond=0)
    rows = {}
    for table in TABLES:
        new = processed.new_files(landing, table)
        if not new:
            continue
        frames = []
        for path in new:
            if table in CSV_TABLES:
                df = pl.read_csv(path, separator="|", infer_schema=False)
            else:
                names = [*TYPES[table], "updated_at"]
                df = pl.read_ndjson(path, schema=dict.fromkeys(names, pl.String))
            frames.append(df.with_columns(_source_file=pl.lit(str(path))))
        data = pl.concat(frames).with_columns(_ingested_at=pl.lit(now))
        write_deltalake(str(root / "bronze" / table), data.to_arrow(), mode="append")
        rows[table] = data.height
        processed.add(table, new)
    processed.save()
    return rows


# ---------------------------------------------------------------- Silver


def _typed(table: str) -> list[pl.Expr]:
    out = []
    for name, dtype in TYPES[table].items():
        col = pl.col(name)
        if dtype == pl.Date:
            out.append(col.str.to_date("%Y-%m-%d", strict=False).alias(name))
        elif dtype == pl.String:
            out.append(col)
        else:
            out.append(col.cast(dtype, strict=False).alias(name))
    out.append(
        pl.col("updated_at").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).alias("updated_at")
    )
    return out


def silver_table(root: Path, table: str) -> dict[str, int]:
    """Bronze -> typed, checked, latest per key -> MERGE into Silver; counts."""
    raw = pl.read_delta(str(root / "bronze" / table))
    names = [*TYPES[table], "updated_at"]
    typed = raw.select(*_typed(table), "_source_file", "_ingested_at")
    keys = KEYS[table]
    # a value that does not fit its type, or a missing key: quarantine
    bad_cast = pl.any_horizontal(
        *[typed[n].is_null() & raw[n].is_not_null() for n in names],
        *[typed[k].is_null() for k in keys],
        typed["updated_at"].is_null(),
    )
    rules = RULES.get(table, [])
    flags = typed.with_columns(_unfit=bad_cast, **{f"_ok_{name}": expr for name, _, expr in rules})
    counts = {"rows_read": raw.height}
    for name, action, _ in rules:
        failed = int((~flags[f"_ok_{name}"] & ~flags["_unfit"]).sum())
        counts[f"{name} ({action})"] = failed
    drop = pl.any_horizontal(
        pl.col("_unfit"), *[~pl.col(f"_ok_{n}") for n, a, _ in rules if a == "drop"]
    )
    kept = flags.filter(~drop)
    rejected = flags.filter(drop)
    counts["rows_quarantined"] = rejected.height
    latest = (
        kept.sort(["updated_at", "_ingested_at", "_source_file"], nulls_last=False)
        .unique(subset=keys, keep="last", maintain_order=False)
        .select(names)
    )
    counts["rows_kept"] = kept.height
    target = root / "silver" / table
    if not DeltaTable.is_deltatable(str(target)):
        write_deltalake(str(target), latest.head(0).to_arrow(), mode="overwrite")
    on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    (
        DeltaTable(str(target))
        .merge(latest.to_arrow(), predicate=on, source_alias="s", target_alias="t")
        .when_matched_update_all(predicate="s.updated_at >= t.updated_at")
        .when_not_matched_insert_all()
        .execute()
    )
    if rejected.height:
        quarantine = rejected.select(
            pl.struct(names).struct.json_encode().alias("_row"), "_source_file"
        )
        write_deltalake(
            str(root / "silver" / f"{table}_quarantine"), quarantine.to_arrow(), mode="append"
        )
    return counts


# ---------------------------------------------------------------- Gold


def gold(root: Path) -> dict[str, int]:
    """The four Gold tables, overwritten; rows per table."""

    def scan(t: str) -> pl.LazyFrame:
        return pl.scan_delta(str(root / "silver" / t)).drop("updated_at")

    lineitem, orders, customer = scan("lineitem"), scan("orders"), scan("customer")
    nation, region = scan("nation"), scan("region")
    disc_price = pl.col("l_extendedprice") * (1 - pl.col("l_discount"))
    pricing = (
        lineitem.filter(pl.col("l_shipdate") <= pl.date(1998, 9, 2))
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            sum_qty=pl.col("l_quantity").sum(),
            sum_base_price=pl.col("l_extendedprice").sum(),
            sum_disc_price=disc_price.sum(),
            sum_charge=(disc_price * (1 + pl.col("l_tax"))).sum(),
            avg_qty=pl.col("l_quantity").cast(pl.Float64).mean(),
            avg_price=pl.col("l_extendedprice").cast(pl.Float64).mean(),
            avg_disc=pl.col("l_discount").cast(pl.Float64).mean(),
            count_order=pl.len().cast(pl.Int64),
        )
    )
    order_revenue = (
        orders.join(lineitem, left_on="o_orderkey", right_on="l_orderkey", how="left")
        .group_by("o_orderkey", "o_custkey", "o_orderdate")
        .agg(lines=pl.col("l_linenumber").count().cast(pl.Int64), revenue=disc_price.sum())
    )
    geo = customer.join(nation, left_on="c_nationkey", right_on="n_nationkey", how="left").join(
        region, left_on="n_regionkey", right_on="r_regionkey", how="left"
    )
    customer_revenue = (
        geo.join(order_revenue, left_on="c_custkey", right_on="o_custkey", how="left")
        .group_by(
            "c_custkey",
            pl.col("n_name").alias("nation"),
            pl.col("r_name").alias("region"),
            "c_mktsegment",
        )
        .agg(
            orders=pl.col("o_orderkey").count().cast(pl.Int64),
            lines=pl.col("lines").sum().cast(pl.Int64),
            revenue=pl.when(pl.col("revenue").count() > 0).then(pl.col("revenue").sum()),
            last_order_date=pl.col("o_orderdate").max(),
        )
        .with_columns(
            avg_order_value=pl.when(pl.col("orders") > 0)
            .then(pl.col("revenue").cast(pl.Float64) / pl.col("orders"))
            .otherwise(0.0)
        )
    )
    nation_revenue = (
        lineitem.join(orders, left_on="l_orderkey", right_on="o_orderkey")
        .join(customer, left_on="o_custkey", right_on="c_custkey")
        .join(nation, left_on="c_nationkey", right_on="n_nationkey")
        .join(region, left_on="n_regionkey", right_on="r_regionkey")
        .group_by(
            pl.col("n_name").alias("nation"),
            pl.col("r_name").alias("region"),
            pl.col("o_orderdate").dt.year().cast(pl.Int32).alias("order_year"),
        )
        .agg(
            customers=pl.col("o_custkey").n_unique().cast(pl.Int64),
            orders=pl.col("l_orderkey").n_unique().cast(pl.Int64),
            revenue=disc_price.sum(),
        )
    )
    daily = lineitem.group_by(
        pl.col("l_shipdate").alias("ship_date"), pl.col("l_shipmode").alias("ship_mode")
    ).agg(
        lines=pl.len().cast(pl.Int64),
        units=pl.col("l_quantity").sum(),
        revenue=disc_price.sum(),
        orders=pl.col("l_orderkey").n_unique().cast(pl.Int64),
    )
    frames = {
        "pricing_summary": pricing,
        "customer_revenue": customer_revenue,
        "nation_revenue": nation_revenue,
        "daily_shipments": daily,
    }
    collected = pl.collect_all(list(frames.values()))
    rows = {}
    for (name, _), df in zip(frames.items(), collected, strict=True):
        write_deltalake(str(root / "gold" / name), df.to_arrow(), mode="overwrite")
        rows[name] = df.height
    return rows


def run(root: Path, landing: Path, times: LayerTimes) -> dict[str, Any]:
    """Bronze, Silver, Gold, timed per layer."""
    root.mkdir(parents=True, exist_ok=True)
    with times.layer("bronze"):
        bronze_rows = bronze(root, landing)
    with times.layer("silver"):
        silver = {t: silver_table(root, t) for t in TABLES}
    with times.layer("gold"):
        gold_rows = gold(root)
    return {
        "counters": {"bronze": bronze_rows, "silver": silver, "gold": gold_rows},
        "engine": f"polars {pl.__version__}",
        "format": "delta",
    }
