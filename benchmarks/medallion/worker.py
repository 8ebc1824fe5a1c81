"""One measured run of one system in a fresh process: ``bench.py`` starts it once per
system, phase and repetition, and reads the JSON it writes.

    python benchmarks/medallion/worker.py SYSTEM --root DIR --landing DIR --out FILE.json

    python benchmarks/medallion/worker.py ours-cluster ... [--cluster-workers N]

SYSTEM: ``ours`` (the bundle's ``medallion`` job on the ``local`` target: embedded Sail,
Delta), ``ours-cluster`` (the same job on the ``cluster`` target: Sail local-cluster mode, 2
workers unless ``--cluster-workers``), ``jvm`` (the same job on the ``jvm`` target:
JVM Spark local[2] + delta-spark, Delta), ``jvm-connect`` (the same job on the ``connect``
target, a Spark Connect client of a JVM Spark Connect server this process starts on 127.0.0.1
with the ``jvm`` target's engine settings and stops after), ``polars`` (polars_peer.py),
``duckdb`` (duckdb_peer.py), ``plain`` (Bronze only: the engine's own reader + a Delta write of
the same drops, on the same embedded Sail session kind as ``ours``: the floor the Bronze layer
is measured against). Peak RSS is sampled over this process and all its descendants
(the JVM, the Connect server and Sail's workers are child processes); the Connect server's
start is counted in ``start``.

The ``jvm`` run gets its Delta jars the way the ``spark`` engine does: ``engine.delta.jars_dir``,
else ``$LAKEHOUSE_DELTA_JARS``; when that is unset and ``build/jars/delta`` (``make jars``)
exists, the worker sets the variable to it; otherwise the engine resolves delta-spark from
Maven Central (``spark.jars.packages``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LOCAL_DELTA_JARS = REPO / "build" / "jars" / "delta"  # where `make jars` puts them
sys.path.insert(0, str(HERE))

from harness import LayerTimes, TreeRss  # noqa: E402

if TYPE_CHECKING:
    from lakehouse.config import Project

LAYER_OF_TASK = {"ingest_bronze": "bronze", "refine_silver": "silver", "build_gold": "gold"}


def use_local_delta_jars() -> None:
    """Point ``$LAKEHOUSE_DELTA_JARS`` at ``build/jars/delta`` if it is unset and that exists."""
    from lakehouse.engine import ENV_DELTA_JARS

    if not os.environ.get(ENV_DELTA_JARS) and LOCAL_DELTA_JARS.is_dir():
        os.environ[ENV_DELTA_JARS] = str(LOCAL_DELTA_JARS)


def delta_jars_used(project: Project) -> dict[str, Any]:
    """Where a ``spark`` target's Delta jars come from (recorded with the result)."""
    from lakehouse.engine import delta_classpath

    classpath = delta_classpath(project.engine)
    if classpath.jars:
        return {"delta_jars": [Path(j).name for j in classpath.jars]}
    if classpath.packages:
        return {"delta_packages": list(classpath.packages)}
    return {"delta_jars": "from the target's spark.jars / spark.jars.packages conf"}


def load(target: str, root: Path, landing: Path, **variables: str) -> Project:
    from lakehouse.config.loader import load_project

    overrides = {"data_root": str(root), "landing": str(landing), **variables}
    return load_project(HERE, target=target, var_overrides=overrides)


def run_bundle(
    target: str,
    root: Path,
    landing: Path,
    times: LayerTimes,
    *,
    workers: int | None = None,
    **variables: str,
) -> dict[str, Any]:
    """The project's own job (bundle runner, in-process tasks) on ``target``."""
    from lakehouse.bundle.runner import run_job
    from lakehouse.engine import build_session

    project = load(target, root, landing, **variables)
    if workers is not None:
        engine = project.engine.model_copy(update={"workers": workers})
        project = dataclasses.replace(project, engine=engine)
    jars = delta_jars_used(project) if project.engine.kind == "spark" else {}
    with times.layer("start"):
        session = build_session(
            project.engine,
            warehouse_dir=root / "warehouse",
            app_name="medallion-bench",
            log_dir=root / "logs",
        )
    try:
        open_layer: dict[str, Any] = {}

        def on_event(event: str, task: Any, outcome: Any) -> None:
            layer = LAYER_OF_TASK[task.task_key]
            if event == "started":
                ctx = times.layer(layer)
                ctx.__enter__()
                open_layer[layer] = ctx
            elif layer in open_layer:
                open_layer.pop(layer).__exit__(None, None, None)

        started = time.perf_counter()
        report = run_job(project, "medallion", session, on_event=on_event)
        total = time.perf_counter() - started
        if not report.succeeded:
            failed = [f"{t.task_key}: {t.error}" for t in report.tasks if t.status != "SUCCESS"]
            raise SystemExit(f"{target}: the job failed: {'; '.join(failed)}")
        times.seconds["overhead"] = total - sum(
            times.seconds.get(layer, 0.0) for layer in LAYER_OF_TASK.values()
        )
        return {
            "counters": report.counters,
            "engine": session.kind,
            "engine_mode": session.mode,
            "format": "delta",
            **jars,
        }
    finally:
        session.stop()


