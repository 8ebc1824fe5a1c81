"""The SQL endpoint (`lakehouse sql serve`): concurrent BI queries, a 1M-row fetch, start-up.

1. Builds the demo project (sample files -> Bronze -> Silver -> Gold) in a temporary
   directory with an embedded Sail session, then stops the session: the endpoint has none.
2. **start-up**: ``SqlEndpoint(...)`` constructed (Gold tables loaded into the DuckDB
   mirror) and started, until the first query is answered; ``--startups`` rounds, median.
   Also with a logins file of 3 principals (bi-reader, alice, carol; SCRAM-SHA-256): until
   each of the three has logged in and answered its first query (its mirror is made then).
3. **concurrency**: ``--clients`` psycopg 3 clients (threads of one client process, so the
   clients do not share the server's interpreter) each run a Gold aggregate ``--queries``
   times against one endpoint with logins (half as bi-reader, half as alice, SCRAM, the
   query log on): p50/p99 latency per query and queries/s over the whole run.
4. **1M-row fetch**: ``--rows`` rows of five columns (bigint, int, double, text, date;
   DuckDB's ``range``, so the figure is the endpoint's encoding and protocol, not a scan):
   plain ``cursor.execute`` + ``fetchall`` in text format vs ``COPY (...) TO STDOUT (FORMAT
   binary)`` through ``cursor.copy`` and ADBC's ``fetch_arrow_table`` (which uses that COPY);
   rows/s and MB/s of the bytes received. A server
   without COPY prints ``COPY: not supported by this server``.

Prints a markdown table and writes JSON under benchmarks/results/.

    python benchmarks/sql_endpoint.py [--clients 20] [--queries 25] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, git_commit, machine, timed

RESULTS = Path(__file__).resolve().parent / "results"
PRINCIPAL = "bi-reader"
SECRETS = {"bi-reader": "bench-bi-reader", "alice": "bench-alice", "carol": "bench-carol"}
AGGREGATE = (
    "SELECT region, order_month, sum(revenue) AS revenue, sum(orders) AS orders "
    "FROM gold.daily_sales GROUP BY 1, 2 ORDER BY 1, 2"
)
WIDE = (
    "SELECT i AS id, (i % 1000)::INTEGER AS k, i * 0.5 AS v, 'customer_' || i AS name, "
    "DATE '2024-01-01' + (i % 365)::INTEGER AS day FROM range({rows}) t(i)"
)

# Run in a separate process: N client threads, each its own connection.
CLIENTS = """
import json, sys, threading, time, psycopg
urls, clients, queries, sql = sys.argv[1].split(), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
latencies, errors, barrier = [], [], threading.Barrier(clients + 1)
def client(url):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql).fetchall()  # warm-up, not timed
        barrier.wait()
        for _ in range(queries):
            t = time.perf_counter()
            try:
                conn.execute(sql).fetchall()
            except psycopg.Error as exc:
                errors.append(str(exc))
            latencies.append(time.perf_counter() - t)
threads = [threading.Thread(target=client, args=(urls[i % len(urls)],)) for i in range(clients)]
for t in threads: t.start()
barrier.wait()
started = time.perf_counter()
for t in threads: t.join()
print(json.dumps({"wall_s": time.perf_counter() - started, "latencies": latencies,
                  "errors": errors}))
