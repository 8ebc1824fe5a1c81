"""The SQL endpoint's statement limits through real clients (psycopg 3, psql) on 127.0.0.1.

Each case starts a server (a DuckDB mirror with no tables: the queries read ``range``) with
one worker thread and asserts both what the client sees (SQLSTATE) and what the server
does (the statement is gone from the supervisor, CPU work stops).
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakehouse.apps.sql.limits import SqlLimits
from lakehouse.apps.sql.mirror import DeltaMirror
from lakehouse.apps.sql.wire import CANCEL_REQUEST, PgWireServer

PSQL = shutil.which("psql") or "/usr/bin/psql"
# a cartesian product that keeps one core busy for minutes
ENDLESS = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"
Serve = Callable[..., PgWireServer]


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start servers with the given limits; stop them after the test."""
    started: list[tuple[PgWireServer, DeltaMirror]] = []

    def start(**limits: Any) -> PgWireServer:
        settings = SqlLimits(**{"temp_directory": tmp_path / "tmp", "threads": 1, **limits})
        mirror = DeltaMirror([], "lakehouse", limits=settings)
        server = PgWireServer(
            ("127.0.0.1", 0),
            connect=mirror.connect,
            database="lakehouse",
            principal="bi",
            users={"bi"},
            limits=settings,
        ).start()
        started.append((server, mirror))
        return server

    yield start
    for server, mirror in started:
        server.stop()
        mirror.close()


def url(server: PgWireServer) -> str:
    return f"postgresql://bi@127.0.0.1:{server.port}/lakehouse"


