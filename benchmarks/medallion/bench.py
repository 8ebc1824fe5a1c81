"""TPC-H medallion benchmark: raw drops -> Bronze -> Silver -> Gold, ours next to peers.

    .venv/bin/python benchmarks/medallion/bench.py [--sf 1] [--repeat 3] [--no-warmup]
        [--systems ours,jvm,polars,duckdb] [--jvm-repeat 1] [--work DIR] [--out-name NAME]
        [--cluster-workers N] [--full-only]

1. ``tpchgen-cli`` (4.0.0) generates TPC-H at ``--sf`` (cached under ``--work``); the full
   drops (pipe-delimited CSV for region/nation/customer/orders, JSON lines for lineitem) and
   an incremental drop (about 1% new and changed rows, three invalid) are landed once.
2. Each round runs, for every system, in a fresh process and a fresh data directory: the
   full run (all drops landed), then the incremental run (the incremental drop added; a new
   process, as a scheduled job would be). Systems: ``ours`` = this bundle's ``medallion`` job
   (the project's code) on embedded Sail writing Delta; ``ours-cluster`` = the same job on
   Sail's local-cluster mode (``--cluster-workers``, default 2); ``jvm`` = the same job on JVM
   Spark local[2] + delta-spark writing Delta (jars from ``$LAKEHOUSE_DELTA_JARS``, else
   ``build/jars/delta``, else Maven Central); ``jvm-connect`` = the same job over Spark Connect
   against a JVM Spark Connect server (local[2] + delta-spark, started and stopped by each
   run, its RSS counted); ``polars`` = hand-written Polars + deltalake;
   ``duckdb`` = hand-written DuckDB SQL over Arrow + deltalake.
3. After each run the four Gold tables are read back and checksummed (rows, NULLs, sums,
   distinct counts); every peer must equal ours, or the benchmark fails.
4. Per system, phase and layer: min and median wall seconds over the measured rounds (a
   warm-up round is run first and discarded), rows/s (raw rows landed / median seconds), peak
   RSS of the whole process tree (JVM included), ratios peer/ours, incremental/full.

Writes ``benchmarks/results/<out-name>.json`` and ``.md`` and appends one line to
``benchmarks/results/medallion_history.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "benchmarks"))

import harness  # noqa: E402
import tpch_data  # noqa: E402
from _common import git_commit, machine  # noqa: E402

LAYERS = ("bronze", "silver", "gold")
BUNDLE_SYSTEMS = ("ours", "ours-cluster", "jvm", "jvm-connect")  # the bundle's job, tables/
JVM_SYSTEMS = ("jvm", "jvm-connect")  # no warm-up round, --jvm-repeat rounds
BRONZE_ONLY = ("plain",)  # the Bronze floor: full runs only, no Silver or Gold to check
SPY_RATE = 20
LABELS = {
    "ours": "ours: project code, embedded Sail, Delta",
    "ours-cluster": "same code, Sail local-cluster mode, Delta",
    "jvm": "same code, JVM Spark local[2] + delta-spark, Delta",
    "jvm-connect": "same code over Spark Connect, JVM Connect server local[2] + delta-spark, Delta",
    "polars": "hand-written Polars + deltalake",
    "duckdb": "hand-written DuckDB + deltalake",
    "plain": "Bronze floor: the engine's own CSV/JSON reader + Delta write, embedded Sail",
}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def prepare(sf: float, work: Path) -> dict[str, Any]:
    """Generate (cached) and land the full and incremental drops under ``work``."""
    drops = work / f"drops-sf{sf:g}"
    meta_file = drops / "rows.json"
    if meta_file.exists():
        return dict(json.loads(meta_file.read_text()))
    started = time.perf_counter()
    parquet = tpch_data.generate(sf, work / "tpch")
    generated = time.perf_counter() - started
    if drops.exists():
        shutil.rmtree(drops)
    full = tpch_data.land_full(parquet, drops / "full")
    incremental = tpch_data.land_incremental(parquet, drops / "incremental")
    meta = {
        "full": full,
        "incremental": incremental,
        "generate_s": round(generated, 1),
        "land_s": round(time.perf_counter() - started - generated, 1),
        "bytes": {
            phase: sum(p.stat().st_size for p in (drops / phase).rglob("*") if p.is_file())
            for phase in ("full", "incremental")
        },
    }
    meta_file.write_text(json.dumps(meta))
    return meta


def link_drops(source: Path, landing: Path) -> None:
    """Hard-link the drop files of ``source`` into ``landing`` (same bytes, no copy)."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = landing / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)


