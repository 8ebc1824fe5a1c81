"""Pipeline SQL files -> definitions: statements, clauses, streams, AUTO CDC, SET and errors."""

from __future__ import annotations

import pytest

from lakehouse.core.errors import ConfigError
from lakehouse.pipelines.declarative.model import (
    AutoCdc,
    Expectation,
    FilesSource,
    SourceLocation,
    SqlDataset,
    SqlDefinition,
    SqlFlow,
    SqlQuery,
    SqlSet,
    SqlUse,
    StreamRead,
)
from lakehouse.pipelines.declarative.sql import batch_tables, parse_pipeline_sql

F = "pipe/transform.sql"


def at(line: int) -> SourceLocation:
    return SourceLocation(F, line)


def parse(text: str, **conf: str) -> list[SqlDefinition]:
    return parse_pipeline_sql(text, F, conf)


def one(text: str, **conf: str) -> SqlDefinition:
    (definition,) = parse(text, **conf)
    return definition


def dataset(text: str, **conf: str) -> SqlDataset:
    definition = one(text, **conf)
    assert isinstance(definition, SqlDataset)
    return definition


def flow(text: str, **conf: str) -> SqlFlow:
    definition = one(text, **conf)
    assert isinstance(definition, SqlFlow)
    return definition


def error(text: str, **conf: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, **conf)
    return str(info.value)


def stream(n: int, table: str) -> StreamRead:
    return StreamRead(f"__stream_{n}", table=table)


# --- statements, comments, lines ------------------------------------------------------------


def test_multi_statement_file_with_tricky_quoting_and_line_numbers() -> None:
    text = """-- leading comment; with a semicolon
SET a = 1;

/* block ; comment
   spanning lines */
CREATE MATERIALIZED VIEW `my.db`.`t;1` AS SELECT 'x;y' AS s, "q;\\";" AS d, `c;` FROM src;
  CREATE TEMPORARY VIEW v AS
    SELECT 1 AS one -- trailing; comment
; ; CREATE STREAMING TABLE st"""
    definitions = parse(text)
    assert definitions == [
        SqlSet("a", "1", at(2)),
        SqlDataset(
            "materialized_view",
            "`my.db`.`t;1`",
            at(6),
            SqlQuery("""SELECT 'x;y' AS s, "q;\\";" AS d, `c;` FROM src"""),
        ),
        SqlDataset("temporary_view", "v", at(7), SqlQuery("SELECT 1 AS one")),
        SqlDataset("streaming_table", "st", at(9)),
    ]


def test_nested_block_comments_and_hints() -> None:
    text = "/* outer /* inner; */ still comment; */\nCREATE MATERIALIZED VIEW m AS SELECT /*+ BROADCAST(d) */ * FROM f JOIN d USING (k)"
    assert dataset(text) == SqlDataset(
        "materialized_view",
        "m",
        at(2),
        SqlQuery("SELECT /*+ BROADCAST(d) */ * FROM f JOIN d USING (k)"),
    )


def test_crlf_lines_doubled_backticks_and_pipe_syntax() -> None:
    text = (
        "-- windows file\r\n\r\nCREATE MATERIALIZED VIEW `a``;b` AS\r\n"
        "FROM LIVE.t |> WHERE x > 1 |> SELECT x;\r\nCREATE LIVE TABLE LIVE.c AS SELECT 1 AS y"
    )
    assert parse(text) == [
        SqlDataset(
            "materialized_view", "`a``;b`", at(3), SqlQuery("FROM t |> WHERE x > 1 |> SELECT x")
        ),
        SqlDataset("materialized_view", "c", at(5), SqlQuery("SELECT 1 AS y")),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "SET a = 1;\nCREATE MATERIALIZED VIEW m AS SELECT 'open",
            "line 2: cannot read the statement (an unterminated quote or backtick?) in "
            "'CREATE MATERIALIZED VIEW m AS SELECT …'",
        ),
        (
            "CREATE MATERIALIZED VIEW m (a INT AS SELECT 1",
            "line 1: unbalanced parentheses in 'CREATE MATERIALIZED VIEW m (a INT …'",
        ),
    ],
)
def test_unterminated_strings_and_parentheses(text: str, message: str) -> None:
    assert error(text).startswith(f"{F}: {message}")


