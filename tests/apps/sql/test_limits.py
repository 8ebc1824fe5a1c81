"""The SQL endpoint's result caps, connection cap and isolation between clients.

Servers here serve a DuckDB mirror with no tables (the queries read ``range``), started on
127.0.0.1 with the limits each test needs; the statement timeout, cancel and memory cases
are in tests/reliability/test_sql_limits.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakehouse.apps.sql.limits import ResultBudget, SqlLimits
from lakehouse.apps.sql.mirror import DeltaMirror
from lakehouse.apps.sql.wire import PgWireServer
from tests.apps.sql.pgraw import RawClient, error_fields, kinds, rows

ENDLESS = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"
MANY_ROWS = "SELECT range, md5(range::VARCHAR) AS h FROM range(200000000)"
Serve = Callable[..., PgWireServer]


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Serve]:
    started: list[tuple[PgWireServer, DeltaMirror]] = []

    def start(password: str | None = None, **limits: Any) -> PgWireServer:
        settings = SqlLimits(**{"temp_directory": tmp_path / "tmp", **limits})
        mirror = DeltaMirror([], "lakehouse", limits=settings)
        server = PgWireServer(
            ("127.0.0.1", 0),
            connect=mirror.connect,
            database="lakehouse",
            principal="bi",
            users={"bi"},
            password=password,
            limits=settings,
        ).start()
        started.append((server, mirror))
        return server

    yield start
    for server, mirror in started:
        server.stop()
        mirror.close()


def url(server: PgWireServer, password: str = "") -> str:
    secret = f":{password}" if password else ""
    return f"postgresql://bi{secret}@127.0.0.1:{server.port}/lakehouse"


def wait_until(condition: Callable[[], bool], seconds: float) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "condition not reached in time"
        time.sleep(0.05)
    return time.monotonic() - start


def idle(server: PgWireServer) -> bool:
    return not server.supervisor.running()


def test_the_budget_counts_rows_and_bytes() -> None:
    budget = ResultBudget(max_rows=2, max_bytes=0)
    budget.take(1, 100)
    budget.take(1, 100)
    with pytest.raises(Exception, match="limit of 2 rows") as info:
        budget.take(1, 1)
    assert getattr(info.value, "sqlstate", None) == "54000" and budget.rows == 2
    small = ResultBudget(max_bytes=250)
    small.take(2, 200)
    with pytest.raises(Exception, match="limit of 250 bytes"):
        small.take(1, 51)
    ResultBudget().take(10**9, 10**12)  # no caps


def test_a_result_over_the_row_cap_sends_the_rows_then_54000(serve: Serve) -> None:
    server = serve(max_result_rows=5)
    client = RawClient(server.port)
    got = client.query("SELECT range FROM range(10) ORDER BY 1")
    assert kinds(got) == b"TDDDDDEZ"
    assert rows(got) == [[str(i)] for i in range(5)]
    error = error_fields(got)
    assert (error["C"], error["M"]) == ("54000", "result exceeds the endpoint's limit of 5 rows")
    ok = client.query("SELECT range FROM range(5)")  # at the cap exactly: no error
    assert kinds(ok) == b"TDDDDDCZ"
    client.terminate()
    with psycopg.connect(url(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="limit of 5 rows"):
            conn.execute("SELECT range FROM range(%s)", [6])  # extended protocol
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection goes on


def test_a_suspended_portal_is_one_result_for_the_cap(serve: Serve) -> None:
    server = serve(max_result_rows=5)
    client = RawClient(server.port)
    client.parse_bind("SELECT range FROM range(10) ORDER BY 1", "p")
    client.execute("p", 3)
    client.execute("p", 3)
    got = client.sync()
    assert kinds(got) == b"12DDDsDDEZ"  # 3 rows, suspended, 2 more, then the cap
    assert error_fields(got)["C"] == "54000" and len(rows(got)) == 5
    client.terminate()


def test_a_result_over_the_byte_cap_gets_54000(serve: Serve) -> None:
    server = serve(max_result_bytes=100)
    client = RawClient(server.port)
    got = client.query("SELECT 'x' || range FROM range(100) ORDER BY range")
    # each DataRow: 1 + 4 + 2 + 4 + len('xN') bytes = 13 for x0..x9: 7 rows fit in 100
    assert kinds(got) == b"T" + b"D" * 7 + b"EZ"
    assert error_fields(got)["M"] == "result exceeds the endpoint's limit of 100 bytes"
    client.terminate()


def test_too_many_clients_get_53300_before_authentication(serve: Serve) -> None:
    server = serve(password="s3cret", max_connections=2)
    first = psycopg.connect(url(server, "s3cret"), autocommit=True)
    second = psycopg.connect(url(server, "s3cret"), autocommit=True)
    with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
        psycopg.connect(url(server), connect_timeout=10)  # no password: not asked for one
    raw = RawClient(server.port)
    assert error_fields(raw.startup)["C"] == "53300"
    assert server.supervisor.connections == 2
    first.close()
    wait_until(lambda: server.supervisor.connections == 1, 5)  # the slot is freed
    with psycopg.connect(url(server, "s3cret")) as third:
        assert third.execute("SELECT 3").fetchone() == (3,)
    assert second.execute("SELECT 2").fetchone() == (2,)
    second.close()
    wait_until(lambda: server.supervisor.connections == 0, 5)


KILLED_CLIENT = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
with conn.cursor() as cur:
    cur.execute(sys.argv[2])
    print("done", flush=True)
"""


