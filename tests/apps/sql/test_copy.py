"""COPY … TO STDOUT through real clients: psql, psycopg 3, ADBC, connectorx and polars."""

from __future__ import annotations

import datetime as dt
import decimal
import select
from typing import Any, Literal

import adbc_driver_postgresql.dbapi as adbc  # type: ignore[import-untyped]
import connectorx as cx
import polars as pl
import psycopg
import pyarrow as pa
import pytest

from lakehouse.apps.sql.codec import PgError, binary_value
from lakehouse.apps.sql.copy import parse_copy
from lakehouse.apps.sql.copy_format import numeric_bytes
from lakehouse.apps.sql.endpoint import SqlEndpoint
from lakehouse.io.delta import DeltaStore
from tests.apps.sql.conftest import psql

DAILY = "lakehouse.gold.daily_sales"
# every type an Arrow client maps: int64, float64, date, timestamp, string, decimal, nulls
QUERY = (
    "SELECT order_date, region, product, orders, revenue,"
    " CAST(revenue AS DOUBLE) AS revenue_f, CAST(units AS INTEGER) AS units,"
    " CAST(order_date AS TIMESTAMP) + INTERVAL 90 MINUTE AS ts,"
    " CASE WHEN orders > 1 THEN NULL ELSE product END AS maybe,"
    " orders > 1 AS many"
    " FROM gold.daily_sales ORDER BY order_date, region, product LIMIT 2000"
)
SPECIAL = (
    "SELECT * FROM (VALUES (1, 'a,b', 'tab' || chr(9) || 'here', 'new' || chr(10) || 'line',"
    " 'back\\slash',"
    " 'q\"uote', '', NULL::VARCHAR, -12.5::DECIMAL(10,3), '\\.'),"
    " (2, 'plain', 'x', 'y', 'z', 'w', 'v', 'u', 0.001::DECIMAL(10,3), '.')) AS t(k, c1, c2, c3,"
    " c4, c5, c6, c7, d, dot) ORDER BY k"
)