def test_an_empty_file_and_only_comments_give_nothing() -> None:
    assert parse("") == []
    assert parse("-- nothing\n/* here */ ;\n;") == []


# --- materialized views ---------------------------------------------------------------------


def test_materialized_view_with_every_clause() -> None:
    text = """CREATE OR REFRESH PRIVATE MATERIALIZED VIEW IF NOT EXISTS cat.sales.daily (
    day DATE NOT NULL COMMENT 'the day',
    total DECIMAL(12, 2),
    total_x2 DOUBLE GENERATED ALWAYS AS (total * 2),
    CONSTRAINT positive EXPECT (total >= 0),
    CONSTRAINT known_day EXPECT (day IS NOT NULL AND day > '2020-01-01') ON VIOLATION DROP ROW,
    CONSTRAINT not_future EXPECT (day <= current_date()) ON VIOLATION FAIL UPDATE,
    CONSTRAINT pk PRIMARY KEY (day)
)
USING DELTA
PARTITIONED BY (day)
CLUSTER BY (day, total)
COMMENT 'daily ' 'totals'
TBLPROPERTIES ('quality' = 'gold', delta.enableChangeDataFeed = true, 'n' = 3)
LOCATION '/mnt/x'
SCHEDULE REFRESH EVERY 1 HOUR
AS SELECT day, sum(amount) AS total, sum(amount) * 2 AS total_x2 FROM orders GROUP BY day"""
    assert dataset(text) == SqlDataset(
        kind="materialized_view",
        name="cat.sales.daily",
        location=at(1),
        query=SqlQuery(
            "SELECT day, sum(amount) AS total, sum(amount) * 2 AS total_x2 FROM orders GROUP BY day"
        ),
        comment="daily totals",
        schema="day DATE NOT NULL COMMENT 'the day', total DECIMAL(12, 2), "
        "total_x2 DOUBLE GENERATED ALWAYS AS (total * 2)",
        expectations=(
            Expectation("positive", "total >= 0", "warn"),
            Expectation("known_day", "day IS NOT NULL AND day > '2020-01-01'", "drop"),
            Expectation("not_future", "day <= current_date()", "fail"),
        ),
        table_properties={"quality": "gold", "delta.enableChangeDataFeed": "true", "n": "3"},
        partition_cols=("day",),
        cluster_by=("day", "total"),
        private=True,
    )


def test_databricks_only_clauses_are_skipped() -> None:
    text = """CREATE MATERIALIZED VIEW m
  CLUSTER BY AUTO
  SCHEDULE CRON '0 0 * * * ?' AT TIME ZONE 'UTC'
  TRIGGER ON UPDATE AT MOST EVERY INTERVAL 1 HOUR
  WITH ROW FILTER f ON (region)
  DEFAULT COLLATION UTF8_BINARY
  COMMENT 'c'
AS SELECT 1 AS x"""
    assert dataset(text) == SqlDataset(
        "materialized_view", "m", at(1), SqlQuery("SELECT 1 AS x"), comment="c"
    )


def test_constraint_only_column_list_gives_no_schema() -> None:
    text = "CREATE MATERIALIZED VIEW m (CONSTRAINT ok EXPECT (x IN ('a', 'b)'))) AS SELECT 'a' AS x"
    got = dataset(text)
    assert (got.schema, got.expectations) == (None, (Expectation("ok", "x IN ('a', 'b)')"),))


def test_materialized_view_needs_a_query() -> None:
    assert error("CREATE MATERIALIZED VIEW m") == (
        f"{F}: line 1: expected AS followed by a query in 'CREATE MATERIALIZED VIEW m'"
    )


# --- streaming tables -----------------------------------------------------------------------


def test_streaming_table_without_query_is_a_flow_target() -> None:
    text = "CREATE OR REFRESH STREAMING TABLE customers_scd (id INT, name STRING) COMMENT 'SCD2'"
    assert dataset(text) == SqlDataset(
        "streaming_table", "customers_scd", at(1), schema="id INT, name STRING", comment="SCD2"
    )


