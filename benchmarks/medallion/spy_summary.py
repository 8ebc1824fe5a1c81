"""Summarise a ``py-spy record --idle --threads -f raw`` profile of a worker run.

Attributes the samples of the task threads (where the pipeline runs; the engine works in
Rust threads or the JVM while Python waits) to the innermost project frame
(``lakehouse/...``) and the Spark call it was waiting in, so a profile reads as "which step
of our code waits how long for which engine action".

    python benchmarks/medallion/spy_summary.py PROFILE.txt --rate 20 [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<fn>.+) \((?P<file>[^:]+):(?P<line>\d+)\)$")
SPARK_CALLS = (
    "collect",
    "count",
    "save",
    "sql",
    "parquet",
    "first",
    "toArrow",
    "toPandas",
    "createDataFrame",
    "schema",
    "columns",
)


def summarize(path: Path, rate: float, top: int) -> str:
    by_site: Counter[str] = Counter()
    by_step: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack.startswith("thread") or "task_" not in stack.split(";", 1)[0]:
            continue
        count = int(count_text)
        total += count
        frames = [FRAME.match(f) for f in stack.split(";")[1:]]
        ours = [m for m in frames if m and "lakehouse/" in m["file"]]
        spark = [
            m
            for m in frames
            if m and "pyspark/" in m["file"] and m["fn"].split(".")[-1] in SPARK_CALLS
        ]
        site = (
            f"{ours[-1]['fn']} ({ours[-1]['file'].split('lakehouse/')[-1]}:{ours[-1]['line']})"
            if ours
            else "?"
        )
        call = spark[0]["fn"] if spark else "python"
        by_site[f"{site} -> {call}"] += count
        step = next(
            (
                m["fn"]
                for m in ours
                if m["fn"] in ("ingest_file_source", "refine_table", "build_gold")
            ),
            "?",
        )
        by_step[step] += count
    lines = [f"task-thread samples: {total} ({total / rate:.1f} s)", "", "by step:"]
    lines += [f"  {n / rate:7.1f} s  {k}" for k, n in by_step.most_common()]
    lines += ["", f"top {top} call sites (innermost project frame -> Spark call):"]
    lines += [f"  {n / rate:7.1f} s  {k}" for k, n in by_site.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--rate", type=float, default=20.0, help="py-spy -r value")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.profile, args.rate, args.top))


if __name__ == "__main__":
    main()