"""


def build_demo(work: Path) -> Path:
    """The demo bundle with Gold built, under ``work/project`` (data under ``work/data``)."""
    from lakehouse.bundle.context import RunReport, TaskContext
    from lakehouse.config import load_project
    from lakehouse.engine import build_session
    from lakehouse.io.delta import DeltaStore
    from lakehouse.pipelines.bronze.ingest import ingest_source
    from lakehouse.pipelines.gold import build_gold
    from lakehouse.pipelines.silver.refine import refine_table
    from lakehouse.samples.generator import land_sample_files

    root = work / "project"
    root.mkdir(parents=True)
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, root / name)
    project = load_project(root, var_overrides={"data_root": str(work / "data")})
    land_sample_files(work / "data" / "landing")
    session = build_session(project.engine, warehouse_dir=work / "warehouse", app_name="bench")
    try:
        tables = DeltaStore(session.spark, project, session.kind)
        tables.register_all()
        report = RunReport(job="bench-sql", run_id="bench", target="local", engine=session.kind)
        ctx = TaskContext(session.spark, project, tables, report, task_key="bench")
        for source in ("customers_drop", "orders_drop"):
            ingest_source(ctx, source)
        for table in ("customers", "orders"):
            refine_table(ctx, f"{project.catalog.name}.silver.{table}")
        build_gold(ctx)
    finally:
        session.stop()
    return root


def start_endpoint(root: Path, work: Path, logins: bool = False) -> Any:
    """The endpoint over Gold: as bi-reader alone, or with ``logins`` for 3 principals."""
    from lakehouse.apps.sql.auth import SqlLogins
    from lakehouse.apps.sql.endpoint import SqlEndpoint
    from lakehouse.config import load_project
    from lakehouse.governance.scope import GovernanceScope

    project = load_project(root, var_overrides={"data_root": str(work / "data")})
    governance = GovernanceScope(project, PRINCIPAL, run_id="bench", job="bench-sql")
    if not logins:
        return SqlEndpoint(project, governance, schemas=["gold", "silver"], port=0).start()
    path = work / "logins.yml"
    path.write_text(json.dumps({"logins": {p: {"secret": s} for p, s in SECRETS.items()}}))
    path.chmod(0o600)
    access = SqlLogins.load(project, path)
    return SqlEndpoint(
        project, governance, schemas=["gold", "silver"], port=0, logins=access
    ).start()


def login_url(endpoint: Any, principal: str) -> str:
    info = endpoint.info
    return f"postgresql://{principal}:{SECRETS[principal]}@{info.host}:{info.port}/{info.database}"


FIRST_QUERY = {  # what each principal may read (carol: silver.customers only)
    "bi-reader": "SELECT count(*) FROM gold.daily_sales",
    "alice": "SELECT count(*) FROM gold.daily_sales",
    "carol": "SELECT count(*) FROM silver.customers",
}


def measure_startup(root: Path, work: Path, rounds: int) -> dict[str, Any]:
    import psycopg

    def one(logins: bool) -> float:
        started = time.perf_counter()
        endpoint = start_endpoint(root, work, logins)
        try:
            if logins:
                for principal, sql in FIRST_QUERY.items():
                    with psycopg.connect(login_url(endpoint, principal)) as conn:
                        conn.execute(sql).fetchone()
            else:
                with psycopg.connect(endpoint.info.url(), autocommit=True) as conn:
                    conn.execute(FIRST_QUERY[PRINCIPAL]).fetchone()
            return time.perf_counter() - started
        finally:
            endpoint.stop()

    single = [one(False) for _ in range(rounds)]
    three = [one(True) for _ in range(rounds)]
    return {
        "median_s": statistics.median(single),
        "min_s": min(single),
        "three_median_s": statistics.median(three),
        "three_min_s": min(three),
        "rounds": rounds,
    }


def measure_concurrency(url: str, clients: int, queries: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CLIENTS, url, str(clients), str(queries), AGGREGATE],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    got = json.loads(out.stdout)
    latencies = sorted(got["latencies"])
    if got["errors"]:
        raise SystemExit(f"{len(got['errors'])} queries failed: {got['errors'][0]}")
    return {
        "clients": clients,
        "queries": len(latencies),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "qps": len(latencies) / got["wall_s"],
    }


def measure_fetch(url: str, rows: int) -> dict[str, Any]:
    """Plain text fetch vs binary COPY, from a client process (not the server's)."""
    out = subprocess.run(
        [sys.executable, __file__, "--fetch-from", url, "--rows", str(rows)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return dict(json.loads(out.stdout))


def fetch_client(url: str, rows: int) -> dict[str, Any]:
    """Plain text fetch vs binary COPY of the same ``rows`` rows (in this process)."""
    import psycopg

    sql = WIDE.format(rows=rows)
    out: dict[str, Any] = {"rows": rows}
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        fetched = conn.execute(sql).fetchall()
        seconds = time.perf_counter() - started
        assert len(fetched) == rows, len(fetched)
        out["plain"] = {"s": seconds, "rows_per_s": rows / seconds}
        del fetched
        try:
            started = time.perf_counter()
            received = 0
            with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
                for block in copy:
                    received += len(block)
            seconds = time.perf_counter() - started
            out["copy_binary"] = {
                "s": seconds,
                "rows_per_s": rows / seconds,
                "mb": received / 1e6,
                "mb_per_s": received / 1e6 / seconds,
            }
        except psycopg.Error as exc:
            out["copy_binary"] = None
            out["copy_error"] = str(exc).splitlines()[0]
    out["adbc"] = adbc_fetch(url, sql, rows)
    return out


def adbc_fetch(url: str, sql: str, rows: int) -> dict[str, Any] | None:
    """The same rows as an Arrow table through ADBC's PostgreSQL driver (COPY binary)."""
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        return None
    started = time.perf_counter()
    with adbc.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        table = cursor.fetch_arrow_table()
    seconds = time.perf_counter() - started
    assert table.num_rows == rows, table.num_rows
    return {"s": seconds, "rows_per_s": rows / seconds}


def markdown(record: dict[str, Any]) -> str:
    start, conc, fetch = record["startup"], record["concurrency"], record["fetch"]
    lines = [
        "| measurement | result |",
        "|---|---|",
        f"| start-up (construct + start + first query), median of {start['rounds']} "
        f"| {start['median_s']:.2f} s (min {start['min_s']:.2f} s) |",
        f"| start-up with 3 principals (logins; until each answered its first query) "
        f"| {start['three_median_s']:.2f} s (min {start['three_min_s']:.2f} s) |",
        f"| {conc['clients']} clients x Gold aggregate: p50 / p99 "
        f"| {conc['p50_ms']:.1f} ms / {conc['p99_ms']:.1f} ms |",
        f"| {conc['clients']} clients x Gold aggregate: throughput "
        f"| {conc['qps']:.0f} queries/s ({conc['queries']} queries) |",
        f"| {fetch['rows']:,} rows, plain fetch (text) "
        f"| {fetch['plain']['s']:.2f} s, {fetch['plain']['rows_per_s']:,.0f} rows/s |",
    ]
    copy = fetch["copy_binary"]
    if copy is None:
        lines.append(
            f"| {fetch['rows']:,} rows, COPY binary | COPY: not supported by this server |"
        )
    else:
        lines.append(
            f"| {fetch['rows']:,} rows, COPY binary | {copy['s']:.2f} s, "
            f"{copy['rows_per_s']:,.0f} rows/s, {copy['mb_per_s']:.0f} MB/s "
            f"(COPY / plain: {copy['s'] / fetch['plain']['s']:.2f}x time) |"
        )
    got = fetch.get("adbc")
    if got is not None:
        lines.append(
            f"| {fetch['rows']:,} rows, ADBC fetch_arrow_table (COPY binary) "
            f"| {got['s']:.2f} s, {got['rows_per_s']:,.0f} rows/s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--queries", type=int, default=25, help="per client")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--startups", type=int, default=3)
    parser.add_argument("--fetch-from", help=argparse.SUPPRESS)  # the fetch client's URL
    args = parser.parse_args()
    if args.fetch_from:
        print(json.dumps(fetch_client(args.fetch_from, args.rows)))
        return
    work = Path(tempfile.mkdtemp(prefix="lakehouse-sql-bench-"))
    try:
        root = timed("demo project (bronze + silver + gold)", lambda: build_demo(work))
        startup = timed("start-up", lambda: measure_startup(root, work, args.startups))
        endpoint = start_endpoint(root, work, logins=True)
        try:
            urls = " ".join(login_url(endpoint, p) for p in ("bi-reader", "alice"))
            conc = timed(
                "concurrency", lambda: measure_concurrency(urls, args.clients, args.queries)
            )
            fetch = timed("fetch", lambda: measure_fetch(login_url(endpoint, "alice"), args.rows))
        finally:
            endpoint.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "commit": git_commit(),
        "machine": machine(),
        "startup": startup,
        "concurrency": conc,
        "fetch": fetch,
    }
    print(markdown(record))
    if fetch["copy_binary"] is None:
        print(f"\nCOPY: not supported by this server ({fetch['copy_error']})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sql_endpoint.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
