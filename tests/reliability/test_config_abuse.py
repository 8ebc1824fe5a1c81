"""Config abuse as a hostile user or careless operator would try it (issue 18, "Config").

Each case edits a copy of the demo bundle and runs ``lakehouse bundle validate``: a bad
configuration must exit 1 with exactly one line naming the file (and the key or line), fast,
without echoing a secret; an explicitly allowed one must still validate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
BOMB_SECONDS = 10.0  # the alias bomb took 13 s and 500 MB before it failed
CATALOG = "conf/catalog.yml"
ORDERS = "          description: Order events as JSON lines\n"
CUSTOMERS = "          description: Customer CSV exports\n"
FIRST_PARAMETERS = '"--customers", "${var.demo_customers}"'
SCHEDULE = 'quartz_cron_expression: "0 0 2 * * ?"'


@dataclass(frozen=True)
class Case:
    """One abuse: its class, how it edits the bundle, and what the one error line says."""

    fault: str
    edit: Callable[[Path], None]
    expected: tuple[str, ...]  # substrings of the one line; () = must validate


def _replace(file: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / file
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return edit


def _both(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        for one in edits:
            one(root)

    return edit


def _write(file: str, content: bytes) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        (root / file).write_bytes(content)

    return edit


def _orders_location(location: str) -> Callable[[Path], None]:
    return _replace(CATALOG, ORDERS, ORDERS + f"          location: {location}\n")


def _parameters(extra: str) -> Callable[[Path], None]:
    return _replace("bundle.yml", FIRST_PARAMETERS, f"{FIRST_PARAMETERS}, {extra}")


def _alias_bomb() -> bytes:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return ("\n".join(lines) + "\nsources: *a8\n").encode()


def _escaping_symlink(root: Path) -> None:
    outside = root.parent / f"{root.name}-outside.py"
    outside.write_text("TASK = None\n")
    (root / "jobs" / "linked.py").symlink_to(outside)
    _replace("bundle.yml", "python_file: jobs/build_gold.py", "python_file: jobs/linked.py")(root)


ORDERS_KEY = "conf/catalog.yml: catalog.schemas.bronze.tables.orders.location: "
TASK0 = "bundle.yml: resources.jobs.demo.tasks[0].spark_python_task."
VARIABLE = "  demo_customers:\n"
OPT_IN = "allowed_external_paths in bundle.yml"

CASES: dict[str, Case] = {
    # ------------------------------------------------ two tables, one location
    "explicit location shared by two tables": Case(
        "one location per table",
        _both(
            _replace(CATALOG, CUSTOMERS, CUSTOMERS + "          location: ${var.data_root}/x\n"),
            _orders_location("${var.data_root}/x"),
        ),
        (ORDERS_KEY, "the same location as lakehouse.bronze.customers"),
    ),
    "same location spelled differently": Case(
        "one location per table",
        _both(
            _replace(CATALOG, CUSTOMERS, CUSTOMERS + "          location: ./data/x\n"),
            _orders_location("${var.data_root}/tables/../x/"),
        ),
        (ORDERS_KEY, "the same location as lakehouse.bronze.customers"),
    ),
    "location equal to another table's default": Case(
        "one location per table",
        _orders_location("${var.data_root}/tables/bronze/customers"),
        (ORDERS_KEY, "the same location as lakehouse.bronze.customers"),
    ),
    "location of a generated quarantine table": Case(
        "one location per table",
        _orders_location("${var.data_root}/tables/silver/customers_quarantine"),
        (ORDERS_KEY, "the same location as lakehouse.silver.customers_quarantine"),
    ),
    "location inside another table": Case(
        "one location per table",
        _orders_location("${var.data_root}/tables/bronze/customers/orders"),
        (ORDERS_KEY, "overlaps lakehouse.bronze.customers"),
    ),
    # ------------------------------------------------ encodings
    "latin-1 byte in a conf file": Case(
        "non-UTF-8 YAML",
        lambda root: (root / CATALOG).write_bytes(
            (root / CATALOG).read_bytes().replace(b"# The catalog", b"# Le catalogue \xe9", 1)
        ),
        ("conf/catalog.yml: line 1: not UTF-8 text: byte 0xe9 at column 16 (offset 15",),
    ),
    "UTF-16 bundle.yml": Case(
        "non-UTF-8 YAML",
        lambda root: (root / "bundle.yml").write_bytes(
            (root / "bundle.yml").read_text().encode("utf-16")
        ),
        ("bundle.yml: not UTF-8 text: NUL byte", "UTF-16"),
    ),
    "binary file among the conf files": Case(
        "non-UTF-8 YAML", _write("conf/zz.yml", bytes(range(256))), ("conf/zz.yml: not UTF-8",)
    ),
    "invalid UTF-8 continuation": Case(
        "non-UTF-8 YAML",
        _write("conf/zz.yml", b"sources: {}\n# caf\xc3(\n"),
        ("conf/zz.yml: line 2: not UTF-8 text: byte 0xc3",),
    ),
    # ------------------------------------------------ cron
    "quartz cron out of range": Case(
        "invalid cron",
        _replace("bundle.yml", SCHEDULE, 'quartz_cron_expression: "99 99 99 * * ?"'),
        ("bundle.yml: resources.jobs.demo.schedule: ", "99"),
    ),
    "five-field cron out of range": Case(
        "invalid cron",
        _replace("bundle.yml", SCHEDULE, 'cron_expression: "61 * * * *"'),
        ("bundle.yml: resources.jobs.demo.schedule: ", "61"),
    ),
    "cron with a field too many": Case(
        "invalid cron",
        _replace("bundle.yml", SCHEDULE, 'cron_expression: "0 0 2 * * * *"'),
        ("bundle.yml: resources.jobs.demo.schedule: ",),
    ),
    # ------------------------------------------------ paths outside the project / data root
    "absolute table location outside the data root": Case(
        "path outside the project",
        _orders_location("/tmp/lakehouse-abuse/orders"),
        (ORDERS_KEY, "/tmp/lakehouse-abuse/orders is outside the data root", OPT_IN),
    ),
    "relative table location climbing out": Case(
        "path outside the project",
        _orders_location("../elsewhere/orders"),
        (ORDERS_KEY, "is outside the data root"),
    ),
    "table location in the project but not the data root": Case(
        "path outside the project",
        _orders_location("./jobs/orders"),
        (ORDERS_KEY, "is outside the data root"),
    ),
    "storage_root outside the data root": Case(
        "path outside the project",
        _replace(CATALOG, "storage_root: ${var.data_root}/tables", "storage_root: /var/tmp/t"),
        ("conf/catalog.yml: catalog.storage_root: /var/tmp/t is outside the data root",),
    ),
    "landing path outside": Case(
        "path outside the project",
        _replace("conf/sources.yml", "path: ${var.data_root}/landing/customers", "path: /etc"),
        ("conf/sources.yml: sources.customers_drop.path: /etc is outside the project",),
    ),
    "python_file climbing out": Case(
        "path outside the project",
        _replace("bundle.yml", "python_file: jobs/land_demo_files.py", "python_file: ../x.py"),
        (TASK0 + "python_file: ", "is outside the project"),
    ),
    "python_file absolute": Case(
        "path outside the project",
        _replace("bundle.yml", "python_file: jobs/land_demo_files.py", "python_file: /etc/x.py"),
        (TASK0 + "python_file: /etc/x.py is outside the project",),
    ),
    "python_file symlink leaving the project": Case(
        "path outside the project",
        _escaping_symlink,
        ("bundle.yml: resources.jobs.demo.tasks[3].spark_python_task.python_file: ",),
    ),
    # ------------------------------------------------ YAML size and alias limits
    "alias bomb": Case(
        "YAML bomb", _write("conf/zz.yml", _alias_bomb()), ("conf/zz.yml: refused", "alias")
    ),
    "recursive alias": Case(
        "YAML bomb", _write("conf/zz.yml", b"a: &a [*a]\n"), ("conf/zz.yml: refused", "itself")
    ),
    "3 MiB file": Case(
        "YAML bomb",
        _write("conf/zz.yml", b"# padding\n" * (300 * 1024)),
        ("conf/zz.yml: larger than 2 MiB",),
    ),
    "nesting 500 deep": Case(
        "YAML bomb",
        _write("conf/zz.yml", b"a: " + b"[" * 500 + b"]" * 500 + b"\n"),
        ("conf/zz.yml: refused: the YAML is nested deeper than 64 levels",),
    ),
    # ------------------------------------------------ secrets in plain parameters
    "password flag and value": Case(
        "secret in a plain parameter",
        _parameters('"--password", "hunter2"'),
        (TASK0 + "parameters: parameters[4] '--password' looks like a secret", "environment"),
    ),
    "api key as name=value": Case(
        "secret in a plain parameter",
        _parameters('"--api-key=hunter2"'),
        (TASK0 + "parameters: parameters[4] '--api-key' looks like a secret",),
    ),
    "token-shaped value": Case(
        "secret in a plain parameter",
        _parameters('"ghp_' + "h" * 36 + '"'),
        (TASK0 + "parameters: parameters[4] has a value that looks like a credential",),
    ),
    "password inside a URL": Case(
        "secret in a plain parameter",
        _parameters('"--db", "postgresql://etl:hunter2@db:5432/x"'),
        (TASK0 + "parameters: parameters[5] has a value that looks like a credential",),
    ),
    "secret variable used in a parameter": Case(
        "secret in a plain parameter",
        _both(
            _replace("bundle.yml", VARIABLE, "  db_password:\n    default: hunter2\n" + VARIABLE),
            _parameters('"--db-login", "${var.db_password}"'),
        ),
        (TASK0 + "parameters[5]: variable 'db_password' looks like a secret",),
    ),
    "secret-looking header": Case(
        "secret in a plain parameter",
        _replace(
            "conf/sources.yml",
            'params: {group_number: "1"}',
            'params: {group_number: "1"}\n    headers: {X-Api-Key: hunter2}',
        ),
        ("conf/sources.yml: sources.events_api", "header 'X-Api-Key' looks like a secret"),
    ),
    "credential in a harmless-looking header": Case(
        "secret in a plain parameter",
        _replace(
            "conf/sources.yml",
            'params: {group_number: "1"}',
            'params: {group_number: "1"}\n    headers: {X-Custom: "Bearer hunter2hunter2"}',
        ),
        ("conf/sources.yml: sources.events_api", "has a value that looks like a credential"),
    ),
    # ------------------------------------------------ already refused before issue 18
    "unknown key": Case(
        "baseline", _replace(CATALOG, "storage_root:", "storage_rot:"), ("conf/catalog.yml",)
    ),
    "duplicate key": Case(
        "baseline",
        _replace(CATALOG, "  owner: data-engineers\n", "  owner: a\n  owner: b\n"),
        ("conf/catalog.yml: line", "duplicate key 'owner'"),
    ),
    "undefined variable": Case(
        "baseline",
        _replace(CATALOG, "${var.data_root}/tables", "${var.data_rot}/tables"),
        ("conf/catalog.yml: catalog.storage_root: undefined variable 'data_rot'",),
    ),
    "python object tag": Case(
        "baseline",
        _write("conf/zz.yml", b"a: !!python/object/apply:os.system ['true']\n"),
        ("conf/zz.yml: line 1: invalid YAML",),
    ),
    # ------------------------------------------------ explicitly allowed: must validate
    "external location allowed by opt-in": Case(
        "allowed",
        _both(
            _orders_location("/tmp/lakehouse-abuse/orders"),
            _replace(
                "bundle.yml",
                "include:\n",
                "allowed_external_paths: [/tmp/lakehouse-abuse]\ninclude:\n",
            ),
        ),
        (),
    ),
    "secret passed by environment variable name": Case(
        "allowed", _parameters('"--password-env", "DB_PASSWORD"'), ()
    ),
    "UTF-8 with a byte order mark": Case(
        "allowed",
        lambda root: (root / CATALOG).write_bytes(b"\xef\xbb\xbf" + (root / CATALOG).read_bytes()),
        (),
    ),
}


def _validate(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run(
        [LAKEHOUSE, "bundle", "validate", "-C", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _demo_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "jobs", root / "jobs")
    return root


@pytest.mark.parametrize("name", list(CASES))
def test_config_abuse(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    root = _demo_copy(tmp_path)
    case.edit(root)
    started = time.monotonic()
    done = _validate(root)
    elapsed = time.monotonic() - started
    if not case.expected:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for part in case.expected:
        assert part in lines[0], lines[0]
    assert "hunter2" not in lines[0]  # an error line never echoes the secret
    assert "Traceback" not in done.stderr
    assert elapsed < BOMB_SECONDS, f"{elapsed:.1f} s"