def test_a_killed_client_frees_its_work_and_others_are_served(serve: Serve) -> None:
    server = serve(statement_timeout_s=0)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, url(server), MANY_ROWS])
    try:
        wait_until(lambda: bool(server.supervisor.running()), 20)
        time.sleep(0.5)  # rows are streaming to it
        with psycopg.connect(url(server), autocommit=True) as other:
            proc.kill()
            proc.wait(timeout=10)
            assert other.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)
            assert wait_until(lambda: idle(server), 5) < 5
            assert server.supervisor.connections == 1
            assert other.execute("SELECT 7").fetchone() == (7,)
    finally:
        proc.kill()
    wait_until(lambda: server.supervisor.connections == 0, 5)


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(serve: Serve) -> None:
    server = serve(statement_timeout_s=0, send_timeout_s=1.0)
    stalled = RawClient(server.port)
    stalled.send(b"Q", MANY_ROWS.encode() + b"\x00")  # and never reads the rows
    wait_until(lambda: bool(server.supervisor.running()), 10)
    with psycopg.connect(url(server), autocommit=True) as other:
        assert other.execute("SELECT 42").fetchone() == (42,)
        assert wait_until(lambda: idle(server), 10) < 10  # the writer gave up, work freed
        wait_until(lambda: server.supervisor.connections == 1, 10)
    stalled.sock.close()


def test_a_runaway_query_times_out_while_another_client_is_answered(serve: Serve) -> None:
    server = serve(statement_timeout_s=2.0)
    outcome: dict[str, Any] = {}

    def runaway() -> None:
        with psycopg.connect(url(server), autocommit=True) as conn:
            try:
                conn.execute(ENDLESS)
            except psycopg.Error as exc:
                outcome["sqlstate"], outcome["message"] = exc.sqlstate, str(exc)

    thread = threading.Thread(target=runaway)
    thread.start()
    wait_until(lambda: bool(server.supervisor.running()), 10)
    with psycopg.connect(url(server), autocommit=True) as quick:
        started = time.monotonic()
        assert quick.execute("SELECT count(*) FROM range(100000)").fetchone() == (100000,)
        assert time.monotonic() - started < 1.0
    thread.join(timeout=20)
    assert outcome == {
        "sqlstate": "57014",
        "message": "canceling statement due to statement timeout",
    }
    assert server.supervisor.interrupted["timeout"] == 1
