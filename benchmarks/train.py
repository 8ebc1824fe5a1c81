"""Gold build + training of the three churn candidates on >= 1M orders: seconds and peak RSS.

Runs the demo pipeline's steps in-process on one embedded Sail session, on a temporary copy
of the repository's bundle (``bundle.yml``, ``conf/``, ``jobs/``) with ``data_root`` and the
MLflow tracking store (sqlite) in a temporary directory:

1. land the deterministic demo drops (``lakehouse.samples.generator``; setup, pure Python);
2. Bronze: ``ingest_source`` for the two file sources (``customers_drop``, ``orders_drop``);
3. Silver: ``refine_table`` for ``silver.customers`` (SCD2) and ``silver.orders``;
4. Gold: ``build_gold`` (``customer_features``, weekly snapshots, and ``daily_sales``);
5. the point-in-time training set alone (``build_training_set`` + ``toPandas``), to show
   what part of step 6 it is;
6. ``train_model(ctx, "churn", force=True)``: training set again, fit + holdout evaluation
   of logistic_regression, random_forest and gradient_boosting, MLflow logging, registration
   and promotion;
7. ``score_model(ctx, "churn")``: batch scoring of the latest snapshot per customer.

Each step reports its rows, wall seconds and memory: the peak RSS of this process sampled
during the step (the embedded Sail engine runs in this process), the same for this process
plus its child processes, and ``getrusage`` ``ru_maxrss`` (the process peak so far). Prints
markdown tables, writes ``benchmarks/results/train.json`` and appends one line to
``benchmarks/results/history.jsonl`` (``--quick`` writes ``train_quick.json`` only).

    .venv/bin/python benchmarks/train.py [--customers 120000] [--quick] \
        [--set random_forest.n_estimators=100 ...] [--keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import REPO, git_commit, machine

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_CUSTOMERS = 120_000  # about 8.57 orders per customer: 1,027,882 orders
QUICK_CUSTOMERS = 2_000
MODEL = "churn"
MB = 1024 * 1024


# ---------------------------------------------------------------- memory


class RssSampler(threading.Thread):
    """Samples the RSS of this process, and of it plus its descendants, from /proc.

    ``begin()`` starts a measurement window, ``end()`` returns the peaks seen since (bytes).
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = os.getpid()
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.peak_self = 0
        self.peak_tree = 0
        self.max_children = 0

    def _rss(self, pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm") as fh:  # noqa: PTH123 - a hot loop on /proc
                return int(fh.read().split()[1]) * self.page
        except (OSError, IndexError, ValueError):
            return 0

    def _descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as fh:  # noqa: PTH123
                    stat = fh.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], list(children.get(self.pid, []))
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def sample(self) -> None:
        own = self._rss(self.pid)
        kids = self._descendants()
        tree = own + sum(self._rss(p) for p in kids)
        with self._lock:
            self.peak_self = max(self.peak_self, own)
            self.peak_tree = max(self.peak_tree, tree)
            self.max_children = max(self.max_children, len(kids))

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def begin(self) -> None:
        with self._lock:
            self.peak_self = self.peak_tree = self.max_children = 0
        self.sample()

    def end(self) -> tuple[int, int, int]:
        self.sample()
        with self._lock:
            return self.peak_self, self.peak_tree, self.max_children

    def stop(self) -> None:
        self._stop.set()


def ru_maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# ---------------------------------------------------------------- steps


@dataclass
class Step:
    name: str
    seconds: float
    rows: int
    rows_label: str
    peak_rss_mb: float | None  # None: a part of a step, timed from its commits
    peak_rss_tree_mb: float | None
    children: int
    ru_maxrss_mb: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None