def test_streaming_table_from_read_files_with_expectations() -> None:
    text = """CREATE OR REFRESH STREAMING TABLE raw_orders (
  CONSTRAINT valid_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW
) AS SELECT *, _metadata.file_path AS src
FROM STREAM read_files('/data/${env}/orders', format => 'csv', header => true, sep => ';')"""
    assert dataset(text, env="dev") == SqlDataset(
        "streaming_table",
        "raw_orders",
        at(1),
        SqlQuery(
            "SELECT *, _metadata.file_path AS src\nFROM __stream_0",
            (
                StreamRead(
                    "__stream_0",
                    files=FilesSource("/data/dev/orders", "csv", {"header": "true", "sep": ";"}),
                ),
            ),
        ),
        expectations=(Expectation("valid_id", "id IS NOT NULL", "drop"),),
    )


@pytest.mark.parametrize(
    ("source", "table"),
    [
        ("STREAM(src)", "src"),
        ("STREAM src", "src"),
        ("stream(LIVE.src)", "src"),
        ("STREAM live.src", "src"),
        ("STREAM(cat.db.src)", "cat.db.src"),
        ("STREAM(`my.src`)", "`my.src`"),
        ("STREAM(`live`.src)", "live.src"),
    ],
)
def test_stream_forms(source: str, table: str) -> None:
    got = dataset(f"CREATE STREAMING TABLE t AS SELECT * FROM {source} s WHERE s.x > 0")
    assert got.query == SqlQuery("SELECT * FROM __stream_0 s WHERE s.x > 0", (stream(0, table),))


def test_two_streams_in_one_query_and_numbering_across_the_file() -> None:
    text = """CREATE STREAMING TABLE a AS SELECT * FROM STREAM(x);
CREATE STREAMING TABLE b AS
SELECT * FROM STREAM(LIVE.y) y JOIN STREAM z ON y.k = z.k JOIN LIVE.dim d ON d.k = y.k"""
    _, b = parse(text)
    assert isinstance(b, SqlDataset)
    assert b.query == SqlQuery(
        "SELECT * FROM __stream_1 y JOIN __stream_2 ON y.k = z.k JOIN dim d ON d.k = y.k",
        (stream(1, "y"), stream(2, "z")),
    )
    assert batch_tables(b.query) == ("dim",)


def test_cloud_files_with_options_map() -> None:
    text = "CREATE STREAMING LIVE TABLE r AS SELECT * FROM STREAM cloud_files('/in/', 'json', map('cloudFiles.inferColumnTypes', 'true', 'multiLine', 'false'))"
    got = dataset(text)
    assert (got.kind, got.query) == (
        "streaming_table",
        SqlQuery(
            "SELECT * FROM __stream_0",
            (
                StreamRead(
                    "__stream_0",
                    files=FilesSource(
                        "/in/",
                        "json",
                        {"cloudFiles.inferColumnTypes": "true", "multiLine": "false"},
                    ),
                ),
            ),
        ),
    )


def test_stream_of_read_files_in_parentheses() -> None:
    got = dataset("CREATE STREAMING TABLE r AS SELECT * FROM STREAM(read_files('/in/a.parquet'))")
    assert got.query == SqlQuery(
        "SELECT * FROM __stream_0",
        (StreamRead("__stream_0", files=FilesSource("/in/a.parquet", "parquet")),),
    )


def test_batch_read_files_is_a_non_incremental_source() -> None:
    text = "CREATE MATERIALIZED VIEW ref AS SELECT * FROM read_files('/ref/countries.csv', header => 'true') c"
    assert dataset(text).query == SqlQuery(
        "SELECT * FROM __stream_0 c",
        (
            StreamRead(
                "__stream_0",
                files=FilesSource("/ref/countries.csv", "csv", {"header": "true"}),
                incremental=False,
            ),
        ),
    )


def test_read_files_without_a_known_format() -> None:
    assert error("CREATE STREAMING TABLE r AS SELECT * FROM STREAM read_files('/in/')") == (
        f"{F}: line 1: read_files('/in/') needs format => '…' in "
        "'CREATE STREAMING TABLE r AS SELECT …'"
    )


def test_watermarks_are_removed_and_window_grouping_parses() -> None:
    text = """CREATE STREAMING TABLE counts AS
SELECT window(o.ts, '5 minutes') AS w, count(*) AS n
FROM STREAM(orders) WATERMARK ts DELAY OF INTERVAL 3 MINUTES AS o
JOIN STREAM(payments) WATERMARK p.paid_at DELAY OF INTERVAL '1' HOUR p ON o.id = p.id
GROUP BY window(o.ts, '5 minutes')"""
    got = dataset(text).query
    assert got == SqlQuery(
        "SELECT window(o.ts, '5 minutes') AS w, count(*) AS n\n"
        "FROM __stream_0 AS o\n"
        "JOIN __stream_1 p ON o.id = p.id\n"
        "GROUP BY window(o.ts, '5 minutes')",
        (stream(0, "orders"), stream(1, "payments")),
    )
    assert batch_tables(got) == ()


