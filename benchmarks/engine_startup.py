"""Engine start-up and a small DataFrame workload: embedded Sail vs classic JVM Spark.

Each measurement runs in a fresh subprocess (a Spark Connect and a JVM session cannot share
one process): session start, then 2M rows generated, aggregated by key and written to
Parquet, then read back. Prints a markdown table and writes JSON under benchmarks/results/.

    python benchmarks/engine_startup.py [--repeat 3] [--rows 2000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def measure(engine: str, rows: int) -> dict[str, float]:
    """One run in this process: returns seconds per phase."""
    from pyspark.sql import functions as F

    from lakehouse.config.bundle_spec import EngineSpec
    from lakehouse.engine import build_session

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        spec = (
            EngineSpec(kind="sail")
            if engine == "sail"
            else EngineSpec(kind="spark", master="local[2]")
        )
        session = build_session(spec, warehouse_dir=Path(tmp) / "wh", delta=False)
        spark = session.spark
        spark.range(1).count()
        start_s = time.perf_counter() - started

        t = time.perf_counter()
        df = spark.range(rows).select(
            (F.col("id") % 1000).alias("k"), (F.col("id") * 0.5).alias("v"), F.col("id").alias("id")
        )
        agg = df.groupBy("k").agg(F.sum("v").alias("s"), F.count("*").alias("n"))
        agg.write.mode("overwrite").parquet(f"{tmp}/agg")
        df.write.mode("overwrite").parquet(f"{tmp}/rows")
        write_s = time.perf_counter() - t

        t = time.perf_counter()
        total = spark.read.parquet(f"{tmp}/rows").agg(F.sum("v")).first()
        read_s = time.perf_counter() - t
        assert total is not None and total[0] == sum(range(rows)) * 0.5
        session.stop()
    return {
        "start_s": start_s,
        "write_s": write_s,
        "read_s": read_s,
        "total_s": start_s + write_s + read_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--one", choices=["sail", "spark"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.rows)))
        return

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    runs: dict[str, list[dict[str, float]]] = {"sail": [], "spark": []}
    for _ in range(args.repeat + 1):  # the first round is a warm-up (page cache, JIT of imports)
        for engine in runs:
            out = subprocess.run(
                [sys.executable, __file__, "--one", engine, "--rows", str(args.rows)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {
        engine: {
            phase: {
                "min": min(r[phase] for r in rs[1:]),
                "median": statistics.median(r[phase] for r in rs[1:]),
            }
            for phase in ("start_s", "write_s", "read_s", "total_s")
        }
        for engine, rs in runs.items()
    }
    record = {
        "benchmark": "engine_startup",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "rows": args.rows,
        "repeat": args.repeat,
        "summary": summary,
        "ratio_spark_over_sail_median_total": summary["spark"]["total_s"]["median"]
        / summary["sail"]["total_s"]["median"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine_startup.json").write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"| engine | start (s) | {args.rows:,} rows agg+write (s) | read (s) | total (s) |  (median of {args.repeat}, min in brackets)"
    )
    print("|---|---|---|---|---|")
    for engine, phases in summary.items():
        cells = " | ".join(f"{p['median']:.2f} ({p['min']:.2f})" for p in phases.values())
        print(f"| {engine} | {cells} |")
    print(f"JVM Spark / Sail, total: {record['ratio_spark_over_sail_median_total']:.1f}x")


if __name__ == "__main__":
    main()