def run_worker(
    system: str,
    root: Path,
    landing: Path,
    out: Path,
    profile: Path | None,
    timeout_s: float,
    cluster_workers: int | None = None,
    keep_going: bool = False,
) -> dict[str, Any]:
    """One worker run; a peer that fails (out of memory at SF10, say) is recorded as such
    when ``keep_going``, ours never is."""
    cmd: list[str] = [
        sys.executable,
        str(HERE / "worker.py"),
        system,
        "--root",
        str(root),
        "--landing",
        str(landing),
        "--out",
        str(out),
    ]
    if cluster_workers is not None and system == "ours-cluster":
        cmd += ["--cluster-workers", str(cluster_workers)]
    if profile is not None:  # py-spy samples every thread, idle ones too (waiting on the engine)
        spy = str(Path(sys.executable).parent / "py-spy")
        raw = profile.with_suffix(".raw")
        cmd = [
            spy,
            "record",
            "--idle",
            "--threads",
            "-r",
            str(SPY_RATE),
            "-f",
            "raw",
            "-o",
            str(raw),
            "--",
            *cmd,
        ]
    log = out.with_suffix(".log")
    load_before = load_average()
    with log.open("w") as sink:  # own session: a timeout stops the worker and its JVM alike
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if system == "ours" or not keep_going:
                raise SystemExit(
                    f"{system} did not finish within {timeout_s:g} s, log {log}"
                ) from None
            why = f"over the {timeout_s:g} s limit (stopped)"
            print(f"    {system} {why}", file=sys.stderr, flush=True)
            return {"system": system, "failed": why, "load_before": load_before}
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        if system == "ours" or not keep_going:
            raise SystemExit(
                f"{system} failed (exit {proc.returncode}), log {log}:\n" + "\n".join(tail)
            )
        why = (
            "killed (SIGKILL: the kernel's OOM killer when memory runs out)"
            if proc.returncode in (-9, 137)
            else f"exit {proc.returncode}: {tail[-1] if tail else 'no output'}"
        )
        print(f"    {system} did not finish: {why}", file=sys.stderr, flush=True)
        return {"system": system, "failed": why, "load_before": load_before}
    result = dict(json.loads(out.read_text()))
    if profile is not None and system in ("ours", "jvm"):
        import spy_summary

        profile.write_text(spy_summary.summarize(profile.with_suffix(".raw"), SPY_RATE, 30) + "\n")
    result["load_before"] = load_before
    result["load_after"] = load_average()
    return result


def gold_of(system: str, root: Path) -> dict[str, Any]:
    """Checksums of a run's Gold Delta tables (read with delta-rs, whoever wrote them)."""
    if system in BUNDLE_SYSTEMS:  # the bundle's catalog keeps its tables under tables/
        return harness.gold_checksums(root / "tables")
    return harness.gold_checksums(root)


def jvm_delta_note(rounds: list[dict[str, dict[str, Any]]]) -> list[str]:
    """Where the JVM runs got delta-spark from, as the worker recorded it (none: no JVM run)."""
    for entry in rounds:
        run = (entry.get("jvm") or entry.get("jvm-connect") or {}).get("full")
        if not run:
            continue
        if isinstance(run.get("delta_jars"), list):
            source = "jar files " + ", ".join(run["delta_jars"])
        elif run.get("delta_packages"):
            source = "Maven packages " + ", ".join(run["delta_packages"])
        else:
            source = str(run.get("delta_jars", "unknown"))
        return [f"jvm writes Delta with delta-spark ({source})"]
    return []


def engine_notes(rounds: list[dict[str, dict[str, Any]]]) -> list[str]:
    """How ours-cluster's Sail ran and how long jvm-connect's server took to start."""
    notes: list[str] = []
    runs = [r[s]["full"] for r in rounds for s in ("ours-cluster", "jvm-connect") if s in r]
    modes = sorted({str(run["engine_mode"]) for run in runs if run["system"] == "ours-cluster"})
    if modes:
        notes.append(f"ours-cluster runs Sail in {', '.join(modes)} (in the job's process)")
    starts = [run["server_start_s"] for run in runs if run["system"] == "jvm-connect"]
    if starts:
        notes.append(
            "jvm-connect starts a JVM Spark Connect server (spark-submit, Delta jars) per run: "
            f"{min(starts):.1f}-{max(starts):.1f} s, counted in 'start'; its RSS is in peak RSS"
        )
    return notes