class Runner:
    """Runs the steps, timing them and sampling memory."""

    def __init__(self, sampler: RssSampler) -> None:
        self.sampler = sampler
        self.steps: list[Step] = []
        self.writes: list[tuple[float, Any]] = []  # (perf_counter at commit, WriteResult)

    def on_write(self, result: Any) -> None:
        self.writes.append((time.perf_counter(), result))

    def run(
        self,
        name: str,
        fn: Callable[[], tuple[int, str, dict[str, Any]]],
        parent: str | None = None,
    ) -> Step:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        self.sampler.begin()
        started = time.perf_counter()
        rows, rows_label, detail = fn()
        seconds = time.perf_counter() - started
        peak_self, peak_tree, children = self.sampler.end()
        step = Step(
            name=name,
            seconds=seconds,
            rows=rows,
            rows_label=rows_label,
            peak_rss_mb=peak_self / MB,
            peak_rss_tree_mb=peak_tree / MB,
            children=children,
            ru_maxrss_mb=ru_maxrss_bytes() / MB,
            detail=detail,
            parent=parent,
        )
        self.steps.append(step)
        counted = f", {rows:,} {rows_label}" if rows else ""
        print(
            f"  {name}: {seconds:.1f}s{counted}, peak RSS {step.peak_rss_mb:,.0f} MB",
            file=sys.stderr,
            flush=True,
        )
        return step

    def add_sub(self, name: str, parent: str, seconds: float, rows: int, label: str) -> None:
        """A part of a step timed from its commits (no memory sample of its own)."""
        self.steps.append(Step(name, seconds, rows, label, None, None, 0, None, parent=parent))


def copy_bundle(dest: Path, overrides: list[str]) -> list[str]:
    """The repository's bundle.yml, conf/ and jobs/ under ``dest``; candidate params overridden.

    ``overrides`` are ``candidate.param=value`` (value parsed as YAML); returns them as applied.
    """
    import yaml

    dest.mkdir(parents=True)
    shutil.copy(REPO / "bundle.yml", dest / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, dest / name)
    if not overrides:
        return []
    models_file = dest / "conf" / "models.yml"
    doc = yaml.safe_load(models_file.read_text())
    candidates = doc["models"][MODEL]["candidates"]
    applied = []
    for item in overrides:
        key, _, value = item.partition("=")
        candidate, _, param = key.partition(".")
        if not value or not param or candidate not in candidates:
            raise SystemExit(
                f"--set {item!r}: expected CANDIDATE.PARAM=VALUE with CANDIDATE one of "
                f"{', '.join(candidates)}"
            )
        candidates[candidate].setdefault("params", {})[param] = yaml.safe_load(value)
        applied.append(f"{candidate}.{param}={candidates[candidate]['params'][param]}")
    models_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return applied