def _text(value: Any) -> str:
    """PostgreSQL's text output of a served value, written independently of the server."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _plain(endpoint: SqlEndpoint, query: str) -> tuple[list[tuple[Any, ...]], list[int]]:
    with psycopg.connect(endpoint.info.url()) as conn:
        cur = conn.execute(query)
        return cur.fetchall(), [d.type_code for d in cur.description or []]


def test_psql_copy_text_and_csv_are_byte_exact(endpoint: SqlEndpoint, tables: DeltaStore) -> None:
    rows = tables.read(DAILY).orderBy("order_date", "region", "product").limit(300).collect()
    query = "SELECT * FROM gold.daily_sales ORDER BY order_date, region, product LIMIT 300"
    text = psql(endpoint, f"COPY ({query}) TO STDOUT")
    assert text.returncode == 0, text.stderr
    expected = "".join("\t".join(_text(v) for v in row) + "\n" for row in rows)
    assert text.stdout == expected
    csv = psql(endpoint, f"\\copy ({query}) to stdout with csv header")
    assert csv.returncode == 0, csv.stderr
    header = ",".join(rows[0].asDict()) + "\n"
    assert csv.stdout == header + expected.replace("\t", ",")
    table = psql(endpoint, "COPY gold.daily_sales (order_date, region) TO STDOUT WITH CSV")
    assert table.returncode == 0, table.stderr
    assert len(table.stdout.splitlines()) == tables.read(DAILY).count()


def test_copy_escapes_and_quotes_as_postgresql(endpoint: SqlEndpoint) -> None:
    text = psql(endpoint, f"COPY ({SPECIAL}) TO STDOUT")
    assert text.returncode == 0, text.stderr
    assert text.stdout == (
        '1\ta,b\ttab\\there\tnew\\nline\tback\\\\slash\tq"uote\t\t\\N\t-12.500\t\\\\.\n'
        "2\tplain\tx\ty\tz\tw\tv\tu\t0.001\t.\n"
    )
    csv = psql(endpoint, f"COPY ({SPECIAL}) TO STDOUT WITH (FORMAT csv, HEADER true)")
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout == (
        "k,c1,c2,c3,c4,c5,c6,c7,d,dot\n"
        '1,"a,b",tab\there,"new\nline",back\\slash,"q""uote","",,-12.500,"\\."\n'
        "2,plain,x,y,z,w,v,u,0.001,.\n"
    )
    options = "(FORMAT csv, DELIMITER ';', NULL 'NULL', QUOTE '''', FORCE_QUOTE (c1, k))"
    custom = psql(endpoint, f"COPY ({SPECIAL}) TO STDOUT {options}")
    assert custom.returncode == 0, custom.stderr
    assert custom.stdout.splitlines()[-1] == "'2';'plain';x;y;z;w;v;u;0.001;."
    old = psql(
        endpoint, f"COPY ({SPECIAL}) TO STDOUT WITH CSV HEADER DELIMITER AS '|' FORCE QUOTE *"
    )
    assert old.returncode == 0, old.stderr
    assert old.stdout.splitlines()[-1] == '"2"|"plain"|"x"|"y"|"z"|"w"|"v"|"u"|"0.001"|"."'


def test_psycopg_binary_copy_equals_select(endpoint: SqlEndpoint) -> None:
    plain, types = _plain(endpoint, QUERY)
    with psycopg.connect(endpoint.info.url()) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY ({QUERY}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types(types)
            rows = []
            while (row := copy.read_row()) is not None:
                rows.append(row)
        assert cur.rowcount == len(plain) == 2000
        with cur.copy(f"COPY ({SPECIAL}) TO STDOUT WITH BINARY") as copy:
            copy.set_types(_plain(endpoint, SPECIAL)[1])
            special = list(copy.rows())
    assert rows == plain
    assert special == _plain(endpoint, SPECIAL)[0]
    assert any(r[8] is None for r in rows) and any(r[8] is not None for r in rows)


def _expected_columns(plain: list[tuple[Any, ...]]) -> list[list[Any]]:
    columns = [list(c) for c in zip(*plain, strict=True)]
    return columns


def test_adbc_fetches_arrow_equal_to_select(endpoint: SqlEndpoint) -> None:
    plain, _ = _plain(endpoint, QUERY)
    with adbc.connect(endpoint.info.url()) as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        table = cur.fetch_arrow_table()
    kinds = {f.name: f.type for f in table.schema}
    assert kinds["order_date"] == pa.date32() and kinds["orders"] == pa.int64()
    assert kinds["revenue_f"] == pa.float64() and kinds["units"] == pa.int32()
    assert kinds["ts"] == pa.timestamp("us") and kinds["region"] == pa.string()
    assert kinds["maybe"] == pa.string() and kinds["many"] == pa.bool_()
    got = table.to_pydict()
    expected = _expected_columns(plain)
    for i, name in enumerate(table.column_names):
        want = expected[i]
        if name == "revenue":  # ADBC's driver returns numeric as its text (opaque string)
            want = [_text(v) for v in want]
        assert got[name] == want, name


@pytest.mark.parametrize("protocol", ["binary", "csv"])
def test_connectorx_reads_equal_to_select(
    endpoint: SqlEndpoint, protocol: Literal["binary", "csv"]
) -> None:
    plain, _ = _plain(endpoint, QUERY)
    table = cx.read_sql(
        endpoint.info.url(),
        QUERY,
        protocol=protocol,
        return_type="arrow",
    )
    got = table.to_pydict()
    assert table.column_names == [
        "order_date",
        "region",
        "product",
        "orders",
        "revenue",
        "revenue_f",
        "units",
        "ts",
        "maybe",
        "many",
    ]
    for name, want in zip(table.column_names, _expected_columns(plain), strict=True):
        assert got[name] == want, name


@pytest.mark.parametrize("engine", ["connectorx", "adbc"])
def test_polars_read_database_uri(endpoint: SqlEndpoint, engine: str) -> None:
    plain, _ = _plain(endpoint, QUERY)
    frame = pl.read_database_uri(QUERY, endpoint.info.url(), engine=engine)  # type: ignore[call-overload]
    assert frame.height == 2000
    assert frame["orders"].dtype == pl.Int64 and frame["order_date"].dtype == pl.Date
    assert frame["ts"].dtype == pl.Datetime("us")
    rows = frame.drop("revenue").rows()
    assert rows == [r[:4] + r[5:] for r in plain]
    revenue = [decimal.Decimal(str(v)) for v in frame["revenue"].to_list()]
    assert revenue == [r[4] for r in plain]


def wait_results(pgconn: Any) -> list[Any]:
    """The results of the request just sent, waiting without holding the GIL (the server
    runs in this process: libpq's blocking calls in psycopg's C layer would starve it)."""
    results: list[Any] = []
    while True:
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [], 5)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)
        if result.status == psycopg.pq.ExecStatus.COPY_OUT:
            return results


def test_copy_through_the_extended_protocol(endpoint: SqlEndpoint) -> None:
    with psycopg.connect(endpoint.info.url()) as conn:
        pgconn = conn.pgconn
        pgconn.send_prepare(b"c", f"COPY ({SPECIAL}) TO STDOUT WITH CSV".encode())
        assert [r.status for r in wait_results(pgconn)] == [psycopg.pq.ExecStatus.COMMAND_OK]
        pgconn.send_describe_prepared(b"c")
        (described,) = wait_results(pgconn)
        assert (described.nparams, described.nfields) == (0, 0)  # COPY: NoData
        pgconn.send_query_prepared(b"c", [])  # Bind, Describe portal, Execute, Sync
        assert [r.status for r in wait_results(pgconn)] == [psycopg.pq.ExecStatus.COPY_OUT]
        chunks = []
        while True:
            size, data = pgconn.get_copy_data(1)
            if size == 0:
                select.select([pgconn.socket], [], [], 5)
                pgconn.consume_input()
                continue
            if size < 0:
                break
            chunks.append(bytes(data))
        (final,) = wait_results(pgconn)
        assert final.command_status == b"COPY 2"
    assert chunks[1] == b"2,plain,x,y,z,w,v,u,0.001,.\n"  # one CopyData message per row


def test_copy_from_and_to_files_are_refused(endpoint: SqlEndpoint) -> None:
    with psycopg.connect(endpoint.info.url(), autocommit=True) as conn:
        with (
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
            conn.cursor().copy("COPY gold.daily_sales FROM STDIN") as copy,
        ):
            copy.write(b"")
        for sql in (
            "COPY gold.daily_sales TO '/tmp/x.csv'",
            "COPY (SELECT 1) TO PROGRAM 'cat'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        with (  # the checks on the query still hold
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            conn.cursor().copy("COPY (SELECT * FROM duckdb_settings()) TO STDOUT"),
        ):
            pass
        conn.execute("SET statement_timeout = '300ms'")
        with (
            pytest.raises(psycopg.errors.QueryCanceled),
            conn.cursor().copy(
                "COPY (SELECT sum(a.range * b.range) FROM range(300000) a, range(300000) b)"
                " TO STDOUT"
            ) as copy,
        ):
            list(copy)
        conn.execute("RESET statement_timeout")
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_copy_statement_and_binary_values() -> None:
    command = parse_copy('COPY gold.t (a, "B") TO STDOUT (FORMAT binary)')
    assert command is not None and command.query == 'SELECT a, "B" FROM gold.t'
    assert command.options.format == "binary"
    assert parse_copy("SELECT 1") is None
    with pytest.raises(PgError, match="not recognized"):
        parse_copy("COPY t TO STDOUT (FORMAT parquet)")
    for value in (
        "0",
        "-12.500",
        "0.001",
        "123456789.0001",
        "10000",
        "-0.0001",
        "99999999999999.99",
    ):
        number = decimal.Decimal(value)
        scale = max(0, -int(number.as_tuple().exponent))
        assert numeric_bytes(int(number.scaleb(scale)), scale) == binary_value(number, 1700)
