"""Grants enforced in the table access path on real Delta tables, with the audit log."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.governance.scope import AccessDeniedError
from lakehouse.governance.store import GovernedStore, governed_tables
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.silver.refine import refine_table
from lakehouse.samples.generator import land_sample_files
from tests.support import session_engine

pytestmark = pytest.mark.delta

REPO = Path(__file__).resolve().parents[2]
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
CUSTOMERS = "lakehouse.silver.customers"
AUDIT = "lakehouse.meta.access_audit"


def _tables(spark: SparkSession, project: Project, principal: str) -> GovernedStore:
    tables = governed_tables(
        spark,
        project,
        session_engine(spark),
        principal=principal,
        run_id=f"r-{principal}",
        job="test",
    )
    assert tables.governance is not None
    with tables.governance.task_scope("register"):
        tables.register_all()
    return tables


@pytest.fixture(scope="module")
def project(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The demo bundle with bronze and silver customers written by the job's principal."""
    root = tmp_path_factory.mktemp("governed")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    for name in ("conf", "jobs"):
        shutil.copytree(REPO / name, root / name)
    project = load_project(root, var_overrides={"data_root": str(root / "data")})
    land_sample_files(root / "data" / "landing")
    tables = _tables(spark, project, "lakehouse-job")
    report = RunReport("test", "r-job", "local", session_engine(spark))
    ctx = TaskContext(spark, project, tables, report, task_key="refine")
    assert tables.governance is not None
    with tables.governance.task_scope("refine"):
        ingest_source(ctx, "customers_drop")
        refine_table(ctx, CUSTOMERS)
    return project


def _audit(spark: SparkSession, project: Project, principal: str) -> list[tuple[object, ...]]:
    rows = (
        DeltaStore(spark, project, session_engine(spark))
        .read(AUDIT)
        .where(F.col("principal") == principal)
        .select("privilege", "securable", "allowed", "reason", "task")
        .collect()
    )
    return sorted(tuple(r) for r in rows)


def test_without_select_a_read_is_denied_and_audited(spark: SparkSession, project: Project) -> None:
    tables = _tables(spark, project, "bob")
    assert tables.governance is not None
    with pytest.raises(AccessDeniedError) as denied, tables.governance.task_scope("explore"):
        tables.read(CUSTOMERS)
    assert str(denied.value) == (
        f"access denied: bob may not SELECT on {CUSTOMERS} (bob lacks SELECT on {CUSTOMERS})"
    )
    assert ("SELECT", CUSTOMERS, False, f"bob lacks SELECT on {CUSTOMERS}", "explore") in _audit(
        spark, project, "bob"
    )
    # bob's SELECT on gold is granted (conf/grants.yml), and audited as allowed
    with tables.governance.task_scope("explore"):
        tables.read("lakehouse.silver.orders").limit(1).collect()
    assert (
        "SELECT",
        "lakehouse.silver.orders",
        True,
        "SELECT on lakehouse.silver.orders to analysts",
        "explore",
    ) in _audit(spark, project, "bob")


def test_select_without_unmask_sees_pii_masked_and_the_owner_sees_it_clear(
    spark: SparkSession, project: Project
) -> None:
    clear = {
        r["customer_id"]: (r["email"], r["name"])
        for r in _tables(spark, project, "alice").read(CUSTOMERS).collect()
    }
    masked = {
        r["customer_id"]: (r["email"], r["name"])
        for r in _tables(spark, project, "carol").read(CUSTOMERS).collect()
    }
    assert clear.keys() == masked.keys() and len(clear) == 1000
    email, name = clear["C00001"]
    assert email == "customer1@example.com" and name == "Customer 1"
    assert masked["C00001"] == (hashlib.sha256(email.encode()).hexdigest(), "***")


def test_a_table_handle_is_checked_masked_and_audited_without_a_look_up(
    spark: SparkSession, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    carol = _tables(spark, project, "carol")  # SELECT without UNMASK, no MODIFY
    ref = project.table(CUSTOMERS)

    def no_look_up(self: Project, full_name: str) -> None:
        raise AssertionError(f"{full_name} looked up again")

    monkeypatch.setattr(Project, "table", no_look_up)
    by_handle = {r["customer_id"]: r["email"] for r in carol.read(ref).collect()}
    with pytest.raises(AccessDeniedError, match=f"carol may not MODIFY on {CUSTOMERS} "):
        carol.append(ref, carol.read(ref).limit(1))
    monkeypatch.undo()
    by_name = {r["customer_id"]: r["email"] for r in carol.read(CUSTOMERS).collect()}
    assert by_handle == by_name and len(by_handle) == 1000
    assert by_handle["C00001"] == hashlib.sha256(b"customer1@example.com").hexdigest()


def test_writes_need_modify_and_readers_create_no_tables(
    spark: SparkSession, project: Project, tmp_path: Path
) -> None:
    carol = _tables(spark, project, "carol")
    assert carol.governance is not None
    rows = carol.read(CUSTOMERS).limit(1)
    with pytest.raises(AccessDeniedError, match="carol may not MODIFY"):
        carol.append(CUSTOMERS, rows)
    # on an empty data root a reader creates no tables, and may not create one by reading
    empty = load_project(project.root, var_overrides={"data_root": str(tmp_path / "empty")})
    reader = _tables(spark, empty, "bob")  # bob may SELECT on gold
    assert not any(reader.exists(name) for name in empty.tables)
    with pytest.raises(AccessDeniedError, match=r"bob may not CREATE TABLE on lakehouse\.gold "):
        reader.read("lakehouse.gold.daily_sales")
    audit = _audit(spark, project, "carol")
    assert ("MODIFY", CUSTOMERS, False, f"carol lacks MODIFY on {CUSTOMERS}", "test") in audit


def test_the_cli_acts_as_the_given_principal(project: Project) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "MLFLOW_"))}
    env["LAKEHOUSE_VAR_data_root"] = str(project.data_root)
    denied = subprocess.run(
        [LAKEHOUSE, "--principal", "carol", "refine", "customers", "-C", str(project.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert denied.returncode == 1
    assert denied.stderr.strip().splitlines()[-1].startswith("error: refine of ")
    assert "access denied: carol may not SELECT on lakehouse.bronze.customers" in denied.stderr
    check = subprocess.run(
        [
            LAKEHOUSE,
            "catalog",
            "check",
            "bob",
            "SELECT",
            "silver.customers",
            "-C",
            str(project.root),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 1
    assert check.stderr.strip() == f"error: denied: bob lacks SELECT on {CUSTOMERS}"