def test_a_column_named_stream_is_not_a_source() -> None:
    text = "CREATE MATERIALIZED VIEW m AS SELECT a, stream FROM t GROUP BY a, stream ORDER BY a"
    assert dataset(text).query == SqlQuery("SELECT a, stream FROM t GROUP BY a, stream ORDER BY a")
    text = "CREATE MATERIALIZED VIEW m AS SELECT a, stream x FROM t"
    assert error(text) == (
        f"{F}: line 1: STREAM and read_files(…) can only be read in a FROM clause in "
        "'CREATE MATERIALIZED VIEW m AS SELECT …'"
    )


# --- temporary views ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "create",
    [
        "CREATE TEMPORARY VIEW",
        "CREATE OR REPLACE TEMPORARY VIEW",
        "CREATE TEMP VIEW",
        "CREATE LIVE VIEW",
        "CREATE OR REFRESH TEMPORARY LIVE VIEW",
        "CREATE TEMPORARY STREAMING LIVE VIEW",
    ],
)
def test_temporary_view_forms(create: str) -> None:
    got = dataset(
        f"{create} v (a COMMENT 'first', CONSTRAINT a_ok EXPECT (a > 0)) AS SELECT 1 AS a"
    )
    assert got == SqlDataset(
        "temporary_view",
        "v",
        at(1),
        SqlQuery("SELECT 1 AS a"),
        schema="a COMMENT 'first'",
        expectations=(Expectation("a_ok", "a > 0"),),
    )


# --- legacy LIVE tables ---------------------------------------------------------------------


def test_legacy_live_tables() -> None:
    text = """CREATE LIVE TABLE mv AS SELECT * FROM LIVE.a;
CREATE LIVE TABLE st AS SELECT * FROM STREAM(LIVE.a);
CREATE STREAMING LIVE TABLE st2 AS SELECT * FROM STREAM(LIVE.a);
CREATE INCREMENTAL LIVE TABLE st3;
CREATE TEMPORARY LIVE TABLE hidden AS SELECT 1 AS x"""
    got = [(d.kind, d.name, d.private) for d in parse(text) if isinstance(d, SqlDataset)]
    assert got == [
        ("materialized_view", "mv", False),
        ("streaming_table", "st", False),
        ("streaming_table", "st2", False),
        ("streaming_table", "st3", False),
        ("materialized_view", "hidden", True),
    ]


# --- flows ----------------------------------------------------------------------------------


def test_insert_into_flows() -> None:
    text = """CREATE FLOW backfill COMMENT 'one off' AS INSERT INTO ONCE LIVE.target BY NAME
SELECT * FROM read_files('/old/*.json');
CREATE FLOW live_rows AS INSERT INTO target BY NAME SELECT * FROM STREAM(src);
CREATE FLOW plain AS INSERT INTO TABLE cat.db.target SELECT * FROM STREAM src;
CREATE FLOW early_once AS INSERT ONCE INTO target BY NAME SELECT * FROM old;
CREATE FLOW cdc_once AS AUTO CDC ONCE INTO target FROM snapshot_rows KEYS (id) SEQUENCE BY ts"""
    assert parse(text) == [
        SqlFlow(
            "backfill",
            "target",
            at(1),
            SqlQuery(
                "SELECT * FROM __stream_0",
                (
                    StreamRead(
                        "__stream_0", files=FilesSource("/old/*.json", "json"), incremental=False
                    ),
                ),
            ),
            once=True,
        ),
        SqlFlow(
            "live_rows", "target", at(3), SqlQuery("SELECT * FROM __stream_1", (stream(1, "src"),))
        ),
        SqlFlow(
            "plain",
            "cat.db.target",
            at(4),
            SqlQuery("SELECT * FROM __stream_2", (stream(2, "src"),)),
        ),
        SqlFlow("early_once", "target", at(5), SqlQuery("SELECT * FROM old"), once=True),
        SqlFlow(
            "cdc_once",
            "target",
            at(6),
            auto_cdc=AutoCdc("target", "snapshot_rows", ("id",), "ts", name="cdc_once"),
            once=True,
        ),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "CREATE FLOW f AS INSERT OVERWRITE t SELECT 1",
            "INSERT OVERWRITE flows are not supported (use INSERT INTO)",
        ),
        (
            "CREATE FLOW f AS INSERT INTO t (a) SELECT 1",
            "a flow's target takes no column list or partition spec",
        ),
        ("CREATE FLOW db.f AS INSERT INTO t SELECT 1", "a flow's name cannot be qualified"),
        ("CREATE FLOW f AS SELECT 1", "expected INSERT but found 'SELECT'"),
    ],
)
def test_flow_errors(text: str, message: str) -> None:
    assert error(text).startswith(f"{F}: line 1: {message} in 'CREATE FLOW")