def wait_until(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition`` held (fails after ``seconds``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "condition not reached in time"
        time.sleep(0.05)
    return time.monotonic() - start


def idle(server: PgWireServer) -> bool:
    return not server.supervisor.running()


def test_a_statement_over_the_timeout_is_canceled_with_57014(serve: Serve) -> None:
    server = serve(statement_timeout_s=1.0)
    with psycopg.connect(url(server), autocommit=True) as conn:
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout") as info:
            conn.execute(ENDLESS)
        assert info.value.sqlstate == "57014"
        assert 0.9 < time.monotonic() - started < 5
        assert conn.execute("SELECT 42").fetchone() == (42,)  # the connection goes on
    assert server.supervisor.interrupted["timeout"] == 1 and idle(server)


def test_a_session_may_lower_the_timeout_but_not_raise_it(serve: Serve) -> None:
    server = serve(statement_timeout_s=2.0)
    with psycopg.connect(url(server), autocommit=True) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2s",)
        conn.execute("SET statement_timeout = '300ms'")
        assert conn.execute("SHOW statement_timeout").fetchone() == ("300ms",)
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(ENDLESS)
        assert time.monotonic() - started < 1.8
        conn.execute("SET statement_timeout = 600000")  # 10 minutes: the server's 2 s holds
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2s",)
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SET statement_timeout = 'soon'")


def test_a_fetch_from_a_sql_cursor_is_held_to_the_timeout(serve: Serve) -> None:
    server = serve(statement_timeout_s=1.0)
    rows = (  # 3,000 rows at once, then a search that finds nothing
        "SELECT range FROM range(3000) UNION ALL SELECT a.range FROM range(1000000) a,"
        " range(1000000) b WHERE a.range * b.range < 0"
    )
    with psycopg.connect(url(server)) as conn:  # a transaction, as SQL cursors need
        conn.execute(f"DECLARE c CURSOR FOR {rows}")  # returns with the first rows: they stream
        assert len(conn.execute("FETCH 100 FROM c").fetchall()) == 100
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute("FETCH 5000 FROM c")  # the search for more rows is the work
        assert time.monotonic() - started < 5
    assert wait_until(lambda: idle(server), 3) < 3


# A client in its own process: psycopg's legacy ``conn.cancel()`` (libpq's PQcancel) holds
# the GIL while it waits for the server to close the cancel connection, which would
# deadlock against a server in the same process.
CLIENT = """
import sys, threading, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
def cancel():
    time.sleep(0.5)
    conn.cancel_safe() if sys.argv[2] == "cancel_safe" else conn.cancel()
threading.Thread(target=cancel).start()
started = time.monotonic()
try:
    conn.execute(sys.argv[3])
except psycopg.Error as exc:
    print(exc.sqlstate, round(time.monotonic() - started, 1), str(exc).splitlines()[0], sep="|")
print(conn.execute("SELECT 1").fetchone()[0])
"""


@pytest.mark.parametrize("how", ["cancel_safe", "cancel"])
def test_psycopg_cancel_stops_the_running_query(serve: Serve, how: str) -> None:
    server = serve(statement_timeout_s=0)  # no timeout: only the cancel can stop it
    got = subprocess.run(
        [sys.executable, "-c", CLIENT, url(server), how, ENDLESS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert got.returncode == 0, got.stderr
    error, after = got.stdout.splitlines()
    sqlstate, seconds, message = error.split("|")
    assert sqlstate == "57014" and message == "canceling statement due to user request"
    assert float(seconds) < 5
    assert after == "1"  # the connection goes on after the cancel
    assert server.supervisor.interrupted["cancel"] == 1


def _raw_cancel(port: int, pid: int, secret: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(struct.pack("!iiI", 16, CANCEL_REQUEST, pid) + secret)
        assert sock.recv(1) == b""  # the server answers a cancel request by closing


def test_backend_keys_are_random_and_a_wrong_key_cancels_nothing(serve: Serve) -> None:
    server = serve(statement_timeout_s=1.5)
    with (
        psycopg.connect(url(server), autocommit=True) as conn,
        psycopg.connect(url(server)) as other,
    ):
        pid = conn.info.backend_pid
        assert pid != other.info.backend_pid and abs(pid - other.info.backend_pid) != 1
        for guess in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x00\x00\x00\x01"):
            threading.Timer(0.3, _raw_cancel, (server.port, pid, guess)).start()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute(ENDLESS)  # ran to the timeout: no guessed key canceled it
    assert server.supervisor.interrupted == {"timeout": 1}


def _start_psql(server: PgWireServer) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PSQL, "-X", "-v", "ON_ERROR_STOP=1", "-c", ENDLESS, url(server)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"},
    )


def test_ctrl_c_in_psql_cancels_the_query(serve: Serve) -> None:
    server = serve(statement_timeout_s=0)
    proc = _start_psql(server)
    wait_until(lambda: bool(server.supervisor.running()), 10)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends psql
    _, err = proc.communicate(timeout=10)
    assert proc.returncode != 0
    assert "canceling statement due to user request" in err
    assert wait_until(lambda: idle(server), 3) < 3
    assert server.supervisor.interrupted["cancel"] == 1


def _cpu_seconds() -> float:
    return time.process_time()


def test_a_query_whose_client_is_killed_stops_within_seconds(serve: Serve) -> None:
    server = serve(statement_timeout_s=0)
    proc = _start_psql(server)
    wait_until(lambda: bool(server.supervisor.running()), 10)
    time.sleep(0.3)
    proc.kill()  # no Terminate message, no cancel: the socket just closes
    proc.communicate(timeout=10)
    assert wait_until(lambda: idle(server), 3) < 3
    assert server.supervisor.interrupted["disconnect"] == 1
    before = _cpu_seconds()
    time.sleep(1.0)
    assert _cpu_seconds() - before < 0.5  # no core keeps working for the gone client


def test_a_query_over_the_memory_limit_gets_53200_and_the_server_goes_on(serve: Serve) -> None:
    server = serve(memory_limit_mb=64, statement_timeout_s=30)
    with psycopg.connect(url(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.OutOfMemory, match="memory limit") as info:
            conn.execute("SELECT length(string_agg(range::VARCHAR, ',')) FROM range(30000000)")
        assert info.value.sqlstate == "53200"
        assert conn.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)
        streamed = (  # the first rows stream out before the memory runs out
            "SELECT range AS n FROM range(5000) UNION ALL"
            " SELECT length(string_agg(range::VARCHAR, ',')) FROM range(30000000)"
        )
        with pytest.raises(psycopg.errors.OutOfMemory, match="memory limit"):
            conn.execute(streamed).fetchall()
    with psycopg.connect(url(server)) as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)


def test_spills_past_the_temp_cap_get_53400(serve: Serve, tmp_path: Path) -> None:
    server = serve(memory_limit_mb=64, query_memory_mb=16, temp_limit_mb=8, statement_timeout_s=60)
    distinct = "SELECT count(DISTINCT s) FROM (SELECT md5(range::VARCHAR) s FROM range(3000000))"
    with psycopg.connect(url(server), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="temp space cap"):
            conn.execute(distinct)
        assert conn.execute("SELECT count(DISTINCT range) FROM range(1000)").fetchone() == (1000,)
    assert server.supervisor.interrupted["temp"] == 1
    assert any((tmp_path / "tmp").iterdir())  # spills went under the configured directory


def test_clients_cannot_change_the_shared_servers_resources(serve: Serve) -> None:
    server = serve(memory_limit_mb=256, threads=1)
    settings = (
        "SELECT name, value FROM duckdb_settings() WHERE name IN "
        "('memory_limit', 'threads', 'max_temp_directory_size', 'temp_directory') ORDER BY 1"
    )

    def server_settings() -> list[tuple[str, str]]:  # seen from the server's own connection
        cursor = server.connect()
        try:
            return cursor.execute(settings).fetchall()
        finally:
            cursor.close()

    with psycopg.connect(url(server), autocommit=True) as conn:
        before = server_settings()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="duckdb_settings"):
            conn.execute(settings)  # DuckDB's internal functions are not the client's
        for sql in (
            "SET memory_limit = '100GB'",
            "SET threads = 64",
            "SET GLOBAL threads TO 64",
            "RESET memory_limit",
            "SET max_temp_directory_size = '1TB'",
            "SET temp_directory = '/tmp'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="PRAGMA"):
            conn.execute("PRAGMA memory_limit = '100GB'")
        assert server_settings() == before
    assert dict(before)["memory_limit"] == "256.0 MiB" and dict(before)["threads"] == "1"
