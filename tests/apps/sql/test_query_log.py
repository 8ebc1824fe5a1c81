"""The SQL endpoint's query log: one exact row per statement in ``meta.sql_query_log``,
written with deltalake and read back with deltalake, a governed Spark read and the CLI."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import SparkSession

from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.apps.sql.limits import SqlLimits
from lakehouse.apps.sql.query_log import (
    ConnectionLog,
    QueryLog,
    arrow_schema,
    outcome_of,
    statement_tables,
)
from lakehouse.apps.sql.statements import SessionState
from lakehouse.config.system_tables import SystemTable, row_values, rows_frame, spark_schema
from lakehouse.governance.scope import AccessDeniedError, GovernanceScope
from lakehouse.governance.store import GovernedStore
from lakehouse.io.delta import DeltaStore
from tests.apps.sql.conftest import load, start_endpoint
from tests.apps.sql.pgraw import RawClient

LOG = "lakehouse.meta.sql_query_log"
ENDLESS = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"
DAILY = "lakehouse.gold.daily_sales"
FEATURES = "lakehouse.gold.customer_features"
COMPARED = (
    "principal",
    "client_address",
    "application_name",
    "statement",
    "tables",
    "rows_returned",
    "outcome",
    "sqlstate",
    "error",
    "pid",
)


def logged(endpoint: SqlEndpoint) -> list[dict[str, Any]]:
    """The endpoint's rows in the Delta table (deltalake), in statement order."""
    assert endpoint.query_log is not None
    location = endpoint.query_log.location
    table = DeltaTable(location).to_pyarrow_table().to_pylist()
    mine = [r for r in table if r["endpoint_id"] == endpoint.query_log.endpoint_id]
    return sorted(mine, key=lambda r: r["event_time"])


def shape(schema: Any) -> list[tuple[str, str, bool]]:
    """Names, types and nullability (not the comments Spark keeps as metadata)."""
    return [(f.name, f.dataType.simpleString(), f.nullable) for f in schema.fields]


def client_address(conn: psycopg.Connection[Any]) -> str:
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def row(statement: str, rows: int, outcome: str = "ok", **rest: Any) -> dict[str, Any]:
    return {
        "statement": statement,
        "rows_returned": rows,
        "outcome": outcome,
        "tables": rest.pop("tables", []),
        "sqlstate": rest.pop("sqlstate", None),
        "error": rest.pop("error", None),
        **rest,
    }