# --- AUTO CDC -------------------------------------------------------------------------------


def test_auto_cdc_flow_with_every_clause() -> None:
    text = """CREATE FLOW customers_cdc AS AUTO CDC INTO customers_scd
FROM STREAM(customers_changes)
KEYS (customer_id, `region code`)
IGNORE NULL UPDATES
APPLY AS DELETE WHEN operation = "DELETE" AND (x IS NULL OR y = 'SEQUENCE BY')
APPLY AS TRUNCATE WHEN operation = 'TRUNCATE'
SEQUENCE BY struct(ts, seq)
COLUMNS * EXCEPT (operation, seq)
STORED AS SCD TYPE 2
TRACK HISTORY ON * EXCEPT (last_login)"""
    assert flow(text) == SqlFlow(
        "customers_cdc",
        "customers_scd",
        at(1),
        auto_cdc=AutoCdc(
            target="customers_scd",
            source="customers_changes",
            keys=("customer_id", "region code"),
            sequence_by="struct(ts, seq)",
            stored_as_scd_type=2,
            apply_as_deletes="operation = \"DELETE\" AND (x IS NULL OR y = 'SEQUENCE BY')",
            apply_as_truncates="operation = 'TRUNCATE'",
            except_column_list=("operation", "seq"),
            track_history_except_column_list=("last_login",),
            ignore_null_updates=True,
            name="customers_cdc",
        ),
    )


def test_auto_cdc_column_lists_and_sources() -> None:
    text = """CREATE FLOW a AS AUTO CDC INTO t FROM STREAM src KEYS (id) SEQUENCE BY ts
  COLUMNS id, name, ts STORED AS SCD TYPE 1;
CREATE FLOW b AS AUTO CDC INTO t FROM cat.db.src KEYS (id) SEQUENCE BY ts
  COLUMNS (id, name) STORED AS SCD TYPE 2 TRACK HISTORY ON name, city;
CREATE FLOW c AS AUTO CDC INTO t FROM src KEYS (id) SEQUENCE BY ts COLUMNS * TRACK HISTORY ON *"""
    a, b, c = (d.auto_cdc for d in parse(text) if isinstance(d, SqlFlow))
    assert a == AutoCdc("t", "src", ("id",), "ts", 1, column_list=("id", "name", "ts"), name="a")
    assert b == AutoCdc(
        "t",
        "cat.db.src",
        ("id",),
        "ts",
        2,
        column_list=("id", "name"),
        track_history_column_list=("name", "city"),
        name="b",
    )
    assert c == AutoCdc("t", "src", ("id",), "ts", name="c")