def one_round(
    systems: list[str],
    work: Path,
    drops: Path,
    label: str,
    profile_dir: Path | None,
    timeout_s: float,
    phases: tuple[str, ...] = ("full", "incremental"),
    cluster_workers: int | None = None,
    keep_going: bool = False,
    jvm_timeout_s: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Full + incremental run of every system (or just ``phases``); checks Gold against ours.
    The Bronze floor (``plain``) runs the full phase only; a failed run ends its system's round."""
    out: dict[str, dict[str, Any]] = {}
    reference: dict[str, Any] = {}
    for system in systems:
        run_dir = work / "runs" / f"{label}-{system}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        landing, root = run_dir / "landing", run_dir / "root"
        root.mkdir(parents=True)
        link_drops(drops / "full", landing)
        done = {}
        for phase in phases:
            if system in BRONZE_ONLY and phase != "full":
                continue
            if phase == "incremental":
                link_drops(drops / "incremental", landing)
            profile = profile_dir / f"{system}-{phase}.txt" if profile_dir else None
            print(f"  [{label}] {system} {phase} …", file=sys.stderr, flush=True)
            result = run_worker(
                system,
                root,
                landing,
                run_dir / f"{phase}.json",
                profile,
                jvm_timeout_s if system in JVM_SYSTEMS and jvm_timeout_s else timeout_s,
                cluster_workers,
                keep_going,
            )
            if "failed" in result:
                done[phase] = result
                break
            if system in BRONZE_ONLY:
                result["gold_check"] = "n/a (Bronze only)"
                result["gold_rows"] = {}
                done[phase] = result
                continue
            checks = gold_of(system, root)
            if system == systems[0]:
                reference[phase] = checks
                result["gold_check"] = "reference"
            else:
                problems = harness.compare(reference[phase], checks)
                if problems:
                    raise SystemExit(
                        f"{system} {phase}: Gold differs from {systems[0]}:\n  "
                        + "\n  ".join(problems[:20])
                    )
                result["gold_check"] = f"equal to {systems[0]}"
            result["gold_rows"] = {t: c["rows"] for t, c in checks.items()}
            total = sum(result["seconds"].get(layer, 0.0) for layer in LAYERS)
            print(
                f"    {total:.1f}s (layers) load {result['load_before']} -> {result['load_after']}",
                file=sys.stderr,
                flush=True,
            )
            done[phase] = result
        out[system] = done
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


# ---------------------------------------------------------------- summary


def layer_seconds(run: dict[str, Any], layer: str) -> float:
    if layer == "total":
        return sum(run["seconds"].get(x, 0.0) for x in LAYERS)
    if layer == "total_with_start":
        return sum(run["seconds"].get(x, 0.0) for x in (*LAYERS, "start", "overhead"))
    return float(run["seconds"].get(layer, 0.0))


def summarize(rounds: list[dict[str, dict[str, Any]]], rows: dict[str, Any]) -> dict[str, Any]:
    systems = list(rounds[0])
    summary: dict[str, Any] = {}
    for system in systems:
        per_phase: dict[str, Any] = {}
        for phase in ("full", "incremental"):
            tried = [r[system][phase] for r in rounds if phase in r.get(system, {})]
            runs = [run for run in tried if "failed" not in run]
            if not runs:
                if tried:
                    per_phase[phase] = {"failed": tried[0]["failed"]}
                continue
            raw_rows = sum(rows[phase].values())
            entry: dict[str, Any] = {"repetitions": len(runs)}
            for layer in (*LAYERS, "start", "overhead", "total", "total_with_start"):
                values = [layer_seconds(run, layer) for run in runs]
                med = statistics.median(values)
                entry[layer] = {
                    "median_s": round(med, 3),
                    "min_s": round(min(values), 3),
                    "rows_per_s": round(raw_rows / med) if med > 0 else None,
                    "peak_rss_mb": max(
                        (run["peak_rss_mb"].get(layer, 0.0) for run in runs), default=0.0
                    )
                    if layer in (*LAYERS, "start")
                    else None,
                }
            entry["peak_rss_mb"] = max(run["overall_peak_rss_mb"] for run in runs)
            entry["processes"] = max(run["max_processes"] for run in runs)
            entry["load"] = [run["load_before"] for run in runs]
            entry["gold_check"] = runs[0]["gold_check"]
            entry["gold_rows"] = runs[0]["gold_rows"]
            entry["counters"] = runs[0].get("counters")
            per_phase[phase] = entry
        if "full" in per_phase and "incremental" in per_phase:
            per_phase["incremental_fraction"] = round(
                per_phase["incremental"]["total"]["median_s"]
                / per_phase["full"]["total"]["median_s"],
                3,
            )
        summary[system] = per_phase
    if "ours" in summary:
        for system in systems:
            if system == "ours":
                continue
            ratios: dict[str, Any] = {}
            for phase in ("full", "incremental"):
                if "failed" in summary[system].get(phase, {"failed": True}):
                    continue
                if "failed" in summary["ours"].get(phase, {"failed": True}):
                    continue
                ratios[phase] = {
                    layer: round(
                        summary[system][phase][layer]["median_s"]
                        / summary["ours"][phase][layer]["median_s"],
                        2,
                    )
                    for layer in (
                        ("bronze",)
                        if system in BRONZE_ONLY
                        else (*LAYERS, "total", "total_with_start")
                    )
                    if summary["ours"][phase][layer]["median_s"] > 0
                }
            summary[system]["peer_over_ours"] = ratios
    return summary


def _ratio(s: dict[str, Any], system: str, phase: str, layer: str) -> float | None:
    """peer / ours for ``layer`` of ``phase`` (None: not measured)."""
    value = s.get(system, {}).get("peer_over_ours", {}).get(phase, {}).get(layer)
    return None if value is None else float(value)


def targets(s: dict[str, Any]) -> list[str]:
    """Issue 23's targets, each met / NOT met / not measured in this run."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    checks: list[tuple[str, str, str, str, float]] = [
        # (what, peer, phase, layer, ours/peer must be <=)
        ("full run: ours <= 1.0x the DuckDB pipeline", "duckdb", "full", "total", 1.0),
        ("full run: ours <= 0.8x the Polars pipeline", "polars", "full", "total", 0.8),
        ("Bronze: ours <= 1.3x a plain native read + Delta write", "plain", "full", "bronze", 1.3),
    ]
    for what, peer, phase, layer, limit in checks:
        r = _ratio(s, peer, phase, layer)
        if r is None:
            lines.append(f"- target {what}: not measured in this run")
        else:
            lines.append(
                f"- target {what}: ours = {1 / r:.2f}x {peer} -> {verdict(1 / r <= limit)}"
            )
    r = _ratio(s, "jvm", "full", "total")
    lines.append(
        "- target ours >= 3x faster than the same code on JVM Spark: "
        + ("not measured in this run" if r is None else f"{r:.2f}x -> {verdict(r >= 3)}")
    )
    fraction = s.get("ours", {}).get("incremental_fraction")
    lines.append(
        "- target incremental (1% changed) <= 10% of full: "
        + ("not measured" if fraction is None else f"{fraction:.0%} -> {verdict(fraction <= 0.10)}")
    )
    finished = {
        system: entry["full"]
        for system, entry in s.items()
        if system not in BRONZE_ONLY and "full" in entry and "failed" not in entry["full"]
    }
    if len(finished) > 1 and "ours" in finished:
        fastest = min(finished, key=lambda x: finished[x]["total"]["median_s"])
        leanest = min(finished, key=lambda x: finished[x]["peak_rss_mb"])
        lines.append(
            f"- fastest full run among the systems that finished: {fastest}; lowest peak RSS: "
            f"{leanest} ({finished[leanest]['peak_rss_mb']:,.0f} MB)"
        )
    return lines


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    m = result["machine"]
    rows = result["rows"]
    lines = [
        f"# Medallion benchmark, TPC-H SF{result['sf']:g}",
        "",
        f"{result['finished_at']} · commit {result['commit']} · {m['cpus']} cores · "
        f"{m['mem_gb']} GB RAM · load average {result['load_start']} at start, {result['load_end']} at end · "
        f"warm-up {'yes' if result['warmup'] else 'no'}, then {result['repeat']} measured round(s) "
        f"(JVM: {result['jvm_repeat']})",
        "",
        f"Raw rows landed: full {sum(rows['full'].values()):,} "
        f"({result['drops_mb']['full']:,.0f} MB of CSV + JSON lines), incremental "
        f"{sum(rows['incremental'].values()):,} ({result['drops_mb']['incremental']:,.1f} MB).",
        "",
        "Seconds are the median of the measured rounds (min in brackets); rows/s = raw rows "
        "landed / median seconds; peak RSS is the whole process tree (the JVM included). "
        "'total' is Bronze + Silver + Gold; engine start and the runner's own work (registering "
        "the catalog, run records) are listed apart.",
        "",
    ]
    for phase in ("full", "incremental"):
        lines += [
            f"## {phase} run",
            "",
            "| system | bronze s | silver s | gold s | total s | rows/s (total) | start s | runner s | peak RSS MB | peer/ours (total) | Gold |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for system, entry in s.items():
            if phase not in entry:
                continue
            e = entry[phase]
            if "failed" in e:
                lines.append(f"| {LABELS[system]} | did not finish: {e['failed']} |" + " |" * 9)
                continue

            def cell(layer: str, e: dict[str, Any] = e, system: str = system) -> str:
                if system in BRONZE_ONLY and layer != "bronze":
                    return "-"
                return f"{e[layer]['median_s']:.1f} ({e[layer]['min_s']:.1f})"

            ratio = entry.get("peer_over_ours", {}).get(phase, {}).get("total")
            lines.append(
                f"| {LABELS[system]} | {cell('bronze')} | {cell('silver')} | {cell('gold')} | "
                f"{cell('total')} | {e['total']['rows_per_s']:,} | {e['start']['median_s']:.1f} | "
                f"{e['overhead']['median_s']:.1f} | {e['peak_rss_mb']:,.0f} | "
                f"{'-' if ratio is None else f'{ratio:.2f}x'} | {e['gold_check']} |"
            )
        lines.append("")
    lines += ["## ratios and targets", ""]
    for system, entry in s.items():
        if system == "ours" or "peer_over_ours" not in entry:
            continue
        for phase, ratios in entry["peer_over_ours"].items():
            parts = ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
            lines.append(f"- {system} / ours, {phase}: {parts}")
    for system, entry in s.items():
        if "incremental_fraction" in entry:
            lines.append(
                f"- {system}: incremental run = {entry['incremental_fraction']:.0%} of the full run (layers)"
            )
    lines += targets(s)
    lines += [
        "",
        "The JVM peer runs the same bundle on JVM Spark with delta-spark (the `jvm` target): "
        "Delta tables, MERGE INTO Silver, Gold read back with delta-rs like ours.",
        "",
        "Incremental runs: ours and the JVM peer (the same code) refine only the Bronze "
        "batches Silver has not refined yet (`meta.silver_batches`); the Polars and DuckDB "
        "peers re-read all of Bronze and MERGE it. The peers rebuild Gold in full; ours refreshes "
        "each Gold table as its query allows (`meta.gold_refreshes`: strategy and reason).",
        "",
        *[f"Note: {n}" for n in result["notes"][1:]],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (1, 10, 0.01 …)")
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds")
    parser.add_argument(
        "--jvm-repeat", type=int, default=None, help="measured rounds of jvm (default: --repeat)"
    )
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--systems", default="ours,plain,jvm,polars,duckdb")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="record a peer that fails (e.g. out of memory at SF10) and go on (ours must finish)",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/lakehouse-bench-medallion"))
    parser.add_argument(
        "--out-name", default=None, help="result file stem (default: medallion_sf<SF>)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument(
        "--merge-from",
        type=Path,
        default=None,
        help="an earlier result JSON (same SF) whose rounds of --merge-systems are reported "
        "with this run's (e.g. a long JVM run measured before); marked in the output",
    )
    parser.add_argument("--merge-systems", default="jvm")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profiles of the last round (needs py-spy)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument(
        "--jvm-timeout", type=float, default=None, help="seconds per JVM run (default: --timeout)"
    )
    parser.add_argument(
        "--full-only", action="store_true", help="measured rounds run the full run only"
    )
    parser.add_argument(
        "--cluster-workers",
        type=int,
        default=None,
        help="Sail worker processes of ours-cluster (default: the cluster target's, 2)",
    )
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if systems[0] != "ours" and "ours" in systems:
        systems.remove("ours")
        systems.insert(0, "ours")
    jvm_repeat = args.repeat if args.jvm_repeat is None else args.jvm_repeat
    args.work.mkdir(parents=True, exist_ok=True)
    load_start = load_average()
    print(f"TPC-H SF{args.sf:g}: generating and landing drops under {args.work} …", file=sys.stderr)
    rows = prepare(args.sf, args.work)
    drops = args.work / f"drops-sf{args.sf:g}"
    profile_dir = (
        args.results / f"{args.out_name or f'medallion_sf{args.sf:g}'}_profiles"
        if args.profile
        else None
    )
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    rounds: list[dict[str, dict[str, Any]]] = []
    plan = (["warmup"] if not args.no_warmup else []) + [
        f"round{i + 1}" for i in range(args.repeat)
    ]
    for i, label in enumerate(plan):
        measured = label != "warmup"
        index = i - (0 if args.no_warmup else 1)
        if measured:
            chosen = [s for s in systems if s not in JVM_SYSTEMS or index < jvm_repeat]
        else:  # every run is a fresh process: the warm-up (full runs) only warms the OS caches
            chosen = [s for s in systems if s not in JVM_SYSTEMS]
        last = i == len(plan) - 1
        outcome = one_round(
            chosen,
            args.work,
            drops,
            label,
            profile_dir if last else None,
            args.timeout,
            phases=("full", "incremental") if measured and not args.full_only else ("full",),
            cluster_workers=args.cluster_workers,
            keep_going=args.keep_going,
            jvm_timeout_s=args.jvm_timeout,
        )
        if measured:
            rounds.append(outcome)
    merged_note = None
    if args.merge_from is not None:
        earlier = json.loads(args.merge_from.read_text())
        if earlier["sf"] != args.sf:
            raise SystemExit(f"{args.merge_from} is SF{earlier['sf']:g}, not SF{args.sf:g}")
        wanted = [x.strip() for x in args.merge_systems.split(",") if x.strip()]
        for system in wanted:
            old = [r[system] for r in earlier["rounds"] if system in r]
            if not old:
                raise SystemExit(f"{args.merge_from} has no rounds of {system}")
            formats = {run.get("format") for phases in old for run in phases.values()}
            if formats - {"delta", None}:
                raise SystemExit(
                    f"{args.merge_from}: {system} wrote {', '.join(sorted(map(str, formats)))} "
                    "tables (the removed Parquet table format), not comparable with Delta runs"
                )
            for i, phases in enumerate(old):
                if i >= len(rounds):
                    break
                rounds[i][system] = phases
            if system in JVM_SYSTEMS:  # the header counts the rounds the merged runs had
                jvm_repeat = min(len(old), len(rounds))
            if system not in systems:
                systems.append(system)
        merged_note = (
            f"{', '.join(wanted)}: measured in an earlier run of this benchmark "
            f"({earlier['finished_at']}, commit {earlier['commit']}, load average at start "
            f"{earlier['load_start']}), Gold checked against ours of that run"
        )
    mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    result: dict[str, Any] = {
        "benchmark": "medallion",
        "sf": args.sf,
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(),
        "machine": {**machine(), "mem_gb": mem_gb},
        "load_start": load_start,
        "load_end": load_average(),
        "warmup": not args.no_warmup,
        "repeat": args.repeat,
        "jvm_repeat": jvm_repeat,
        "systems": {s: LABELS[s] for s in systems},
        "rows": {"full": rows["full"], "incremental": rows["incremental"]},
        "drops_mb": {k: round(v / 2**20, 1) for k, v in rows["bytes"].items()},
        "summary": summarize(rounds, rows),
        "rounds": rounds,
        "notes": [
            "ours, ours-cluster, jvm and jvm-connect run the bundle's medallion job in-process "
            "(bundle runner, python_function_task)",
            *jvm_delta_note(rounds),
            *engine_notes(rounds),
            *([merged_note] if merged_note else []),
        ],
    }
    stem = args.out_name or f"medallion_sf{args.sf:g}"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str))
    text = markdown(result)
    (args.results / f"{stem}.md").write_text(text)
    if not args.no_history:
        summary = result["summary"]

        def finished(phase: str) -> list[tuple[str, Any]]:
            return [
                (k, v) for k, v in summary.items() if "failed" not in v.get(phase, {"failed": 1})
            ]

        line = {
            "benchmark": "medallion",
            "finished_at": result["finished_at"],
            "commit": result["commit"],
            "sf": args.sf,
            "load_start": load_start,
            "full_total_median_s": {k: v["full"]["total"]["median_s"] for k, v in finished("full")},
            "incremental_total_median_s": {
                k: v["incremental"]["total"]["median_s"] for k, v in finished("incremental")
            },
            "bronze_full_median_s": {
                k: v["full"]["bronze"]["median_s"] for k, v in finished("full")
            },
            "peak_rss_mb": {k: v["full"]["peak_rss_mb"] for k, v in finished("full")},
            "did_not_finish": {
                k: v[phase]["failed"]
                for k, v in summary.items()
                for phase in ("full", "incremental")
                if "failed" in v.get(phase, {})
            },
        }
        with (args.results / "medallion_history.jsonl").open("a") as fh:
            fh.write(json.dumps(line) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
