"""Bronze -> Silver: lakehouse validation + MERGE vs the same checks in plain Spark SQL.

Writes a deterministic orders-like Bronze Delta table (string columns, as Bronze holds them)
with a known small fraction of defects, then on one embedded Sail session, per round:

* ours total: ``lakehouse.pipelines.silver.refine.refine_table`` on a temporary lakehouse project whose
  Silver table has 10 rules (conform, SQL-compiled rules, great-expectations validation with
  Data Docs, quarantine, dedupe, MERGE, ``meta.dq_results`` / ``meta.silver_runs``);
* ours split, on the conformed DataFrame refine_table validates (Bronze conformed once and
  staged as Parquet, as refine_table stages it): ``evaluate_rules`` (the SQL path, one
  projection + one aggregate) vs ``validate_with_gx`` without and with Data Docs;
* plain: the 10 checks hand-written as one Spark SQL query (failures per rule) over the
  data conformed in SQL, then a hand-written ``MERGE INTO`` of the valid, deduplicated rows
  into a fresh Delta table.

One warm-up round, then ``--repeat`` measured rounds, each on fresh Silver targets. Every
round checks that the per-rule failure counts of ours (SQL path and refine_table), GX and
plain are identical and that both Silver tables hold the same rows. Prints markdown tables,
writes ``benchmarks/results/silver.json`` and appends one line to
``benchmarks/results/history.jsonl``.

    .venv/bin/python benchmarks/silver.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import git_commit, machine, timed

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
SILVER = "bench.silver.orders"
BRONZE = "bench.bronze.orders"
BRONZE_COLUMNS = (
    "order_id",
    "customer_id",
    "order_ts",
    "product",
    "quantity",
    "amount",
    "status",
    "shipped_at",
    "seq",
)
SILVER_COLUMNS: list[tuple[str, str, bool]] = [  # name, type, nullable
    ("order_id", "string", False),
    ("customer_id", "string", True),
    ("order_ts", "timestamp", True),
    ("product", "string", True),
    ("quantity", "int", True),
    ("amount", "double", True),
    ("status", "string", True),
    ("shipped_at", "timestamp", True),
    ("seq", "int", False),
]
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
PRODUCTS = ("widget", "gadget", "doohickey", "gizmo", "sprocket", "thingamajig", "whatsit")
BASE_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z

BUNDLE = """
bundle: {name: silver_bench}
include: [conf/*.yml]
variables:
  data_root: {default: ./data}
  bronze_root: {default: ./bronze}
targets: {local: {default: true}}
"""
CONF = """
catalog:
  name: bench
  storage_root: ${{var.data_root}}/tables
  schemas:
    bronze:
      tables:
        orders:
          layer: bronze
          location: ${{var.bronze_root}}/orders
          columns:
{bronze_columns}
    silver:
      tables:
        orders:
          layer: silver
          keys: [order_id]
          columns:
{silver_columns}
silver:
  bench.silver.orders:
    source: bench.bronze.orders
    keys: [order_id]
    sequence_by: seq
    rules:
      - name: customer_present
        expectation: {{type: expect_column_values_to_not_be_null, kwargs: {{column: customer_id}}}}
        action: drop
      - name: amount_in_range
        expectation: {{type: expect_column_values_to_be_between, kwargs: {{column: amount, min_value: 0, max_value: 10000}}}}
        action: drop
      - name: status_known
        expectation: {{type: expect_column_values_to_be_in_set, kwargs: {{column: status, value_set: [{statuses}]}}}}
        action: warn
      - name: customer_id_format
        expectation: {{type: expect_column_values_to_match_regex, kwargs: {{column: customer_id, regex: "^C[0-9]{{6}}$"}}}}
        action: warn
      - name: order_id_unique
        expectation: {{type: expect_column_values_to_be_unique, kwargs: {{column: order_id}}}}
        action: warn
      - name: order_version_unique
        expectation: {{type: expect_compound_columns_to_be_unique, kwargs: {{column_list: [order_id, seq]}}}}
        action: warn
      - name: row_count_sane
        expectation: {{type: expect_table_row_count_to_be_between, kwargs: {{min_value: 1, max_value: {max_rows}}}}}
        action: warn
      - name: shipped_after_order
        expectation: {{type: expect_column_pair_values_a_to_be_greater_than_b, kwargs: {{column_A: shipped_at, column_B: order_ts}}}}
        action: warn
      - name: quantity_positive
        sql: "quantity >= 1"
        action: drop
      - name: recent_order
        sql: "year(order_ts) >= 2020"
        action: warn
"""

# Row ``id`` of Bronze describes logical order ``k`` at version ``seq``; every other value is
# a hash of (k, seq), so a replayed row is an exact copy. Defects, by id or k modulo a prime:
# a newer version of the previous order (id % 997 = 1, seq 2), an exact replay (id % 4999 = 2),
# no customer (k % 211 = 5), a malformed customer id (k % 1009 = 6), quantity 0
# (k % 1201 = 7), a non-numeric amount (k % 1499 = 3, rejected by conform), a negative amount
# (k % 331 = 4), an amount too large (k % 1553 = 8), an unknown status (k % 401 = 11),
# shipped before ordered (k % 1301 = 12), an order from 2019 (k % 2003 = 13).
GENERATE = """
WITH keyed AS (
  SELECT id,
         CASE WHEN id % 997 = 1 THEN id - 1 WHEN id % 4999 = 2 THEN id - 2 ELSE id END AS k,
         CASE WHEN id % 997 = 1 THEN 2 ELSE 1 END AS seq
  FROM range({rows})
), valued AS (
  SELECT id, k, seq,
         CASE WHEN k % 2003 = 13 THEN 1561896000 ELSE {base} + k * 7 + pmod(hash(k, 9), 7) END AS ts,
         pmod(hash(k, 5), 3) AS ship_kind
  FROM keyed
)
SELECT
  'O' || lpad(cast(k AS string), 9, '0') AS order_id,
  CASE WHEN k % 211 = 5 THEN NULL
       WHEN k % 1009 = 6 THEN 'c' || lpad(cast(pmod(hash(k, 1), 100000) AS string), 6, '0')
       ELSE 'C' || lpad(cast(pmod(hash(k, 1), 100000) AS string), 6, '0') END AS customer_id,
  date_format(timestamp_seconds(ts), 'yyyy-MM-dd HH:mm:ss') AS order_ts,
  element_at(array({products}), cast(pmod(hash(k, 2), {n_products}) + 1 AS int)) AS product,
  CASE WHEN k % 1201 = 7 THEN '0' ELSE cast(pmod(hash(k, 3), 19) + 1 AS string) END AS quantity,
  CASE WHEN k % 1499 = 3 THEN 'n/a'
       WHEN k % 331 = 4 THEN '-' || cast(pmod(hash(k, 4), 1000) + 1 AS string)
       WHEN k % 1553 = 8 THEN '25000.00'
       ELSE cast(cast((pmod(hash(k, 4), 99900) + 100) / 100 AS decimal(10, 2)) AS string)
  END AS amount,
  CASE WHEN k % 401 = 11 THEN 'lost'
       ELSE element_at(array({statuses}), cast(pmod(hash(k, seq, 6), {n_statuses}) + 1 AS int))
  END AS status,
  CASE WHEN ship_kind = 0 THEN NULL
       WHEN k % 1301 = 12 THEN date_format(timestamp_seconds(ts - 3600), 'yyyy-MM-dd HH:mm:ss')
       ELSE date_format(timestamp_seconds(ts + 86400 + pmod(hash(k, 7), 86400)), 'yyyy-MM-dd HH:mm:ss')
  END AS shipped_at,
  cast(seq AS string) AS seq,
  'generated' AS _source,
  'generated/part-' || lpad(cast(id % 10 AS string), 2, '0') AS _source_file,
  'generated/' || cast(id % 10 AS string) AS _batch_id,
  TIMESTAMP '2025-01-01 00:00:00' AS _ingested_at,
  'bench-bronze' AS _run_id
FROM valued
"""

# ----------------------------------------------------------------- the plain Spark SQL peer

# Bronze -> typed, as conform_rows does it: trim, '' -> NULL, try_cast; rows whose value does
# not fit its type, or without key / sequence, are left out (ours quarantines them).
PLAIN_CONFORMED = """
WITH raw AS (
  SELECT nullif(trim(order_id), '') AS order_id, nullif(trim(customer_id), '') AS customer_id,
         nullif(trim(order_ts), '') AS order_ts_raw, nullif(trim(product), '') AS product,
         nullif(trim(quantity), '') AS quantity_raw, nullif(trim(amount), '') AS amount_raw,
         nullif(trim(status), '') AS status, nullif(trim(shipped_at), '') AS shipped_at_raw,
         nullif(trim(seq), '') AS seq_raw, _corrupt
  FROM delta.`{bronze}`
), typed AS (
  SELECT *, try_cast(order_ts_raw AS TIMESTAMP) AS order_ts,
         try_cast(quantity_raw AS INT) AS quantity, try_cast(amount_raw AS DOUBLE) AS amount,
         try_cast(shipped_at_raw AS TIMESTAMP) AS shipped_at, try_cast(seq_raw AS INT) AS seq
  FROM raw
)
SELECT order_id, customer_id, order_ts, product, quantity, amount, status, shipped_at, seq
FROM typed
WHERE _corrupt IS NULL AND order_id IS NOT NULL AND seq IS NOT NULL
  AND NOT (order_ts_raw IS NOT NULL AND order_ts IS NULL)
  AND NOT (quantity_raw IS NOT NULL AND quantity IS NULL)
  AND NOT (amount_raw IS NOT NULL AND amount IS NULL)
  AND NOT (shipped_at_raw IS NOT NULL AND shipped_at IS NULL)
"""
# The 10 rules, failures per rule. NULL handling as great-expectations counts it: between,
# in_set, regex and unique skip NULLs; a pair with one NULL side passes; SQL rules fail NULL.
PLAIN_CHECKS = """
SELECT
  count(1) AS n,
  count(CASE WHEN customer_id IS NULL THEN 1 END) AS customer_present,
  count(CASE WHEN amount < 0 OR amount > 10000 THEN 1 END) AS amount_in_range,
  count(CASE WHEN status NOT IN ({statuses}) THEN 1 END) AS status_known,
  count(CASE WHEN NOT customer_id RLIKE '^C[0-9]{{6}}$' THEN 1 END) AS customer_id_format,
  count(CASE WHEN n_order > 1 THEN 1 END) AS order_id_unique,
  count(CASE WHEN n_version > 1 THEN 1 END) AS order_version_unique,
  count(CASE WHEN shipped_at <= order_ts THEN 1 END) AS shipped_after_order,
  count(CASE WHEN NOT coalesce(quantity >= 1, FALSE) THEN 1 END) AS quantity_positive,
  count(CASE WHEN NOT coalesce(year(order_ts) >= 2020, FALSE) THEN 1 END) AS recent_order
FROM (
  SELECT *, count(1) OVER (PARTITION BY order_id) AS n_order,
         count(1) OVER (PARTITION BY order_id, seq) AS n_version
  FROM {view}
)
"""
# Rows breaking a drop rule are left out; the latest version (highest seq) of each order wins.
PLAIN_SOURCE = """
SELECT {columns} FROM (
  SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY seq DESC) AS rn
  FROM {view}
  WHERE customer_id IS NOT NULL
    AND NOT coalesce(amount < 0 OR amount > 10000, FALSE)
    AND coalesce(quantity >= 1, FALSE)
) WHERE rn = 1
"""
PLAIN_MERGE = """
MERGE INTO {target} t USING {source} s ON t.order_id = s.order_id
WHEN MATCHED AND s.seq >= t.seq THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *
"""


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def write_project(root: Path, rows: int) -> None:
    """A lakehouse bundle: the Bronze table (fixed location), the Silver table and its rules."""
    bronze = [*BRONZE_COLUMNS]
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE)
    (root / "conf" / "bench.yml").write_text(
        CONF.format(
            bronze_columns="\n".join(f"            - {{name: {c}, type: string}}" for c in bronze),
            silver_columns="\n".join(
                f"            - {{name: {n}, type: {t}"
                + ("" if nullable else ", nullable: false")
                + "}"
                for n, t, nullable in SILVER_COLUMNS
            ),
            statuses=", ".join(STATUSES),
            max_rows=2 * rows,
        )
    )


# ----------------------------------------------------------------- measurements


@dataclass
class Round:
    """One round's seconds, per-rule failure counts and Silver row counts."""

    seconds: dict[str, float]
    failed: dict[str, dict[str, int]]  # path -> rule -> failing rows
    silver_rows: dict[str, int]


class Bench:
    """One Sail session, the Bronze table and the temporary project."""

    def __init__(self, work: Path, rows: int) -> None:
        from lakehouse.config.bundle_spec import EngineSpec
        from lakehouse.engine import build_session

        self.work = work
        self.rows = rows
        self.project_root = work / "project"
        self.bronze_root = work / "bronze"
        write_project(self.project_root, rows)
        self.session = build_session(EngineSpec(kind="sail"), warehouse_dir=work / "warehouse")
        self.spark = self.session.spark
        self.rounds = 0
        self.rules: list[Any] = []
        self.last_summary: Any = None

    def context(self, data_root: Path) -> Any:
        from lakehouse.bundle.context import RunReport, TaskContext
        from lakehouse.config import load_project
        from lakehouse.io.delta import DeltaStore

        project = load_project(
            self.project_root,
            var_overrides={"data_root": str(data_root), "bronze_root": str(self.bronze_root)},
        )
        tables = DeltaStore(self.spark, project, "sail")
        tables.register_all()
        report = RunReport(job="bench", run_id=data_root.name, target="local", engine="sail")
        return TaskContext(
            spark=self.spark, project=project, tables=tables, report=report, task_key="refine"
        )

    def fresh(self) -> tuple[Path, Any]:
        self.rounds += 1
        data_root = self.work / "runs" / f"r{self.rounds}"
        return data_root, self.context(data_root)

    def write_bronze(self) -> int:
        """Generate the Bronze rows and append them to the Bronze Delta table; its row count."""
        _, ctx = self.fresh()
        query = GENERATE.format(
            rows=self.rows,
            base=BASE_EPOCH,
            products=_sql_list(PRODUCTS),
            n_products=len(PRODUCTS),
            statuses=_sql_list(STATUSES),
            n_statuses=len(STATUSES),
        )
        ctx.tables.append(BRONZE, self.spark.sql(query))
        self.rules = list(ctx.project.silver[SILVER].rules)
        return int(ctx.tables.row_count(BRONZE))

    @property
    def bronze_location(self) -> str:
        return str(self.bronze_root / "orders")

    def ours_total(self) -> tuple[float, dict[str, int], int, Any, str]:
        """``refine_table`` on fresh Silver tables: seconds, failures per rule, Silver rows,
        the summary and the Silver table's location."""
        from lakehouse.pipelines.silver.refine import refine_table

        _, ctx = self.fresh()
        started = time.perf_counter()
        summary = refine_table(ctx, SILVER)
        seconds = time.perf_counter() - started
        failed = {r.rule: r.failed for r in summary.rules}
        location = ctx.project.table(SILVER).location
        return seconds, failed, ctx.tables.row_count(SILVER), summary, location

    def conformed(self, ctx: Any, staging: Path) -> Any:
        """The DataFrame refine_table validates: Bronze conformed once and staged as Parquet
        under ``staging`` (as refine_table does), its valid non-delete rows."""
        from pyspark.sql import functions as F

        from lakehouse.transforms.conform import (
            apply_transforms,
            checked_rows,
            load_transforms,
            split_checked,
        )
        from lakehouse.transforms.scd import DELETE_FLAG

        spec = ctx.project.silver[SILVER]
        checked = checked_rows(ctx.tables.read(spec.source), ctx.project.table(SILVER), spec)
        checked.write.mode("overwrite").parquet(str(staging))
        staged = self.spark.read.schema(checked.schema).parquet(str(staging))
        valid = apply_transforms(split_checked(staged).valid, load_transforms(spec))
        return valid.where(~F.col(DELETE_FLAG)).drop(DELETE_FLAG, "_source_file", "_ingested_at")

    def ours_split(self) -> tuple[dict[str, float], dict[str, dict[str, int]]]:
        """evaluate_rules vs validate_with_gx (no docs, docs) on one conformed DataFrame."""
        from lakehouse.transforms.quality import evaluate_rules, validate_with_gx

        data_root, ctx = self.fresh()
        rules = ctx.project.silver[SILVER].rules
        df = self.conformed(ctx, data_root / "staged")
        seconds: dict[str, float] = {}
        failed: dict[str, dict[str, int]] = {}

        started = time.perf_counter()
        _, sql_results = evaluate_rules(df, rules)  # collects the one aggregate
        seconds["sql_path"] = time.perf_counter() - started
        failed["sql_path"] = {r.rule: r.failed for r in sql_results}

        variants: list[tuple[str, Path | None]] = [("gx", None), ("gx_docs", data_root / "docs")]
        if self.rounds % 2:  # alternate the order: the first GX run of a round is a bit slower
            variants.reverse()
        for label, docs in variants:
            started = time.perf_counter()
            results = validate_with_gx(
                df, rules, docs_dir=docs, suite_name="orders", run_name=f"{data_root.name}-{label}"
            )
            seconds[label] = time.perf_counter() - started
            failed[label] = {r.rule: r.failed for r in results}
        if not (data_root / "docs" / "index.html").is_file():
            raise AssertionError("validate_with_gx wrote no Data Docs")
        return seconds, failed

    def plain(self) -> tuple[dict[str, float], dict[str, int], int, str]:
        """Hand-written checks query + MERGE INTO a fresh Delta table."""
        data_root, _ = self.fresh()
        target_path = data_root / "plain_silver"
        target = f"plain_silver_r{self.rounds}"
        view, source = f"plain_conformed_r{self.rounds}", f"plain_source_r{self.rounds}"
        columns = ", ".join(n for n, _, _ in SILVER_COLUMNS)
        ddl = ", ".join(
            f"{n} {t.upper()}{'' if nullable else ' NOT NULL'}" for n, t, nullable in SILVER_COLUMNS
        )
        self.spark.sql(f"CREATE TABLE {target} ({ddl}) USING delta LOCATION '{target_path}'")
        seconds: dict[str, float] = {}

        started = time.perf_counter()
        self.spark.sql(PLAIN_CONFORMED.format(bronze=self.bronze_location)).createOrReplaceTempView(
            view
        )
        row = self.spark.sql(PLAIN_CHECKS.format(statuses=_sql_list(STATUSES), view=view)).first()
        assert row is not None
        seconds["checks"] = time.perf_counter() - started
        counts = row.asDict()
        rows = int(counts.pop("n"))
        counts["row_count_sane"] = int(not 1 <= rows <= 2 * self.rows)

        started = time.perf_counter()
        self.spark.sql(PLAIN_SOURCE.format(columns=columns, view=view)).createOrReplaceTempView(
            source
        )
        self.spark.sql(PLAIN_MERGE.format(target=target, source=source)).collect()
        seconds["merge"] = time.perf_counter() - started
        seconds["total"] = seconds["checks"] + seconds["merge"]
        for name in (view, source):
            self.spark.catalog.dropTempView(name)
        silver_rows = int(self.spark.sql(f"SELECT count(1) FROM {target}").collect()[0][0])
        return seconds, {k: int(v) for k, v in counts.items()}, silver_rows, str(target_path)

    def checksum(self, location: str) -> tuple[Any, ...]:
        """Aggregates of a Silver table: ours and plain must hold the same rows."""
        row = self.spark.sql(
            "SELECT count(1), count(DISTINCT order_id), sum(seq), sum(quantity), "
            "round(sum(amount), 2), count(DISTINCT status), count(customer_id), "
            f"min(order_ts), max(shipped_at) FROM delta.`{location}`"
        ).first()
        assert row is not None
        return tuple(row)

    def run_round(self) -> Round:
        ours_s, ours_failed, ours_rows, summary, ours_location = self.ours_total()
        split_s, split_failed = self.ours_split()
        plain_s, plain_failed, plain_rows, plain_location = self.plain()
        failed = {"refine_table": ours_failed, **split_failed, "plain": plain_failed}
        reference = failed["sql_path"]
        differ = {path: f for path, f in failed.items() if f != reference}
        if differ:
            raise AssertionError(
                f"per-rule failures differ from the SQL path {reference}: {differ}"
            )
        if ours_rows != plain_rows:
            raise AssertionError(f"Silver rows: ours {ours_rows}, plain {plain_rows}")
        if summary.rows_kept + summary.rows_quarantined != summary.rows_read:
            raise AssertionError(f"row accounting: {summary}")
        ours_sum, plain_sum = self.checksum(ours_location), self.checksum(plain_location)
        if ours_sum != plain_sum:
            raise AssertionError(f"Silver tables differ: ours {ours_sum}, plain {plain_sum}")
        seconds = {
            "ours_total": ours_s,
            **split_s,
            "plain_checks": plain_s["checks"],
            "plain_merge": plain_s["merge"],
            "plain_total": plain_s["total"],
        }
        self.last_summary = summary
        return Round(seconds, failed, {"ours": ours_rows, "plain": plain_rows})

    def stop(self) -> None:
        self.session.stop()


# ----------------------------------------------------------------- report

LABELS: dict[str, str] = {
    "ours_total": "ours: refine_table (conform + rules + GX + Data Docs + quarantine + MERGE)",
    "sql_path": "ours: evaluate_rules (SQL path, one aggregate)",
    "gx": "ours: validate_with_gx, no Data Docs",
    "gx_docs": "ours: validate_with_gx + Data Docs",
    "plain_checks": "plain: checks query (10 rules, one SELECT)",
    "plain_merge": "plain: MERGE INTO of valid deduplicated rows",
    "plain_total": "plain: checks + MERGE",
}
RATIOS: dict[str, tuple[str, str, str]] = {
    "gx": ("gx", "sql_path", "GX / SQL path"),
    "gx_docs": ("gx_docs", "sql_path", "GX+docs / SQL path"),
    "ours_total": ("ours_total", "plain_total", "ours / plain"),
    "sql_path": ("sql_path", "plain_checks", "SQL path / plain checks"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.rows < 10_000 or args.repeat < 1:
        parser.error("need --rows >= 10000 (every defect must occur) and --repeat >= 1")
    os.environ.setdefault("RUST_LOG", "error")
    wall = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="lakehouse-silver-bench-") as tmp:
        bench = Bench(Path(tmp), args.rows)
        try:
            bronze_rows = timed(f"write Bronze, {args.rows:,} rows", bench.write_bronze)
            if bronze_rows != args.rows:
                raise AssertionError(f"Bronze holds {bronze_rows} rows, expected {args.rows}")
            rounds: list[Round] = []
            for round_no in range(args.repeat + 1):  # round 0 is the warm-up
                result = bench.run_round()
                label = "warm-up" if round_no == 0 else f"round {round_no}"
                print(
                    f"  {label}: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items()),
                    file=sys.stderr,
                    flush=True,
                )
                if round_no:
                    rounds.append(result)
            summary = bench.last_summary
        finally:
            bench.stop()

    usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = {k: [r.seconds[k] for r in rounds] for k in LABELS}
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    stats = {
        k: {
            "median_s": medians[k],
            "min_s": min(v),
            "rows_per_s": args.rows / medians[k],
        }
        for k, v in seconds.items()
    }
    ratios = {label: medians[a] / medians[b] for a, b, label in RATIOS.values()}
    failed = rounds[-1].failed["sql_path"]
    rules = _rule_table(bench.rules, failed)
    total_s = time.perf_counter() - wall
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    record = {
        "benchmark": "silver",
        "when": when,
        "commit": git_commit(),
        "machine": machine(),
        "engine": "sail",
        "rows": args.rows,
        "repeat": args.repeat,
        "summary": stats,
        "ratios": ratios,
        "seconds": seconds,
        "rules": rules,
        "silver_rows": rounds[-1].silver_rows["ours"],
        "refine": {
            "rows_read": summary.rows_read,
            "rows_kept": summary.rows_kept,
            "rows_quarantined": summary.rows_quarantined,
            "duplicates_collapsed": summary.duplicates_collapsed,
            "rows_written": summary.rows_written,
        },
        "peak_rss_mb": usage_self / 1024,
        "total_s": total_s,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "silver.json").write_text(json.dumps(record, indent=2) + "\n")
    history = {
        "benchmark": "silver",
        "when": when,
        "commit": record["commit"],
        "rows": args.rows,
        "cpus": os.cpu_count(),
        "medians": {k: round(v, 3) for k, v in medians.items()},
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
        "peak_rss_mb": round(usage_self / 1024),
    }
    with (RESULTS / "history.jsonl").open("a") as fh:
        fh.write(json.dumps(history) + "\n")

    print(
        f"\nBronze -> Silver on embedded Sail, {args.rows:,} rows, 10 rules, "
        f"median of {args.repeat} (min in brackets), {os.cpu_count()} CPUs\n"
    )
    print("| measurement | seconds | rows/s | ratio |")
    print("|---|---|---|---|")
    for key, label in LABELS.items():
        s = stats[key]
        ratio = ""
        if key in RATIOS:
            _, _, name = RATIOS[key]
            ratio = f"{name} {ratios[name]:.1f}x"
        print(
            f"| {label} | {s['median_s']:.2f} ({s['min_s']:.2f}) | {s['rows_per_s']:,.0f} "
            f"| {ratio} |"
        )
    print(
        f"\nrefine_table: read {summary.rows_read:,}, kept {summary.rows_kept:,}, quarantined "
        f"{summary.rows_quarantined:,}, duplicates collapsed {summary.duplicates_collapsed:,}; "
        f"Silver rows {record['silver_rows']:,} (ours = plain)\n"
    )
    print("| rule | check | action | failing rows (ours SQL = GX = plain) |")
    print("|---|---|---|---|")
    for r in rules:
        print(f"| {r['rule']} | {r['check']} | {r['action']} | {r['failed']:,} |")
    print(
        f"\npeak RSS: {usage_self / 1024:,.0f} MB (this process, embedded engine included). "
        f"total {total_s:.0f}s. Results: {RESULTS / 'silver.json'}"
    )


def _rule_table(rules: list[Any], failed: dict[str, int]) -> list[dict[str, Any]]:
    """Rule, check, action and failing rows, in config order."""
    return [
        {
            "rule": r.name,
            "check": r.expectation_type if r.sql is None else f"sql: {r.sql}",
            "action": r.action,
            "failed": failed[r.name],
        }
        for r in rules
    ]


if __name__ == "__main__":
    main()