def test_legacy_apply_changes_is_a_flow_named_after_its_target() -> None:
    text = """APPLY CHANGES INTO LIVE.target
FROM STREAM(LIVE.cdc_source)
KEYS (userId)
APPLY AS DELETE WHEN operation = "DELETE"
SEQUENCE BY sequenceNum
COLUMNS * EXCEPT (operation, sequenceNum)
STORED AS SCD TYPE 2"""
    got = flow(text)
    assert got == SqlFlow(
        "target",
        "target",
        at(1),
        auto_cdc=AutoCdc(
            "target",
            "cdc_source",
            ("userId",),
            "sequenceNum",
            2,
            apply_as_deletes='operation = "DELETE"',
            except_column_list=("operation", "sequenceNum"),
        ),
    )
    assert got.auto_cdc is not None and got.auto_cdc.flow_name == "target"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM SNAPSHOT s KEYS (id)",
            "AUTO CDC FROM SNAPSHOT is not supported",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM STREAM(s) SEQUENCE BY ts",
            "AUTO CDC INTO t needs KEYS (…)",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id)",
            "AUTO CDC INTO t needs SEQUENCE BY …",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY ts STORED AS SCD TYPE 3",
            "expected SCD TYPE 1 or 2, found '3'",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY ts STORED AS BITEMPORAL",
            "expected SCD TYPE 1 or 2, found 'BITEMPORAL'",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) IGNORE NULL UPDATES ON a SEQUENCE BY ts",
            "IGNORE NULL UPDATES ON columns is not supported (Databricks SQL only)",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY ts SYSTEM SEQUENCE BY x",
            "SYSTEM SEQUENCE BY is not supported (Databricks SQL only)",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY ts COLUMNS TO UPDATE u",
            "COLUMNS TO UPDATE is not supported (Databricks SQL only)",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY ts SYSTEM",
            "SEQUENCE BY must be one expression, found 'ts SYSTEM'",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY ts KEYS (x)",
            "KEYS is given twice",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id) SEQUENCE BY a, b",
            "SEQUENCE BY must be one expression, found 'a, b'",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM (SELECT 1) KEYS (id) SEQUENCE BY ts",
            "AUTO CDC needs a table as its source (STREAM(table)), not a subquery",
        ),
        (
            "CREATE FLOW f AS AUTO CDC INTO t FROM s KEYS (id + 1) SEQUENCE BY ts",
            "expected a column name, found 'id + 1'",
        ),
    ],
)
def test_auto_cdc_errors(text: str, message: str) -> None:
    assert error(text).startswith(f"{F}: line 1: {message} in 'CREATE FLOW f AS AUTO CDC")


# --- SET and ${key} substitution ------------------------------------------------------------


def test_set_and_substitution_from_conf_and_earlier_sets() -> None:
    text = """SET start_date = '2024-01-01';
CREATE MATERIALIZED VIEW m AS SELECT * FROM ${source_table} WHERE d >= ${start_date} AND p = '${spark:path}';
SET start_date = '2025-01-01';
SET `odd key` = `odd value`;
SET note = raw   text, /data/in;
CREATE MATERIALIZED VIEW n AS SELECT * FROM t WHERE d >= ${start_date}"""
    definitions = parse(text, source_table="bronze.orders", path="/p")
    assert definitions == [
        SqlSet("start_date", "'2024-01-01'", at(1)),
        SqlDataset(
            "materialized_view",
            "m",
            at(2),
            SqlQuery("SELECT * FROM bronze.orders WHERE d >= '2024-01-01' AND p = '/p'"),
        ),
        SqlSet("start_date", "'2025-01-01'", at(3)),
        SqlSet("odd key", "odd value", at(4)),
        SqlSet("note", "raw   text, /data/in", at(5)),
        SqlDataset(
            "materialized_view", "n", at(6), SqlQuery("SELECT * FROM t WHERE d >= '2025-01-01'")
        ),
    ]


def test_substitution_in_names_and_set_values() -> None:
    text = "SET tbl = ${schema}.orders;\nCREATE STREAMING TABLE ${tbl}_raw AS SELECT * FROM STREAM(${tbl})"
    _, got = parse(text, schema="bronze")
    assert isinstance(got, SqlDataset)
    assert (got.name, got.query) == (
        "bronze.orders_raw",
        SqlQuery("SELECT * FROM __stream_0", (stream(0, "bronze.orders"),)),
    )


def test_an_undefined_key_is_an_error_naming_the_line() -> None:
    text = "SET a = 1;\n\n-- ${in_a_comment} is fine\nCREATE MATERIALIZED VIEW m AS SELECT ${b}"
    assert error(text) == (
        f"{F}: line 4: ${{b}} is not defined (set it in the pipeline's configuration or with SET)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SET x", "SET needs key = value in 'SET x'"),
        ("SET", "SET needs key = value in 'SET'"),
        ("SET VAR x = 1", "SET VAR (session variables) is not supported; use SET key = value"),
    ],
)
def test_set_errors(text: str, message: str) -> None:
    assert error(text).startswith(f"{F}: line 1: {message}")


