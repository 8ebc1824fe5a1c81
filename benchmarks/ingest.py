"""Files -> Bronze throughput: lakehouse ingest vs a plain ``spark.read`` + Delta write.

Generates an orders-like data set deterministically (CSV with a header and JSON lines, split
across ``--files`` files) in a temporary directory, then on one embedded Sail session, per
format and per round:

* ours: ``lakehouse.pipelines.bronze.ingest.ingest_file_source`` on a temporary lakehouse project whose
  Bronze table has typed columns (one ``files`` source per format, one commit);
* plain: ``spark.read.schema(...).csv/json(dir).write.format("delta").save(path)``.

One warm-up round, then ``--repeat`` measured rounds, each on fresh Delta targets; Bronze and
plain row counts are checked against ``--rows``. Prints a markdown table, writes
``benchmarks/results/ingest.json`` and appends one line to
``benchmarks/results/history.jsonl``.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--files 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import git_commit, machine, timed

from lakehouse.core.errors import one_line

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
FORMATS = ("csv", "jsonl")
COLUMNS: list[tuple[str, str]] = [
    ("order_id", "string"),
    ("customer_id", "string"),
    ("order_ts", "timestamp"),
    ("product", "string"),
    ("quantity", "int"),
    ("amount", "double"),
    ("status", "string"),
]
PRODUCTS = ("widget", "gadget", "doohickey", "gizmo", "sprocket", "thingamajig", "whatsit")
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
BASE_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z

BUNDLE = """
bundle: {name: ingest_bench}
include: [conf/*.yml]
variables:
  data_root: {default: ./data}
  landing: {default: ./landing}
targets: {local: {default: true}}
allowed_external_paths: ["${var.landing}"]
"""
CONF = """
catalog:
  name: bench
  storage_root: ${{var.data_root}}/tables
  schemas:
    bronze:
      tables:
{tables}
sources:
{sources}
"""
TABLE = """        orders_{fmt}:
          layer: bronze
          columns:
{columns}"""
SOURCE = """  orders_{fmt}:
    kind: files
    path: ${{var.landing}}/{fmt}
    glob: "*.{fmt}"
    format: {fmt}
    target: bench.bronze.orders_{fmt}
    files_per_commit: {per_commit}"""


# ---------------------------------------------------------------- data


def generate(landing: Path, rows: int, files: int, seed: int = 42) -> dict[str, float]:
    """Write ``rows`` orders as CSV and as JSON lines under landing/{csv,jsonl}; MB per format."""
    rng = random.Random(seed)
    for fmt in FORMATS:
        (landing / fmt).mkdir(parents=True, exist_ok=True)
    per_file = -(-rows // files)
    day_cache: dict[int, str] = {}
    for index in range(files):
        start, stop = index * per_file, min(rows, (index + 1) * per_file)
        csv_lines = ["order_id,customer_id,order_ts,product,quantity,amount,status\n"]
        json_lines = []
        for i in range(start, stop):
            seconds = BASE_EPOCH + i * 7 + rng.randrange(7)
            day = seconds // 86_400
            if day not in day_cache:
                day_cache[day] = datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")
            rest = seconds % 86_400
            ts = f"{day_cache[day]}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
            order_id = f"O{i:09d}"
            customer = f"C{rng.randrange(100_000):06d}"
            product = PRODUCTS[rng.randrange(len(PRODUCTS))]
            quantity = rng.randrange(1, 20)
            amount = f"{rng.randrange(100, 100_000) / 100:.2f}"
            status = STATUSES[rng.randrange(len(STATUSES))]
            csv_lines.append(f"{order_id},{customer},{ts},{product},{quantity},{amount},{status}\n")
            json_lines.append(
                f'{{"order_id":"{order_id}","customer_id":"{customer}","order_ts":"{ts}",'
                f'"product":"{product}","quantity":{quantity},"amount":{amount},'
                f'"status":"{status}"}}\n'
            )
        name = f"orders_{index:04d}"
        (landing / "csv" / f"{name}.csv").write_text("".join(csv_lines))
        (landing / "jsonl" / f"{name}.jsonl").write_text("".join(json_lines))
    return {fmt: sum(p.stat().st_size for p in (landing / fmt).iterdir()) / 1e6 for fmt in FORMATS}


def write_project(root: Path, files: int) -> None:
    """A lakehouse bundle with one typed Bronze table and one ``files`` source per format."""
    columns = "\n".join(f"            - {{name: {n}, type: {t}}}" for n, t in COLUMNS)
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE)
    (root / "conf" / "bench.yml").write_text(
        CONF.format(
            tables="\n".join(TABLE.format(fmt=f, columns=columns) for f in FORMATS),
            sources="\n".join(
                SOURCE.format(fmt=f, per_commit=max(files, 100) + 1) for f in FORMATS
            ),
        )
    )


# ---------------------------------------------------------------- the two paths


class Bench:
    """One Sail session, the generated files and the temporary project."""

    def __init__(self, work: Path, rows: int, files: int) -> None:
        from lakehouse.config.bundle_spec import EngineSpec
        from lakehouse.engine import build_session

        self.work = work
        self.rows = rows
        self.files = files
        self.landing = work / "landing"
        self.project_root = work / "project"
        write_project(self.project_root, files)
        self.session = build_session(EngineSpec(kind="sail"), warehouse_dir=work / "warehouse")
        self.spark = self.session.spark
        self.rounds = 0
        self.last: dict[tuple[str, str], str] = {}  # (format, path) -> latest Delta location

    def _context(self, data_root: Path, landing: Path) -> Any:
        from lakehouse.bundle.context import RunReport, TaskContext
        from lakehouse.config import load_project
        from lakehouse.io.delta import DeltaStore

        project = load_project(
            self.project_root,
            var_overrides={"data_root": str(data_root), "landing": str(landing)},
        )
        tables = DeltaStore(self.spark, project, "sail")
        tables.register_all()
        report = RunReport(job="bench", run_id=data_root.name, target="local", engine="sail")
        return TaskContext(
            spark=self.spark, project=project, tables=tables, report=report, task_key="ingest"
        )

    def ours(self, fmt: str, landing: Path | None = None) -> tuple[float, int, int]:
        """Seconds of ``ingest_file_source`` on fresh tables; (seconds, Bronze rows, corrupt)."""
        from lakehouse.pipelines.bronze.ingest import ingest_file_source

        self.rounds += 1
        ctx = self._context(self.work / "runs" / f"r{self.rounds}", landing or self.landing)
        started = time.perf_counter()
        summary = ingest_file_source(ctx, f"orders_{fmt}")
        seconds = time.perf_counter() - started
        table = f"bench.bronze.orders_{fmt}"
        count = ctx.tables.row_count(table)
        self.last[(fmt, "ours")] = ctx.project.table(table).location
        if count != summary.rows:
            raise AssertionError(
                f"{fmt}: Bronze holds {count} rows, ingest reported {summary.rows}"
            )
        return seconds, count, summary.corrupt_rows

    def plain(self, fmt: str, landing: Path | None = None) -> tuple[float, int]:
        """Seconds of ``spark.read...write.format("delta").save``; (seconds, rows)."""
        from pyspark.sql import types as T

        self.rounds += 1
        schema = T.StructType.fromDDL(", ".join(f"{n} {t}" for n, t in COLUMNS))
        source = str((landing or self.landing) / fmt)
        target = str(self.work / "runs" / f"r{self.rounds}" / "plain")
        started = time.perf_counter()
        reader = self.spark.read.schema(schema)
        df = reader.option("header", True).csv(source) if fmt == "csv" else reader.json(source)
        df.write.format("delta").mode("append").save(target)
        seconds = time.perf_counter() - started
        self.last[(fmt, "plain")] = target
        return seconds, int(self.spark.read.format("delta").load(target).count())

    def checksums(self, fmt: str) -> dict[str, tuple[Any, ...]]:
        """Aggregates of the latest ours/plain tables of ``fmt``: both must hold the same data."""
        from pyspark.sql import functions as F

        aggs = [
            F.count("order_ts"),
            F.min("order_ts"),
            F.max("order_ts"),
            F.sum("quantity"),
            F.round(F.sum("amount"), 2),
            F.countDistinct("customer_id"),
        ]
        out = {}
        for name in ("ours", "plain"):
            row = self.spark.read.format("delta").load(self.last[(fmt, name)]).agg(*aggs).first()
            assert row is not None
            out[name] = tuple(row)
        return out

    def malformed(self, fmt: str) -> dict[str, str]:
        """One file plus one malformed line: what each path makes of it."""
        landing = self.work / f"malformed_{fmt}"
        (landing / fmt).mkdir(parents=True)
        source = sorted((self.landing / fmt).iterdir())[0]
        copy = landing / fmt / source.name
        shutil.copy(source, copy)
        good = sum(1 for _ in copy.open()) - (1 if fmt == "csv" else 0)
        with copy.open("a") as fh:
            fh.write("O-bad,C1\n" if fmt == "csv" else '{"order_id": "O-bad", "customer_id":\n')
        result = {"file_rows": str(good), "bad_lines": "1"}
        try:
            _, rows, corrupt = self.ours(fmt, landing)
            result["ours"] = f"{rows} rows ({corrupt} corrupt, kept with _raw)"
        except Exception as exc:
            result["ours"] = f"fails: {one_line(exc, with_type=False)[:160]}"
        try:
            _, rows = self.plain(fmt, landing)
            result["plain"] = f"{rows} rows"
        except Exception as exc:
            result["plain"] = f"fails: {one_line(exc, with_type=False)[:160]}"
        return result

    def stop(self) -> None:
        self.session.stop()


# ---------------------------------------------------------------- report


def _summary(seconds: list[float], rows: int, mb: float) -> dict[str, float]:
    median = statistics.median(seconds)
    return {
        "min_s": min(seconds),
        "median_s": median,
        "rows_per_s": rows / median,
        "mb_per_s": mb / median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-malformed", action="store_true", help="skip the one-malformed-line demonstration"
    )
    args = parser.parse_args()
    if args.rows < args.files or args.files < 1 or args.repeat < 1:
        parser.error("need --files >= 1, --rows >= --files and --repeat >= 1")
    os.environ.setdefault("RUST_LOG", "error")
    wall = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="lakehouse-ingest-bench-") as tmp:
        work = Path(tmp)
        mb = timed(
            f"generate {args.rows:,} rows x {args.files} files",
            lambda: generate(work / "landing", args.rows, args.files),
        )
        bench = Bench(work, args.rows, args.files)
        try:
            checks: dict[str, dict[str, tuple[Any, ...]]] = {}
            times: dict[str, dict[str, list[float]]] = {
                f: {"ours": [], "plain": []} for f in FORMATS
            }
            for round_no in range(args.repeat + 1):  # round 0 is the warm-up
                for fmt in FORMATS:
                    ours_s, ours_rows, corrupt = bench.ours(fmt)
                    plain_s, plain_rows = bench.plain(fmt)
                    for name, rows in (("ours", ours_rows), ("plain", plain_rows)):
                        if rows != args.rows:
                            raise AssertionError(f"{fmt} {name}: {rows} rows, expected {args.rows}")
                    if corrupt:
                        raise AssertionError(f"{fmt} ours: {corrupt} corrupt rows in clean data")
                    label = "warm-up" if round_no == 0 else f"round {round_no}"
                    print(
                        f"  {label} {fmt}: ours {ours_s:.2f}s, plain {plain_s:.2f}s",
                        file=sys.stderr,
                        flush=True,
                    )
                    if round_no:
                        times[fmt]["ours"].append(ours_s)
                        times[fmt]["plain"].append(plain_s)
                if round_no == 0:
                    checks = {f: bench.checksums(f) for f in FORMATS}
            mismatched = [f for f, c in checks.items() if c["ours"] != c["plain"]]
            if mismatched:
                raise AssertionError(f"ours and plain hold different data: {checks}")
            malformed = {} if args.no_malformed else {f: bench.malformed(f) for f in FORMATS}
        finally:
            bench.stop()

    usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = {
        fmt: {
            "mb": mb[fmt],
            "ours": _summary(times[fmt]["ours"], args.rows, mb[fmt]),
            "plain": _summary(times[fmt]["plain"], args.rows, mb[fmt]),
            "ratio_ours_over_plain_median": statistics.median(times[fmt]["ours"])
            / statistics.median(times[fmt]["plain"]),
            "seconds": times[fmt],
        }
        for fmt in FORMATS
    }
    total_s = time.perf_counter() - wall
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    record = {
        "benchmark": "ingest",
        "when": when,
        "commit": git_commit(),
        "machine": machine(),
        "engine": "sail",
        "rows": args.rows,
        "files": args.files,
        "repeat": args.repeat,
        "summary": summary,
        "malformed_line": malformed,
        "peak_rss_mb": usage_self / 1024,
        "peak_rss_children_mb": usage_children / 1024,
        "total_s": total_s,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(record, indent=2) + "\n")
    history = {
        "benchmark": "ingest",
        "when": when,
        "commit": record["commit"],
        "rows": args.rows,
        "cpus": os.cpu_count(),
        "medians": {
            fmt: {
                "ours_s": round(s["ours"]["median_s"], 3),
                "plain_s": round(s["plain"]["median_s"], 3),
                "ratio": round(s["ratio_ours_over_plain_median"], 2),
            }
            for fmt, s in summary.items()
        },
        "peak_rss_mb": round(usage_self / 1024),
    }
    with (RESULTS / "history.jsonl").open("a") as fh:
        fh.write(json.dumps(history) + "\n")

    print(
        f"\nFiles -> Delta on embedded Sail, {args.rows:,} rows in {args.files} files, "
        f"median of {args.repeat} (min in brackets), {os.cpu_count()} CPUs\n"
    )
    print("| format | MB | path | seconds | rows/s | MB/s | ours/plain |")
    print("|---|---|---|---|---|---|---|")
    for fmt, s in summary.items():
        for path in ("ours", "plain"):
            p = s[path]
            ratio = f"{s['ratio_ours_over_plain_median']:.1f}x" if path == "ours" else ""
            print(
                f"| {fmt} | {s['mb']:.1f} | {path} | {p['median_s']:.2f} ({p['min_s']:.2f}) "
                f"| {p['rows_per_s']:,.0f} | {p['mb_per_s']:.1f} | {ratio} |"
            )
    print(
        "\nours = lakehouse.pipelines.bronze.ingest.ingest_file_source: typed columns, corrupt records kept "
        "(_corrupt/_raw), values that do not fit rescued (_rescued_data), lineage columns "
        "(_source_file, _batch_id, _run_id, _ingested_at), exactly-once bookkeeping "
        "(batch ids checked in Bronze, meta.processed_files). plain = spark.read with the typed "
        "schema + Delta write: none of that."
    )
    if malformed:
        print("\nOne malformed line appended to one file (plain has no corrupt-record handling):")
        for fmt, m in malformed.items():
            print(
                f"- {fmt}: {m['file_rows']} good rows + 1 bad line -> ours: {m['ours']}; "
                f"plain: {m['plain']}"
            )
    print(
        f"\npeak RSS: {usage_self / 1024:,.0f} MB (this process, embedded engine included); "
        f"children {usage_children / 1024:,.0f} MB. total {total_s:.0f}s. "
        f"Results: {RESULTS / 'ingest.json'}"
    )


if __name__ == "__main__":
    main()