def run_plain(root: Path, landing: Path, times: LayerTimes) -> dict[str, Any]:
    """Bronze's floor: every source's drops read by the engine's own CSV / JSON reader under the
    Bronze table's declared columns and appended to a Delta table, one write per source: no
    batch ids, no bad-line handling, no processed-files log."""
    from lakehouse.config.sources import BRONZE_METADATA_COLUMNS, FileSource
    from lakehouse.engine import build_session

    metadata = {c.name for c in BRONZE_METADATA_COLUMNS}

    project = load("local", root, landing)
    with times.layer("start"):
        session = build_session(
            project.engine,
            warehouse_dir=root / "warehouse",
            app_name="medallion-bench-plain",
            log_dir=root / "logs",
        )
    spark = session.spark
    try:
        with times.layer("bronze"):
            for name, source in sorted(project.sources.items()):
                assert isinstance(source, FileSource)
                target = project.source_handle(name).target
                schema = ", ".join(
                    f"`{c.name}` {c.type}" for c in target.spec.columns if c.name not in metadata
                )
                path = f"{source.path}/{source.glob}"
                reader = spark.read.schema(schema)
                if source.format == "csv":
                    frame = (
                        reader.option("sep", source.csv.delimiter)
                        .option("header", source.csv.header)
                        .option("mode", "FAILFAST")
                        .csv(path)
                    )
                else:
                    frame = reader.option("mode", "FAILFAST").json(path)
                frame.write.format("delta").mode("append").save(str(root / "plain" / name))
        return {"engine": session.kind, "engine_mode": session.mode, "format": "delta"}
    finally:
        session.stop()


def run_on_connect_server(root: Path, landing: Path, times: LayerTimes) -> dict[str, Any]:
    """The job on the ``connect`` target against a JVM Spark Connect server started here (with
    the ``jvm`` target's engine: master, memory, conf, Delta jars) and stopped after."""
    from lakehouse.bundle.connect_server import spark_connect_server

    use_local_delta_jars()
    server_project = load("jvm", root, landing)
    with contextlib.ExitStack() as stack:
        with times.layer("start"):
            server = stack.enter_context(
                spark_connect_server(
                    root / "connect-server", server_project.engine, name="medallion-bench"
                )
            )
        info = run_bundle("connect", root, landing, times, connect_url=server.url)
    server_info = {"server_start_s": round(server.start_seconds, 2)}
    return {**info, **delta_jars_used(server_project), **server_info}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "system",
        choices=["ours", "ours-cluster", "jvm", "jvm-connect", "polars", "duckdb", "plain"],
    )
    parser.add_argument("--root", type=Path, required=True, help="tables and state")
    parser.add_argument("--landing", type=Path, required=True, help="the raw drops")
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    parser.add_argument(
        "--cluster-workers", type=int, default=None, help="ours-cluster: Sail worker processes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    rss = TreeRss()
    rss.start()
    times = LayerTimes(rss)
    info: dict[str, Any]
    if args.system == "ours":
        info = run_bundle("local", args.root, args.landing, times)
    elif args.system == "ours-cluster":
        info = run_bundle("cluster", args.root, args.landing, times, workers=args.cluster_workers)
    elif args.system == "jvm-connect":
        info = run_on_connect_server(args.root, args.landing, times)
    elif args.system == "jvm":
        use_local_delta_jars()
        info = run_bundle("jvm", args.root, args.landing, times)
    elif args.system == "plain":
        info = run_plain(args.root, args.landing, times)
    elif args.system == "polars":
        import polars_peer

        info = polars_peer.run(args.root, args.landing, times)
    else:
        import duckdb_peer

        info = duckdb_peer.run(args.root, args.landing, times)
    rss.stop()
    result = {"system": args.system, **times.as_dict(), **info}
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