def run_pipeline(work: Path, customers: int, overrides: list[str]) -> dict[str, Any]:
    from lakehouse.bundle.context import RunReport, TaskContext
    from lakehouse.config import load_project
    from lakehouse.io.delta import DeltaStore
    from lakehouse.pipelines.bronze.ingest import ingest_source
    from lakehouse.pipelines.gold import build_gold
    from lakehouse.pipelines.ml.registry import CHAMPION, connect
    from lakehouse.pipelines.ml.score import score_model
    from lakehouse.pipelines.ml.train import holdout_split, train_model, training_data
    from lakehouse.pipelines.ml.training_set import build_training_set
    from lakehouse.pipelines.silver.refine import refine_table
    from lakehouse.samples.generator import SampleSpec, land_sample_files

    sampler = RssSampler()
    sampler.start()
    runner = Runner(sampler)
    applied = copy_bundle(work / "project", overrides)
    data_root = work / "data"
    project = load_project(
        work / "project",
        var_overrides={
            "data_root": str(data_root),
            "mlflow_tracking_uri": f"sqlite:///{data_root / 'mlflow' / 'mlflow.db'}",
        },
    )
    (data_root / "mlflow").mkdir(parents=True)
    catalog = project.catalog.name
    spec = project.models[MODEL]
    landing = data_root / "landing"

    # 1. land the drops
    landed: Any = None

    def land() -> tuple[int, str, dict[str, Any]]:
        nonlocal landed
        landed = land_sample_files(landing, SampleSpec(customers=customers))
        size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
        detail = {
            "customers": landed.customers,
            "orders": landed.orders,
            "bad_rows": landed.bad_rows,
            "files": len(landed.written),
            "mb": size / 1e6,
        }
        return landed.customers + landed.orders, "rows in files", detail

    runner.run("land demo files (setup)", land)
    print(
        f"  landed {landed.customers:,} customers and {landed.orders:,} orders "
        f"(+{landed.bad_rows} bad rows)",
        file=sys.stderr,
        flush=True,
    )

    session_step = runner.run(
        "engine session (setup)",
        lambda: _session_step(project, work),
    )
    session = session_step.detail.pop("_session")
    try:
        tables = DeltaStore(session.spark, project, session.kind, on_write=runner.on_write)
        tables.register_all()
        report = RunReport(job="bench-train", run_id="bench", target="local", engine=session.kind)
        ctx = TaskContext(
            spark=session.spark, project=project, tables=tables, report=report, task_key="bench"
        )

        # 2. Bronze
        def bronze(source: str) -> tuple[int, str, dict[str, Any]]:
            s = ingest_source(ctx, source)
            detail = {"files": s.units, "rows": s.rows, "corrupt_rows": s.corrupt_rows}
            return s.rows, "rows appended", detail

        parts = [runner.run(f"bronze: {src}", lambda src=src: bronze(src)) for src in SOURCES]
        _group(runner, "bronze ingest", parts)

        # 3. Silver
        def silver(table: str) -> tuple[int, str, dict[str, Any]]:
            s = refine_table(ctx, f"{catalog}.silver.{table}")
            detail = {
                "rows_read": s.rows_read,
                "rows_kept": s.rows_kept,
                "rows_quarantined": s.rows_quarantined,
                "duplicates_collapsed": s.duplicates_collapsed,
                "rows_written": s.rows_written,
            }
            return s.rows_read, "Bronze rows read", detail

        parts = [runner.run(f"silver: {t}", lambda t=t: silver(t)) for t in ("customers", "orders")]
        _group(runner, "silver refine", parts)
        silver_rows = {
            t: tables.row_count(f"{catalog}.silver.{t}") for t in ("customers", "orders")
        }

        # 4. Gold (per table: split at each table's commit)
        def gold() -> tuple[int, str, dict[str, Any]]:
            first = len(runner.writes)
            started = time.perf_counter()
            build_gold(ctx)
            written = runner.writes[first:]
            detail: dict[str, Any] = {"_started": started}
            detail.update({w.table: {"rows": w.rows_written, "at": t} for t, w in written})
            return sum(w.rows_written for _, w in written), "rows written", detail

        gold_step = runner.run("gold build", gold)
        previous = gold_step.detail.pop("_started")
        for table, info in gold_step.detail.items():
            at = info.pop("at")
            short = table.split(".")[-1]
            runner.add_sub(f"gold: {short}", "gold build", at - previous, info["rows"], "rows")
            previous = at

        # 5. training set alone
        def training_set() -> tuple[int, str, dict[str, Any]]:
            model = project.model_handle(MODEL)
            data = training_data(build_training_set(tables, model), spec)
            train_rows, test_rows = holdout_split(data, spec.split, spec.seed)
            y = data.y
            detail = {
                "rows": len(data.frame),
                "train_rows": len(train_rows),
                "holdout_rows": len(test_rows),
                "positive_rate": float(y.mean()),
                "features": {"numeric": data.numeric, "categorical": data.categorical},
            }
            return len(data.frame), "examples", detail

        ts_step = runner.run("training set (build + toPandas)", training_set)

        # 6. train_model
        result: Any = None

        def train() -> tuple[int, str, dict[str, Any]]:
            nonlocal result
            result = train_model(ctx, MODEL, force=True)
            detail = {
                "version": result.version,
                "best": result.best,
                "promoted": result.promoted,
                "note": result.note,
                "candidates": result.candidates,
            }
            return ts_step.rows, "examples", detail

        train_step = runner.run("train_model: 3 candidates + MLflow", train)
        fit_total = 0.0
        for name, metrics in result.candidates.items():
            fit = metrics["training_seconds"] + metrics["prediction_seconds"]
            fit_total += fit
            runner.add_sub(
                f"fit+eval: {name}",
                "train_model: 3 candidates + MLflow",
                fit,
                ts_step.detail["train_rows"],
                "training rows",
            )
        runner.add_sub(
            "training set (inside train_model, est.)",
            "train_model: 3 candidates + MLflow",
            ts_step.seconds,
            ts_step.rows,
            "examples",
        )
        runner.add_sub(
            "MLflow logging + registration (rest)",
            "train_model: 3 candidates + MLflow",
            train_step.seconds - fit_total - ts_step.seconds,
            len(result.candidates),
            "runs",
        )
        scoring_note = ""
        if not result.promoted:
            # Scoring needs @champion; promotion can refuse it (thresholds, e.g. on --quick).
            client = connect(project)
            client.set_registered_model_alias(spec.registered_name, CHAMPION, result.version)
            scoring_note = (
                f"v{result.version} was not promoted ({result.note}); the benchmark set "
                f"@{CHAMPION} itself so that scoring runs"
            )

        # 7. scoring
        def score() -> tuple[int, str, dict[str, Any]]:
            first = len(runner.writes)
            score_model(ctx, MODEL)
            rows = sum(w.rows_written for _, w in runner.writes[first:])
            return rows, "predictions", {}

        runner.run("score_model: batch scoring", score)
    finally:
        session.stop()
        sampler.stop()

    return {
        "steps": runner.steps,
        "landed": {"customers": landed.customers, "orders": landed.orders},
        "silver_rows": silver_rows,
        "training_set": ts_step.detail,
        "model": {
            "version": result.version,
            "best": result.best,
            "promoted": result.promoted,
            "note": result.note,
            "scoring_note": scoring_note,
            "candidates": {
                name: {"params": dict(spec.candidates[name].params), "metrics": metrics}
                for name, metrics in result.candidates.items()
            },
        },
        "overrides": applied,
        "max_children": max(s.children for s in runner.steps),
    }