def test_use_catalog_and_schema() -> None:
    text = """USE CATALOG main;
USE SCHEMA silver;
USE DATABASE `my schema`;
USE other.gold;
USE SCHEMA 'quoted';
USE NAMESPACE c.s"""
    assert parse(text) == [
        SqlUse("main", None, at(1)),
        SqlUse(None, "silver", at(2)),
        SqlUse(None, "my schema", at(3)),
        SqlUse("other", "gold", at(4)),
        SqlUse(None, "quoted", at(5)),
        SqlUse("c", "s", at(6)),
    ]


# --- expectations and schema ----------------------------------------------------------------


def test_expectation_errors() -> None:
    assert error(
        "CREATE MATERIALIZED VIEW m (CONSTRAINT a EXPECT (x > 0), CONSTRAINT a EXPECT (y > 0)) AS SELECT 1"
    ).startswith(f"{F}: line 1: expectation 'a' is defined twice in")
    assert error(
        "CREATE MATERIALIZED VIEW m (CONSTRAINT a EXPECT (x > 0) ON VIOLATION IGNORE) AS SELECT 1"
    ).startswith(f"{F}: line 1: expected DROP ROW or FAIL UPDATE after ON VIOLATION for 'a' in")
    assert error("CREATE MATERIALIZED VIEW m (CONSTRAINT a EXPECT ()) AS SELECT 1").startswith(
        f"{F}: line 1: expectation 'a' has an empty condition in"
    )
    assert error("CREATE MATERIALIZED VIEW m (CONSTRAINT a EXPECT (x >)) AS SELECT 1").startswith(
        f"{F}: line 1: the condition of expectation 'a' must be one expression, found 'x >' ("
    )


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "SELECT 1",
            "unsupported statement (expected SET, USE, CREATE MATERIALIZED VIEW, CREATE STREAMING "
            "TABLE, CREATE TEMPORARY VIEW, CREATE FLOW or APPLY CHANGES INTO) in 'SELECT 1'",
        ),
        (
            "USE CATALOG a.b",
            "expected USE CATALOG c, USE SCHEMA s or USE SCHEMA c.s in 'USE CATALOG a.b'",
        ),
        (
            "CREATE VIEW v AS SELECT 1",
            "persisted views (CREATE VIEW) are not supported: use CREATE TEMPORARY VIEW or "
            "CREATE MATERIALIZED VIEW in 'CREATE VIEW v AS SELECT 1'",
        ),
        (
            "CREATE TABLE t AS SELECT 1",
            "CREATE TABLE is not a pipeline dataset: use CREATE MATERIALIZED VIEW or CREATE "
            "STREAMING TABLE in 'CREATE TABLE t AS SELECT 1'",
        ),
        (
            "CREATE MATERIALISED VIEW m AS SELECT 1",
            "expected MATERIALIZED VIEW, STREAMING TABLE, TEMPORARY VIEW or FLOW after CREATE "
            "in 'CREATE MATERIALISED VIEW m AS SELECT …'",
        ),
        (
            "CREATE MATERIALIZED VIEW m PARTITIONED (a) AS SELECT 1",
            "unexpected 'PARTITIONED' (expected a table clause or AS) in "
            "'CREATE MATERIALIZED VIEW m PARTITIONED (a) …'",
        ),
        (
            "CREATE STREAMING TABLE t AS SELECT * FROM STREAM(SELECT 1)",
            "a subquery in STREAM(…) is not supported (use STREAM(table) or "
            "STREAM read_files(…)) in 'CREATE STREAMING TABLE t AS SELECT …'",
        ),
    ],
)
def test_unsupported_and_unparseable_statements(text: str, message: str) -> None:
    assert error(text) == f"{F}: line 1: {message}"


def test_an_invalid_query_names_its_line() -> None:
    text = "SET a = 1;\nCREATE MATERIALIZED VIEW m AS\nSELECT a,\n  FROM WHERE"
    assert error(text).startswith(f"{F}: line 4: invalid query: ")


def test_batch_tables_skips_ctes_streams_and_table_functions() -> None:
    text = """CREATE MATERIALIZED VIEW m AS
WITH recent AS (SELECT * FROM `cat`.`sch`.orders WHERE d > (SELECT max(d) - 7 FROM calendar))
SELECT * FROM recent r JOIN STREAM(s) USING (k) JOIN range(10) CROSS JOIN `odd name`"""
    got = dataset(text)
    assert got.query is not None
    assert batch_tables(got.query) == ("cat.sch.orders", "calendar", "`odd name`")
