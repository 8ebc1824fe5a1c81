"""``lakehouse head`` and ``lakehouse sql QUERY``: governed, masked reads printed as a table,
CSV or JSON, on a table with deletion vectors written by JVM Spark + delta-spark; and the
global options accepted before or after the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from typer.main import get_command
from typer.testing import CliRunner

from lakehouse.cli import app
from lakehouse.governance.query import QueryError
from lakehouse.governance.scope import AccessDeniedError

DATA = Path(__file__).resolve().parents[1] / "data" / "delta"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")

BUNDLE = """\
bundle:
  name: look
include:
  - conf/*.yml
variables:
  data_root:
    default: ./data
targets:
  local:
    default: true
"""
# alice owns the catalog; bob may SELECT payments but not UNMASK; carol may use the catalog only
CATALOG = """\
catalog:
  name: shop
  storage_root: ${var.data_root}/tables
  owner: alice
  principals:
    users: [alice, bob, carol]
  grants:
    - {principal: bob, privileges: [USE CATALOG]}
    - {principal: carol, privileges: [USE CATALOG]}
  schemas:
    sales:
      grants:
        - {principal: bob, privileges: [USE SCHEMA]}
      tables:
        payments:
          layer: silver
          grants:
            - {principal: bob, privileges: [SELECT]}
          columns:
            - {name: id, type: int}
            - {name: email, type: string, tags: [pii], mask: redact}
            - {name: amount, type: double}
        refunds:
          layer: silver
          columns:
            - {name: id, type: int}
"""
MASKED_HEAD = """\
shop.sales.payments · version 2 · 3 rows
┏━━━━┳━━━━━━━┳━━━━━━━━┓
┃ id ┃ email ┃ amount ┃
┡━━━━╇━━━━━━━╇━━━━━━━━┩
│  1 │ ***   │   10.5 │
│  3 │ ***   │  30.25 │
│  5 │ ***   │  50.75 │
└────┴───────┴────────┘
"""
CSV_LATEST = (
    "id,email,amount\n1,ann@example.com,10.5\n3,cy@example.com,30.25\n5,ed@example.com,50.75\n"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle whose one table is the deletion-vector table (ids 2 and 4 deleted in v2)."""
    root = tmp_path_factory.mktemp("look")
    (root / "conf").mkdir()
    (root / "bundle.yml").write_text(BUNDLE)
    (root / "conf" / "catalog.yml").write_text(CATALOG)
    shutil.copytree(DATA / "deletion_vectors", root / "data" / "tables" / "sales" / "payments")
    return root


def _run(spark: SparkSession, *args: str) -> tuple[int, str, str, BaseException | None]:
    """The command in-process (on the test session): exit code, stdout, stderr, exception."""
    assert spark is not None  # the CLI reuses the active session
    result = CliRunner(env={"LAKEHOUSE_PRINCIPAL": None}).invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr, result.exception


def _ok(spark: SparkSession, *args: str) -> str:
    code, out, err, exc = _run(spark, *args)
    assert code == 0 and exc is None, f"{exc!r}\n{out}\n{err}"
    return out


def _lakehouse(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "SPARK_REMOTE"))}
    return subprocess.run([LAKEHOUSE, *args], env=env, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------ head


@pytest.mark.delta  # also on JVM Spark (--engine spark)
def test_head_masks_a_deletion_vector_table_for_a_reader_without_unmask(
    spark: SparkSession, project: Path
) -> None:
    assert _ok(spark, "head", "shop.sales.payments", "-C", str(project), "-p", "bob") == MASKED_HEAD


def test_head_csv_unmasked_for_the_owner_and_bare_names(spark: SparkSession, project: Path) -> None:
    assert (
        _ok(spark, "head", "payments", "-o", "csv", "-C", str(project), "-p", "alice") == CSV_LATEST
    )
    first = _ok(
        spark, "head", "sales.payments", "-n", "1", "-o", "csv", "-C", str(project), "-p", "alice"
    )
    assert first == "id,email,amount\n1,ann@example.com,10.5\n"


@pytest.mark.delta  # also on JVM Spark (--engine spark)
def test_head_version_travels_to_before_the_delete(spark: SparkSession, project: Path) -> None:
    out = _ok(
        spark, "head", "payments", "--version", "1", "-o", "json", "-C", str(project), "-p", "bob"
    )
    assert out == (
        '{"id": 1, "email": "***", "amount": 10.5}\n'
        '{"id": 2, "email": "***", "amount": 20.0}\n'
        '{"id": 3, "email": "***", "amount": 30.25}\n'
        '{"id": 4, "email": "***", "amount": 40.0}\n'
        '{"id": 5, "email": "***", "amount": 50.75}\n'
    )


def test_head_refuses_a_principal_without_select(spark: SparkSession, project: Path) -> None:
    code, out, _, exc = _run(spark, "head", "payments", "-C", str(project), "-p", "carol")
    assert code == 1 and out == ""
    assert isinstance(exc, AccessDeniedError)
    assert str(exc) == (
        "access denied: carol may not SELECT on shop.sales.payments "
        "(carol lacks USE SCHEMA on shop.sales)"
    )


# ------------------------------------------------------------------ sql QUERY


@pytest.mark.delta  # also on JVM Spark (--engine spark)
def test_sql_masks_hold_inside_arbitrary_expressions(spark: SparkSession, project: Path) -> None:
    query = (
        "SELECT p.id, upper(p.email) AS e, email = 'ann@example.com' AS is_ann, "
        "length(email) AS n FROM shop.sales.payments p "
        "WHERE p.id IN (SELECT id FROM sales.payments WHERE amount > 20) ORDER BY p.id"
    )
    out = _ok(spark, "sql", query, "-o", "csv", "-C", str(project), "-p", "bob")
    assert out == "id,e,is_ann,n\n3,***,false,3\n5,***,false,3\n"
    unmasked = _ok(spark, "sql", query, "-o", "csv", "-C", str(project), "-p", "alice")
    assert unmasked == "id,e,is_ann,n\n3,CY@EXAMPLE.COM,false,14\n5,ED@EXAMPLE.COM,false,14\n"


def test_sql_prints_a_table_and_keeps_the_query_text(spark: SparkSession, project: Path) -> None:
    query = (
        "WITH x AS (SELECT email, amount FROM shop.sales.payments) "
        "SELECT email, count(*), sum(amount) FROM x GROUP BY email"
    )
    assert _ok(spark, "sql", query, "-C", str(project), "-p", "bob") == (
        "1 row\n"
        "┏━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━┓\n"
        "┃ email ┃ count(1) ┃ sum(amount) ┃\n"
        "┡━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━┩\n"
        "│ ***   │        3 │        91.5 │\n"
        "└───────┴──────────┴─────────────┘\n"
    )


@pytest.mark.delta  # also on JVM Spark (--engine spark)
def test_sql_version_as_of_and_limit(spark: SparkSession, project: Path) -> None:
    query = "SELECT count(*) AS n FROM shop.sales.payments VERSION AS OF 1"
    assert _ok(spark, "sql", query, "-o", "json", "-C", str(project), "-p", "bob") == '{"n": 5}\n'
    code, out, err, _ = _run(
        spark,
        "sql",
        "SELECT id FROM shop.sales.payments VERSION AS OF 1 ORDER BY id",
        "--limit",
        "2",
        "-o",
        "csv",
        "-C",
        str(project),
        "-p",
        "alice",
    )
    assert (code, out, err) == (0, "id\n1\n2\n", "showing the first 2 rows (--limit 0 shows all)\n")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT * FROM shop.sales.nope",
            "unknown table shop.sales.nope (name a catalog table as catalog.schema.table; "
            "`lakehouse tables` lists them)",
        ),
        (
            "SELECT * FROM payments",
            "unknown table payments (name a catalog table as catalog.schema.table; "
            "`lakehouse tables` lists them)",
        ),
        (
            "SELECT * FROM delta.`/tmp/x`",
            "unknown table delta./tmp/x (name a catalog table as catalog.schema.table; "
            "`lakehouse tables` lists them)",
        ),
        (
            "DELETE FROM shop.sales.payments WHERE id = 1",
            "only queries run here (SELECT, WITH, VALUES): DELETE statements are not allowed",
        ),
        ("SELECT 1; SELECT 2", "give one statement (got 2)"),
        (
            "SELECT * FROM read_files('/tmp/x')",
            "table function read_files() is not allowed: read catalog tables by name",
        ),
        (
            "SELECT reflect('java.lang.System', 'exit', 1)",
            "reflect() is not allowed here (it calls into the JVM)",
        ),
        (
            "SELECT * FROM shop.sales.payments TIMESTAMP AS OF '2020-01-01'",
            "shop.sales.payments: only VERSION AS OF <number> is supported for time travel",
        ),
    ],
)
def test_sql_refuses_what_is_not_a_read_of_catalog_tables(
    spark: SparkSession, project: Path, query: str, message: str
) -> None:
    code, out, _, exc = _run(spark, "sql", query, "-C", str(project), "-p", "alice")
    assert code == 1 and out == ""
    assert isinstance(exc, QueryError) and str(exc) == message


def test_sql_refusal_is_one_line_and_exit_1(project: Path) -> None:
    done = _lakehouse("sql", "SELECT * FROM shop.sales.refunds", "-C", str(project), "-p", "bob")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: access denied: bob may not SELECT on shop.sales.refunds "
        "(bob lacks SELECT on shop.sales.refunds)\n"
    )


def test_sql_query_and_sql_serve_coexist() -> None:
    sql = get_command(app).commands["sql"]  # type: ignore[attr-defined]
    ctx = sql.make_context("sql", ["serve", "--port", "1"])
    assert sql.resolve_command(ctx, ["serve", "--port", "1"])[0] == "serve"
    assert sql.resolve_command(ctx, ["SELECT 1", "-o", "csv"])[0] == "query"
    assert sql.resolve_command(ctx, ["-o", "csv", "SELECT 1"])[2] == ["-o", "csv", "SELECT 1"]
    serve_help = CliRunner().invoke(app, ["sql", "serve", "--help"])
    assert serve_help.exit_code == 0 and "Usage: root sql serve [OPTIONS]" in serve_help.stdout


def test_a_mistyped_subcommand_is_not_taken_for_a_query() -> None:
    result = CliRunner().invoke(app, ["sql", "serv"])
    assert result.exit_code == 1
    assert str(result.exception) == (
        "'serv' is neither a query nor a command of `lakehouse sql` (query, serve)"
    )


def test_sql_without_tables_and_options_before_the_query(
    spark: SparkSession, project: Path
) -> None:
    out = _ok(spark, "sql", "-o", "csv", "SELECT 1 AS a, '' AS e, NULL AS n", "-C", str(project))
    assert out == 'a,e,n\n1,"",\n'


# ------------------------------------------------------------------ global options


@pytest.mark.parametrize(
    "args",
    [
        ["-C", "{dir}", "-p", "bob", "head", "payments"],
        ["head", "payments", "-C", "{dir}", "-p", "bob"],
        ["-p", "bob", "head", "payments", "--project-dir", "{dir}"],
        ["--project-dir", "{dir}", "head", "--principal", "bob", "payments"],
    ],
)
def test_global_options_before_or_after_the_command(
    spark: SparkSession, project: Path, args: list[str]
) -> None:
    assert _ok(spark, *(a.format(dir=project) for a in args)) == MASKED_HEAD


def test_tables_and_bundle_validate_take_the_options_in_both_places(
    spark: SparkSession, project: Path
) -> None:
    before = _ok(spark, "-C", str(project), "-p", "bob", "tables")
    after = _ok(spark, "tables", "-C", str(project), "-p", "bob")
    assert before == after
    assert "│ shop.sales.payments        │ silver │         3 │       2 │" in after
    assert "│ shop.sales.refunds         │ silver │ no SELECT │       - │" in after
    valid = "✓ bundle look is valid · target local · engine sail\n"
    assert _ok(spark, "-C", str(project), "bundle", "validate").startswith(valid)
    assert _ok(spark, "bundle", "validate", "-C", str(project)).startswith(valid)
    for args in (["-t", "nope", "bundle", "validate"], ["bundle", "validate", "-t", "nope"]):
        code, _, _, exc = _run(spark, *args, "-C", str(project))
        assert code == 1 and "targets.nope: no such target (defined: local)" in str(exc)
    # the repository's own bundle (the working directory) defines the job `demo`
    for args in (["-C", str(project), "run", "nosuch"], ["run", "nosuch", "-C", str(project)]):
        code, _, _, exc = _run(spark, *args)
        assert code == 1 and "resources.jobs.nosuch: no such job (defined: none)" in str(exc)


def test_var_from_both_places_the_commands_win(
    spark: SparkSession, project: Path, tmp_path: Path
) -> None:
    elsewhere = f"data_root={tmp_path}"
    here = f"data_root={project / 'data'}"
    code, _, _, exc = _run(
        spark, "--var", elsewhere, "head", "payments", "-C", str(project), "-p", "bob"
    )
    assert (
        code == 1
        and str(exc) == "shop.sales.payments has no data yet (its Delta table does not exist)"
    )
    out = _ok(
        spark,
        "--var",
        elsewhere,
        "head",
        "payments",
        "--var",
        here,
        "-C",
        str(project),
        "-p",
        "bob",
    )
    assert out == MASKED_HEAD


def test_principal_after_the_command_wins_over_the_environment(
    spark: SparkSession, project: Path
) -> None:
    runner = CliRunner(env={"LAKEHOUSE_PRINCIPAL": "carol"})
    denied = runner.invoke(app, ["head", "payments", "-C", str(project)])
    assert denied.exit_code == 1 and "carol may not SELECT" in str(denied.exception)
    for args in (["head", "payments", "-p", "bob"], ["-p", "bob", "head", "payments"]):
        result = runner.invoke(app, [*args, "-C", str(project)])
        assert result.exit_code == 0 and result.stdout == MASKED_HEAD, result.exception