SOURCES = ("customers_drop", "orders_drop")


def _session_step(project: Any, work: Path) -> tuple[int, str, dict[str, Any]]:
    from lakehouse.engine import build_session

    session = build_session(project.engine, warehouse_dir=work / "warehouse", app_name="bench")
    return 0, "", {"kind": session.kind, "_session": session}


def _group(runner: Runner, name: str, parts: list[Step]) -> None:
    """A step made of the steps ``parts`` (already run): their sum, peaks the max."""
    group = Step(
        name=name,
        seconds=sum(p.seconds for p in parts),
        rows=sum(p.rows for p in parts),
        rows_label=parts[0].rows_label,
        peak_rss_mb=max(p.peak_rss_mb or 0.0 for p in parts),
        peak_rss_tree_mb=max(p.peak_rss_tree_mb or 0.0 for p in parts),
        children=max(p.children for p in parts),
        ru_maxrss_mb=parts[-1].ru_maxrss_mb,
    )
    index = runner.steps.index(parts[0])
    runner.steps.insert(index, group)
    for p in parts:
        p.parent = name


# ---------------------------------------------------------------- report


def _mb(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def print_report(record: dict[str, Any]) -> None:
    steps = record["steps"]
    print(
        f"\nDemo pipeline on embedded Sail: {record['customers']:,} customers, "
        f"{record['orders']:,} orders, {record['machine']['cpus']} CPUs\n"
    )
    print(
        "| step | rows | seconds | peak RSS MB (process) | peak RSS MB (+ children) "
        "| ru_maxrss MB so far |"
    )
    print("|---|---|---|---|---|---|")
    for s in steps:
        name = s["name"] if s["parent"] is None else f"&nbsp;&nbsp;{s['name']}"
        rows = f"{s['rows']:,} {s['rows_label']}".strip() if s["rows"] else ""
        print(
            f"| {name} | {rows} | {s['seconds']:.1f} | {_mb(s['peak_rss_mb'])} "
            f"| {_mb(s['peak_rss_tree_mb'])} | {_mb(s['ru_maxrss_mb'])} |"
        )
    pipeline = sum(
        s["seconds"]
        for s in steps
        if s["parent"] is None
        and not s["name"].endswith("(setup)")
        and not s["name"].startswith("training set")
    )
    print(
        f"\npipeline (bronze + silver + gold + train_model + scoring): {pipeline:.1f}s; "
        f"the 'training set' step is measured separately and repeated inside train_model."
    )
    ts = record["training_set"]
    print(
        f"\nTraining set: {ts['rows']:,} examples (train {ts['train_rows']:,}, holdout "
        f"{ts['holdout_rows']:,}, split by time), positive rate {ts['positive_rate']:.3f}\n"
    )
    print(
        "| candidate | params | fit s | predict s (holdout) | roc_auc | f1 | accuracy "
        "| precision | recall |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    model = record["model"]
    for name, c in model["candidates"].items():
        m = c["metrics"]
        params = ", ".join(f"{k}={v}" for k, v in c["params"].items())
        best = " (best)" if name == model["best"] else ""
        print(
            f"| {name}{best} | {params} | {m['training_seconds']:.1f} "
            f"| {m['prediction_seconds']:.2f} | {m['roc_auc']:.4f} | {m['f1']:.4f} "
            f"| {m['accuracy']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} |"
        )
    print(f"\nregistered v{model['version']}: {model['note']}")
    if model["scoring_note"]:
        print(f"note: {model['scoring_note']}")
    if record["overrides"]:
        print(
            "note: candidate hyperparameters overridden for this run (not the configured ones): "
            + ", ".join(record["overrides"])
        )
    print(
        f"\npeak RSS: {record['peak_rss_mb']:,.0f} MB (ru_maxrss of this process; the embedded "
        f"engine runs in it); sampled with children: {record['peak_rss_tree_mb']:,.0f} MB "
        f"(at most {record['max_children']} child processes seen). "
        f"total {record['total_s']:.0f}s. Results: {record['results_file']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--customers",
        type=int,
        default=None,
        help=f"demo customers (default {DEFAULT_CUSTOMERS:,}: about 1.03M orders)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run on {QUICK_CUSTOMERS:,} customers; writes train_quick.json, no history",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="CANDIDATE.PARAM=VALUE",
        help="override a candidate hyperparameter of conf/models.yml for this run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    customers = args.customers or (QUICK_CUSTOMERS if args.quick else DEFAULT_CUSTOMERS)
    if customers < 200:
        parser.error("need --customers >= 200 (the holdout needs both classes)")
    os.environ.setdefault("RUST_LOG", "error")
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # never log benchmark runs to a real server
    # MLflow warns, once per logged Delta input, that it found no Databricks credentials.
    logging.getLogger("mlflow.utils.databricks_utils").setLevel(logging.ERROR)
    wall = time.perf_counter()

    tmp = tempfile.mkdtemp(prefix="lakehouse-train-bench-")
    try:
        out = run_pipeline(Path(tmp), customers, args.overrides)
    finally:
        if args.keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    steps = [vars(s) for s in out.pop("steps")]
    total_s = time.perf_counter() - wall
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    name = "train_quick.json" if args.quick else "train.json"
    record = {
        "benchmark": "train",
        "when": when,
        "commit": git_commit(),
        "machine": machine(),
        "engine": "sail",
        "quick": args.quick,
        "customers": out["landed"]["customers"],
        "orders": out["landed"]["orders"],
        **{k: v for k, v in out.items() if k != "landed"},
        "steps": steps,
        "peak_rss_mb": ru_maxrss_bytes() / MB,
        "peak_rss_tree_mb": max(s["peak_rss_tree_mb"] or 0.0 for s in steps),
        "total_s": total_s,
        "results_file": str(RESULTS / name),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(record, indent=2) + "\n")
    if not args.quick:
        history = {
            "benchmark": "train",
            "when": when,
            "commit": record["commit"],
            "customers": record["customers"],
            "orders": record["orders"],
            "cpus": os.cpu_count(),
            "seconds": {s["name"]: round(s["seconds"], 2) for s in steps if s["parent"] is None},
            "candidates": {
                n: {
                    "fit_s": round(c["metrics"]["training_seconds"], 2),
                    "roc_auc": round(c["metrics"]["roc_auc"], 4),
                }
                for n, c in record["model"]["candidates"].items()
            },
            "overrides": record["overrides"],
            "peak_rss_mb": round(record["peak_rss_mb"]),
        }
        with (RESULTS / "history.jsonl").open("a") as fh:
            fh.write(json.dumps(history) + "\n")
    print_report(record)


if __name__ == "__main__":
    main()