def _psycopg_statements(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Simple and extended protocol statements: ok, error, over the cap, canceled."""
    expected = []
    conn.execute("SELECT count(*) FROM gold.daily_sales")  # no parameters: simple protocol
    expected.append(row("SELECT count(*) FROM gold.daily_sales", 1, tables=[DAILY]))
    sql = "SELECT customer_id FROM lakehouse.gold.customer_features ORDER BY 1 LIMIT %s"
    assert len(conn.execute(sql, [3]).fetchall()) == 3  # extended protocol
    expected.append(row(sql.replace("%s", "$1"), 3, tables=[FEATURES]))
    cte = "WITH t AS (SELECT * FROM gold.daily_sales) SELECT count(*) FROM t"
    conn.execute(cte)
    expected.append(row(cte, 1, tables=[DAILY]))
    with pytest.raises(psycopg.Error) as bad:
        conn.execute("SELECT nope FROM gold.daily_sales")
    error = bad.value.diag.message_primary
    assert bad.value.sqlstate and error
    expected.append(
        row(
            "SELECT nope FROM gold.daily_sales",
            0,
            "error",
            tables=[DAILY],
            sqlstate=bad.value.sqlstate,
            error=error,
        )
    )
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        conn.execute("SELECT range FROM range(10)")
    message = "result exceeds the endpoint's limit of 5 rows"
    expected.append(row("SELECT range FROM range(10)", 5, "limit", sqlstate="54000", error=message))
    threading.Timer(0.7, conn.cancel_safe).start()
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute(ENDLESS)
    canceled = "canceling statement due to user request"
    expected.append(row(ENDLESS, 0, "canceled", sqlstate="57014", error=canceled))
    conn.execute("SET statement_timeout = '300ms'")
    expected.append(row("SET statement_timeout = '300ms'", 0))
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute(ENDLESS)
    timeout = "canceling statement due to statement timeout"
    expected.append(row(ENDLESS, 0, "timeout", sqlstate="57014", error=timeout))
    conn.execute("SELECT count(*) FROM pg_catalog.pg_namespace")
    expected.append(row("SELECT count(*) FROM pg_catalog.pg_namespace", 1))
    conn.execute("SET application_name = 'renamed'")  # logged under the name it ran with
    expected.append(row("SET application_name = 'renamed'", 0))
    conn.execute("SELECT 1")
    expected.append(row("SELECT 1", 1, application_name="renamed"))
    return expected


def _raw_portals(port: int) -> tuple[RawClient, list[dict[str, Any]]]:
    """A portal run by three Executes (one row) and a portal closed half-read (one row)."""
    client = RawClient(port, user="bi-reader", application_name="raw")
    first = "SELECT * FROM gold.daily_sales ORDER BY ALL LIMIT 4"
    client.parse_bind(first, "p")
    for limit in (2, 2, 0):
        client.execute("p", limit)
    client.sync()
    client.parse_bind("SELECT range FROM range(100)", "q")
    client.execute("q", 2)
    client.close_portal("q")
    client.sync()
    return client, [row(first, 4, tables=[DAILY]), row("SELECT range FROM range(100)", 2)]


def test_every_statement_is_one_exact_row(
    sql_project: Path, spark: SparkSession, tables: DeltaStore
) -> None:
    limits = SqlLimits(max_result_rows=5, statement_timeout_s=30)
    endpoint = start_endpoint(sql_project, "bi-reader", schemas=["gold"], limits=limits)
    try:
        conn = psycopg.connect(endpoint.info.url(), autocommit=True, application_name="qlog")
        who = {
            "principal": "bi-reader",
            "application_name": "qlog",
            "client_address": client_address(conn),
            "pid": conn.info.backend_pid,
        }
        expected = [{**who, **r} for r in _psycopg_statements(conn)]
        conn.close()
        raw, portals = _raw_portals(endpoint.info.port)
        raw_who = {**who, "application_name": "raw", "client_address": raw.address}
        raw_who["pid"] = next(
            int.from_bytes(body[:4], "big") for kind, body in raw.startup if kind == b"K"
        )
        expected += [{**raw_who, **r} for r in portals]
        raw.terminate()
        time.sleep(0.3)  # the server sees the Terminate
    finally:
        endpoint.stop()  # flushes the log
    rows = logged(endpoint)
    assert [{k: r[k] for k in COMPARED} for r in rows] == expected
    assert all(r["duration_ms"] > 0 for r in rows)
    assert 250 < rows[7]["duration_ms"] < 5000  # the statement timeout of 300 ms
    times = [r["event_time"] for r in rows]
    assert times == sorted(times) and times[0].tzinfo is not None
    assert abs(times[0] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    _spark_reads_the_same_rows(spark, sql_project, endpoint, rows)


def _spark_reads_the_same_rows(
    spark: SparkSession, sql_project: Path, endpoint: SqlEndpoint, rows: list[dict[str, Any]]
) -> None:
    """The owner reads exactly the logged rows through a governed Spark read; an analyst
    may not read the log at all."""
    project = load(sql_project)
    assert endpoint.query_log is not None
    owner = GovernedStore(
        DeltaStore(spark, project, "sail"),
        GovernanceScope(project, "alice", run_id="r-log", job="t"),
    )
    frame = owner.read(LOG)
    assert shape(frame.schema) == shape(spark_schema(SystemTable.SQL_QUERY_LOG))
    got = [
        r.asDict()
        for r in frame.where(frame.endpoint_id == endpoint.query_log.endpoint_id).collect()
    ]
    by_time = sorted(got, key=lambda r: (r["event_time"], r["duration_ms"]))
    assert [{k: r[k] for k in COMPARED} for r in by_time] == [
        {k: r[k] for k in COMPARED} for r in rows
    ]
    analyst = GovernedStore(
        DeltaStore(spark, project, "sail"),
        GovernanceScope(project, "bi-reader", run_id="r-log", job="t"),
    )
    with pytest.raises(AccessDeniedError, match="may not SELECT"):
        analyst.read(LOG)


def test_no_query_log_writes_nothing(sql_project: Path) -> None:
    location = load(sql_project).system_table(SystemTable.SQL_QUERY_LOG).location
    before = DeltaTable(location).version()
    endpoint = start_endpoint(sql_project, "bi-reader", schemas=["gold"], query_log=False)
    try:
        with psycopg.connect(endpoint.info.url(), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        endpoint.stop()
    assert endpoint.query_log is None and DeltaTable(location).version() == before


LAKEHOUSE = str(Path(sys.executable).with_name("lakehouse"))


def _serve(sql_project: Path, port: int, *options: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LAKEHOUSE_PRINCIPAL": "bi-reader"}
    cmd = [LAKEHOUSE, "sql", "serve", "--port", str(port), "--schema", "gold", *options]
    cmd += ["-C", str(sql_project), "--var", f"data_root={sql_project / 'data'}"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or "Ctrl-C stops" in line:
            break
    return proc


def test_sql_serve_limit_options_and_the_log_read_with_lakehouse_sql(sql_project: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = _serve(sql_project, port, "--max-result-rows", "2", "--max-connections", "1")
    url = f"postgresql://bi-reader@127.0.0.1:{port}/lakehouse"
    marker = "SELECT range AS cli_marker FROM range(3)"
    try:
        with psycopg.connect(url, autocommit=True, application_name="cli-test") as conn:
            with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="limit of 2 rows"):
                conn.execute(marker)
            with pytest.raises(psycopg.OperationalError, match="too many clients"):
                psycopg.connect(url, connect_timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    query = (
        "SELECT principal, application_name, rows_returned, outcome, sqlstate "
        f"FROM {LOG} WHERE statement = '{marker}'"
    )
    cmd = [LAKEHOUSE, "sql", query, "-o", "csv", "-p", "alice", "-C", str(sql_project)]
    cmd += ["--var", f"data_root={sql_project / 'data'}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "principal,application_name,rows_returned,outcome,sqlstate",
        "bi-reader,cli-test,2,limit,54000",
    ]


# ---------------------------------------------------------------- the writer alone


def _state(pid: int = 7) -> SessionState:
    return SessionState(
        user="bob",
        database="lakehouse",
        connect=lambda: None,  # type: ignore[arg-type,return-value]
        pid=pid,
        principal="bob",
        client_address="127.0.0.1:5000",
        application_name="unit",
    )


def _log(location: str, **options: Any) -> QueryLog:
    served = {DAILY, FEATURES}
    return QueryLog(location, database="lakehouse", served=lambda p: served, **options)


def test_created_by_deltalake_first_then_spark_and_deltalake_agree(
    spark: SparkSession, tmp_path: Path
) -> None:
    location = str(tmp_path / "sql_query_log")
    query_log = _log(location)
    connection = ConnectionLog(query_log, _state())
    connection.begin(None, "SELECT * FROM gold.daily_sales")
    connection.end(None, 12)
    assert query_log.flush() == 1
    frame = spark.read.format("delta").load(location)
    assert shape(frame.schema) == shape(spark_schema(SystemTable.SQL_QUERY_LOG))
    first = frame.collect()[0]
    assert (first.tables, first.rows_returned, first.outcome) == ([DAILY], 12, "ok")
    spark_row = SystemTable.SQL_QUERY_LOG.row_type(
        **{**first.asDict(), "statement": "from spark", "pid": 8}
    )
    rows_frame(spark, SystemTable.SQL_QUERY_LOG, [spark_row]).write.format("delta").mode(
        "append"
    ).save(location)
    connection.begin(None, "SELECT 1")
    connection.end(None, 1)
    assert query_log.flush() == 1  # appends after Spark's commit, same schema
    statements = sorted(DeltaTable(location).to_pyarrow_table().column("statement").to_pylist())
    assert statements == ["SELECT * FROM gold.daily_sales", "SELECT 1", "from spark"]
    assert DeltaTable(location).schema().to_arrow() == arrow_schema(SystemTable.SQL_QUERY_LOG)


def test_a_failed_flush_keeps_the_rows_for_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the table's directory should be")
    query_log = _log(str(blocker / "log"))
    connection = ConnectionLog(query_log, _state())
    for i in range(3):
        connection.begin(None, f"SELECT {i}")
        connection.end(None, 1)
    with caplog.at_level(logging.WARNING, logger="lakehouse.apps.sql.query_log"):
        assert query_log.flush() == 0
    assert "could not append 3 rows" in caplog.text and query_log.pending() == 3
    connection.begin(None, "SELECT 3")
    connection.end(None, 1)
    blocker.unlink()
    assert query_log.flush() == 4 and query_log.pending() == 0
    table = DeltaTable(str(blocker / "log")).to_pyarrow_table()
    assert table.column("statement").to_pylist() == [f"SELECT {i}" for i in range(4)]


def test_rows_are_flushed_by_size_and_by_time(tmp_path: Path) -> None:
    by_size = _log(str(tmp_path / "a"), flush_rows=3, flush_interval_s=600).start()
    by_time = _log(str(tmp_path / "b"), flush_rows=1000, flush_interval_s=0.3).start()
    try:
        for query_log, count in ((by_size, 3), (by_time, 1)):
            connection = ConnectionLog(query_log, _state())
            for i in range(count):
                connection.begin(None, f"SELECT {i}")
                connection.end(None, 1)
        deadline = time.monotonic() + 10
        while (by_size.written, by_time.written) != (3, 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (by_size.written, by_time.written) == (3, 1)
    finally:
        by_size.close()
        by_time.close()


def test_a_statement_never_waits_for_a_slow_write(tmp_path: Path) -> None:
    query_log = _log(str(tmp_path / "slow"))
    started = threading.Event()
    release = threading.Event()
    real_write = query_log._write

    def slow_write(rows: list[Any]) -> None:
        started.set()
        release.wait(10)
        real_write(rows)

    query_log._write = slow_write  # type: ignore[method-assign]
    connection = ConnectionLog(query_log, _state())
    connection.begin(None, "SELECT 1")
    connection.end(None, 1)
    flusher = threading.Thread(target=query_log.flush)
    flusher.start()
    assert started.wait(5)
    begun = time.monotonic()
    connection.begin(None, "SELECT 2")  # while the write hangs
    connection.end(None, 1)
    assert time.monotonic() - begun < 0.1 and query_log.pending() == 1
    release.set()
    flusher.join(10)
    assert query_log.flush() == 1 and query_log.written == 2


def test_tables_are_resolved_to_catalog_names() -> None:
    served = {DAILY, FEATURES}

    def tables(sql: str) -> list[str]:
        return statement_tables(sql, "lakehouse", served)

    assert tables(
        "SELECT * FROM gold.daily_sales d JOIN lakehouse.gold.customer_features f ON true"
    ) == [
        FEATURES,
        DAILY,
    ]
    assert tables('SELECT * FROM "gold"."DAILY_SALES"') == [DAILY]
    assert tables("WITH daily_sales AS (SELECT 1) SELECT * FROM daily_sales") == []
    assert tables("SELECT * FROM (SELECT * FROM gold.daily_sales) s WHERE 1 IN (SELECT 1)") == [
        DAILY
    ]
    assert tables("DECLARE c CURSOR FOR SELECT * FROM gold.customer_features") == [FEATURES]
    assert tables("SELECT * FROM pg_catalog.pg_class, information_schema.tables") == []
    assert tables("SELECT * FROM gold.not_served, other.gold.daily_sales") == []
    assert tables("this is not SQL ((") == []
    assert tables("SET statement_timeout = 5") == []


def test_outcomes_from_sqlstates() -> None:
    from lakehouse.apps.sql.codec import PgError

    assert outcome_of(None) == "ok"
    assert outcome_of(PgError("canceling statement due to statement timeout", "57014")) == "timeout"
    assert outcome_of(PgError("canceling statement due to user request", "57014")) == "canceled"
    assert outcome_of(PgError("client connection lost", "08006")) == "canceled"
    assert outcome_of(PgError("result exceeds the endpoint's limit of 5 rows", "54000")) == "limit"
    assert outcome_of(PgError("boom", "42703")) == "error"


def test_the_arrow_schema_is_the_spark_schema(tmp_path: Path) -> None:
    schema = arrow_schema(SystemTable.SQL_QUERY_LOG)
    rows = [
        row_values(
            SystemTable.SQL_QUERY_LOG.row_type(
                dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "p",
                "h:1",
                "a",
                "s",
                ["t"],
                1,
                1.0,
                "ok",
                None,
                None,
                1,
                "e",
            )
        )
    ]
    table = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)
    write_deltalake(str(tmp_path / "t"), table)
    fields = {f.name: f.nullable for f in schema}
    assert fields == {c.name: c.nullable for c in SystemTable.SQL_QUERY_LOG.spec.columns}
