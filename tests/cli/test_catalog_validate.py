"""`lakehouse catalog validate`: every invalid catalog exits non-zero naming file and key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")

CASES = {
    "unknown principal in a grant": (
        "conf/catalog.yml",
        "- {principal: support, privileges: [SELECT]}   # sees name and email masked",
        "- {principal: suport, privileges: [SELECT]}",
        "conf/catalog.yml: catalog.schemas.silver.tables.customers.grants[0].principal: "
        "unknown principal 'suport'",
    ),
    "grant on an unknown object": (
        "conf/grants.yml",
        '{securable: "${var.catalog}.silver.orders"',
        '{securable: "${var.catalog}.silver.ordres"',
        "conf/grants.yml: grants[1].securable: unknown object 'lakehouse.silver.ordres'",
    ),
    "pii column without a mask": (
        "conf/catalog.yml",
        "- {name: email, type: string, tags: [pii], mask: hash}\n          columns:",
        None,
        None,
    ),
    "unknown privilege": (
        "conf/catalog.yml",
        "- {principal: analysts, privileges: [USE CATALOG]}",
        "- {principal: analysts, privileges: [READ]}",
        "conf/catalog.yml: catalog.grants[0].privileges[0]: Input should be",
    ),
    "hash mask on a non-string column": (
        "conf/catalog.yml",
        "- {name: support_tickets, type: int}",
        "- {name: support_tickets, type: int, mask: hash}",
        "a hash mask needs a string column ('support_tickets' is int); use 'null'",
    ),
    "unknown group member": (
        "conf/catalog.yml",
        "support: [carol]",
        "support: [carole]",
        "conf/catalog.yml: catalog.principals.groups.support[0]: unknown principal 'carole'",
    ),
    "job identity not declared": (
        "bundle.yml",
        "service_principal_name: lakehouse-job",
        "service_principal_name: lakehouse-jobs",
        "bundle.yml: run_as: unknown principal 'lakehouse-jobs'",
    ),
    "a job writes a table missing from the catalog": (
        "conf/pipelines.yml",
        "${var.catalog}.gold.daily_sales:                # a BI table",
        "${var.catalog}.gold.weekly_sales:                # a BI table",
        "conf/pipelines.yml: gold.lakehouse.gold.weekly_sales: unknown table",
    ),
}


def _validate(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run(
        [LAKEHOUSE, "catalog", "validate", "-C", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copy(REPO / "bundle.yml", tmp_path / "bundle.yml")
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    return tmp_path


def test_the_demo_catalog_is_valid(tmp_path: Path) -> None:
    done = _validate(_copy(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "catalog lakehouse: OK" in done.stdout


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_catalogs_name_file_and_key(case: str, tmp_path: Path) -> None:
    file, old, new, expected = CASES[case]
    root = _copy(tmp_path)
    path = root / file
    text = path.read_text()
    if case == "pii column without a mask":  # silver.customers email: tagged, mask removed
        old = "- {name: email, type: string, tags: [pii], mask: hash}"
        position = text.index(old, text.index("silver:"))
        text = (
            text[:position]
            + "- {name: email, type: string, tags: [pii]}"
            + text[position + len(old) :]
        )
        expected = (
            "conf/catalog.yml: catalog.schemas.silver.tables.customers.columns[2].mask: "
            "column 'email' is tagged pii but has no mask"
        )
    else:
        assert old in text, old
        text = text.replace(old, str(new), 1)
    path.write_text(text)
    done = _validate(root)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(expected) in lines[0]
