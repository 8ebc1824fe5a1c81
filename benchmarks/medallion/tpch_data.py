"""TPC-H data for the medallion benchmark: generate with ``tpchgen-cli``, land as raw drops.

* :func:`generate` runs ``tpchgen-cli`` (PyPI, pinned 4.0.0) once per scale factor into a
  cache of Parquet files (typed, fast to re-read).
* :func:`land_full` writes the full drops: pipe-delimited CSV with a header for ``region``,
  ``nation``, ``customer`` and ``orders`` (TPC-H text holds commas but no pipes, so no value
  needs quoting), JSON lines with every value as a string for ``lineitem``; each record gets
  ``updated_at`` (its export time). Large tables are split into parts of about 1M rows.
* :func:`land_incremental` writes a second, small drop (about 1% of the rows): changed
  customers (account balance), changed orders (order date + priority) and line items
  (quantity), new orders with their line items, and three invalid line items (quantity 0)
  that the Silver rule ``quantity_in_range`` must send to quarantine.

Everything is deterministic (rows are chosen by key modulo), so every system lands the same
bytes and must produce the same Gold tables.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl

TABLES = ("region", "nation", "customer", "orders", "lineitem")
CSV_TABLES = ("region", "nation", "customer", "orders")
JSON_TABLES = ("lineitem",)
KEYS = {
    "region": ["r_regionkey"],
    "nation": ["n_nationkey"],
    "customer": ["c_custkey"],
    "orders": ["o_orderkey"],
    "lineitem": ["l_orderkey", "l_linenumber"],
}
FULL_EXPORT = "2026-01-01 00:00:00"
INCREMENTAL_EXPORT = "2026-01-02 00:00:00"
PART_ROWS = 1_000_000
# A CSV file is parsed on the driver and sent in one Spark Connect message (at most 128 MB):
# 250k rows of orders are about 45 MB of Arrow; the CSV sources commit one file at a time
CSV_PART_ROWS = 250_000
TPCHGEN_VERSION = "4.0.0"


def tpchgen_binary() -> str:
    """The ``tpchgen-cli`` next to this interpreter (the venv), else on PATH."""
    local = Path(sys.executable).parent / "tpchgen-cli"
    if local.is_file():
        return str(local)
    found = shutil.which("tpchgen-cli")
    if found is None:
        raise SystemExit(f"tpchgen-cli not found: pip install tpchgen-cli=={TPCHGEN_VERSION}")
    return found


def generate(sf: float, cache: Path) -> Path:
    """Parquet files of the five tables at scale factor ``sf`` (generated once, then reused)."""
    out = cache / f"sf{sf:g}"
    done = out / "_DONE"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    cmd = [tpchgen_binary(), "parquet", "-s", f"{sf:g}", "-o", str(out), "--overwrite", "-q"]
    for table in TABLES:
        cmd += ["-T", table]
    subprocess.run(cmd, check=True)
    done.write_text(TPCHGEN_VERSION + "\n")
    return out


def read(parquet_dir: Path, table: str) -> pl.LazyFrame:
    """A lazy scan: SF10 lineitem (60M rows) does not fit in memory as text at once."""
    return pl.scan_parquet(parquet_dir / f"{table}.parquet")


def as_text(df: pl.LazyFrame, updated_at: str) -> pl.LazyFrame:
    """Every value as text (as an export writes it) plus ``updated_at``."""
    return df.select(pl.all().cast(pl.String)).with_columns(updated_at=pl.lit(updated_at))


def write_drop(df: pl.LazyFrame, table: str, folder: Path, stem: str) -> int:
    """Write one table's drop (CSV or JSON lines), split into parts of ``PART_ROWS`` (CSV: ``CSV_PART_ROWS``) that are
    collected one at a time; returns the rows written."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = int(df.select(pl.len()).collect().item())
    size = CSV_PART_ROWS if table in CSV_TABLES else PART_ROWS
    parts = max(1, -(-rows // size))
    for i in range(parts):
        chunk = df.slice(i * size, size).collect()
        if table in CSV_TABLES:
            chunk.write_csv(folder / f"{stem}-{i:04d}.csv", separator="|", quote_style="necessary")
        else:
            chunk.write_ndjson(folder / f"{stem}-{i:04d}.jsonl")
    return rows


def land_full(parquet_dir: Path, landing: Path) -> dict[str, int]:
    """The full drops under ``landing/<table>/``; returns rows per table."""
    return {
        table: write_drop(
            as_text(read(parquet_dir, table), FULL_EXPORT), table, landing / table, table
        )
        for table in TABLES
    }


def incremental_frames(parquet_dir: Path) -> dict[str, pl.LazyFrame]:
    """The incremental drop (typed): changed and new rows, about 1% of each large table."""
    customer = read(parquet_dir, "customer")
    orders = read(parquet_dir, "orders")
    lineitem = read(parquet_dir, "lineitem")
    changed_customers = customer.filter(pl.col("c_custkey") % 100 == 7).with_columns(
        c_acctbal=(pl.col("c_acctbal").cast(pl.Float64) * 0.5).round(2).cast(pl.Decimal(15, 2))
    )
    changed_orders = orders.filter(pl.col("o_orderkey") % 200 == 3).with_columns(
        o_orderdate=pl.col("o_orderdate") + pl.duration(days=1),
        o_orderpriority=pl.lit("1-URGENT"),
    )
    max_key = int(orders.select(pl.col("o_orderkey").max()).collect().item())
    copied = orders.filter(pl.col("o_orderkey") % 200 == 5)
    new_keys = copied.select(
        "o_orderkey", new_key=pl.int_range(1, pl.len() + 1, dtype=pl.Int64) + max_key
    ).collect()
    new_orders = (
        copied.join(new_keys.lazy(), on="o_orderkey", maintain_order="left")
        .with_columns(o_orderkey=pl.col("new_key"))
        .drop("new_key")
    )
    changed_lines = lineitem.filter(pl.col("l_orderkey") % 200 == 11).with_columns(
        l_quantity=pl.min_horizontal(pl.col("l_quantity").cast(pl.Int64) + 1, pl.lit(50)).cast(
            pl.Decimal(15, 2)
        )
    )
    new_lines = (
        lineitem.join(
            new_keys.lazy(), left_on="l_orderkey", right_on="o_orderkey", maintain_order="left"
        )
        .with_columns(l_orderkey=pl.col("new_key"))
        .drop("new_key")
        .collect()
        .sort("l_orderkey", "l_linenumber")
    )
    invalid = new_lines.head(3).with_columns(
        l_linenumber=pl.lit(8, dtype=pl.Int32), l_quantity=pl.lit(0).cast(pl.Decimal(15, 2))
    )
    return {
        "customer": changed_customers,
        "orders": pl.concat([changed_orders, new_orders]),
        "lineitem": pl.concat([changed_lines.collect(), new_lines, invalid]).lazy(),
    }


def land_incremental(parquet_dir: Path, landing: Path) -> dict[str, int]:
    """The incremental drops under ``landing/<table>/`` (``<table>-incr-*``); rows per table."""
    rows = {}
    for table, df in incremental_frames(parquet_dir).items():
        rows[table] = write_drop(
            as_text(df, INCREMENTAL_EXPORT), table, landing / table, f"{table}-incr"
        )
    return rows
