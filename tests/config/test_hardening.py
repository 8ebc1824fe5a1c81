"""Hostile or careless config files (issue 18): encodings, YAML bombs, table locations,
paths outside the project, secrets in plain task parameters. Each fails with one ConfigError
naming the file and key (or line)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from lakehouse.config import load_project
from lakehouse.config.base import parameter_secret, secret_name
from lakehouse.config.jobs import SparkPythonTask
from lakehouse.config.loader import MAX_YAML_NODES, read_yaml
from lakehouse.config.sources import HttpSource
from lakehouse.core.errors import ConfigError
from tests.config.editing import edit_yaml, load_error

ORDERS = "catalog.schemas.bronze.tables.orders.location"


def _read_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read_yaml(path, "conf/x.yml")
    return info.value


def _set_orders_location(project_dir: Path, location: str) -> None:
    edit_yaml(
        project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["bronze"]["tables"]["orders"].update(
            {"location": location}
        ),
    )


# ---------------------------------------------------------------- encodings


def test_a_latin1_file_is_named_with_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_bytes(b"sources: {}\n# r\xe9sum\xe9\n")
    err = _read_error(path)
    assert (err.file, err.key) == ("conf/x.yml", "line 2")
    assert err.message.startswith("not UTF-8 text: byte 0xe9 at column 4 (offset 15: ")
    assert err.message.endswith("save the file as UTF-8")


def test_a_utf16_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text("sources: {}\n", encoding="utf-16")
    err = _read_error(path)
    assert err.message == "not UTF-8 text: NUL byte at offset 3 (UTF-16 text?); save it as UTF-8"


# ---------------------------------------------------------------- YAML bounds


def _alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_fails_fast_and_small(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text(_alias_bomb())
    tracemalloc.start()
    started = time.monotonic()
    err = _read_error(path)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert err.message == (
        f"refused: the YAML expands to more than {MAX_YAML_NODES:,} values once aliases are "
        "followed (an alias bomb?)"
    )
    assert elapsed < 2.0
    assert peak < 20 * 2**20


def test_shared_anchors_within_bounds_still_load(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text(_alias_bomb(levels=3) + "b: *a2\n")
    data = read_yaml(path, "conf/x.yml")
    assert data["b"] == [[["lol"] * 9] * 9] * 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"a: &a [*a]\n", "refused: the YAML uses an anchor inside itself (a recursive alias)"),
        (b"a: " + b"[" * 100 + b"]" * 100, "refused: the YAML is nested deeper than 64 levels"),
        (b"a: " + b"[" * 5000 + b"]" * 5000, "refused: the YAML is nested deeper than 64 levels"),
        (b"#\n" * (1024 * 1024 + 1), "larger than 2 MiB, the limit for a config file"),
        (
            "\n".join(
                ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 99)]
            ).encode(),
            "refused: the YAML is nested deeper than 64 levels once aliases are followed",
        ),
    ],
    ids=["recursive alias", "deep", "deeper than the parser can go", "too large", "alias chain"],
)
def test_yaml_over_the_bounds_is_refused(tmp_path: Path, text: bytes, message: str) -> None:
    path = tmp_path / "x.yml"
    path.write_bytes(text)
    assert _read_error(path).message == message


# ---------------------------------------------------------------- table locations


@pytest.mark.parametrize(
    ("location", "clash"),
    [
        ("${var.data_root}/tables/bronze/customers", "is the same location as"),
        ("./data/tables/bronze/customers/", "is the same location as"),
        ("data/tables/silver/../bronze/customers", "is the same location as"),
        ("${var.data_root}/tables/bronze/customers/nested", "overlaps"),
    ],
)
def test_one_location_per_table(demo_project_dir: Path, location: str, clash: str) -> None:
    _set_orders_location(demo_project_dir, location)
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/catalog.yml", ORDERS)
    customers = demo_project_dir / "data" / "tables" / "bronze" / "customers"
    assert err.message.startswith(f"{demo_project_dir.resolve() / 'data'}")
    assert f"{clash} lakehouse.bronze.customers ({customers.resolve()})" in err.message


def test_a_symlinked_location_is_resolved(demo_project_dir: Path) -> None:
    (demo_project_dir / "data" / "tables" / "bronze" / "customers").mkdir(parents=True)
    (demo_project_dir / "data" / "alias").symlink_to(demo_project_dir / "data" / "tables")
    _set_orders_location(demo_project_dir, "${var.data_root}/alias/bronze/customers")
    err = load_error(demo_project_dir)
    assert err.key == ORDERS
    assert "is the same location as lakehouse.bronze.customers" in err.message


# ---------------------------------------------------------------- paths outside


def test_a_location_outside_the_data_root_is_refused(demo_project_dir: Path) -> None:
    _set_orders_location(demo_project_dir, "/tmp/lakehouse-elsewhere/orders")
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/catalog.yml", ORDERS)
    assert err.message == (
        "/tmp/lakehouse-elsewhere/orders is outside the data root "
        f"{(demo_project_dir / 'data').resolve()}; list it (or a parent) under "
        "allowed_external_paths in bundle.yml to allow it"
    )


def test_allowed_external_paths_is_the_opt_in(demo_project_dir: Path) -> None:
    _set_orders_location(demo_project_dir, "/tmp/lakehouse-elsewhere/orders")
    edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d.update({"allowed_external_paths": ["/tmp/lakehouse-elsewhere"]}),
    )
    project = load_project(demo_project_dir)
    assert project.table("lakehouse.bronze.orders").location == "/tmp/lakehouse-elsewhere/orders"


def test_a_python_file_outside_the_project_is_refused(demo_project_dir: Path) -> None:
    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["resources"]["jobs"]["demo"]["tasks"][2]["spark_python_task"]["python_file"] = (
            "jobs/../../x.py"
        )

    edit_yaml(demo_project_dir / "bundle.yml", edit)
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == (
        "bundle.yml",
        "resources.jobs.demo.tasks[2].spark_python_task.python_file",
    )
    assert err.message.startswith(f"{demo_project_dir.resolve().parent / 'x.py'} is outside ")


def test_a_landing_folder_outside_is_refused(demo_project_dir: Path) -> None:
    edit_yaml(
        demo_project_dir / "conf" / "sources.yml",
        lambda d: d["sources"]["orders_drop"].update({"path": "/etc"}),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/sources.yml", "sources.orders_drop.path")
    assert "/etc is outside the project" in err.message


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        (["--password", "hunter2"], "parameters[0] '--password' looks like a secret"),
        (["--x", "1", "--api-key=k"], "parameters[2] '--api-key' looks like a secret"),
        (["client_secret=k"], "parameters[0] 'client_secret' looks like a secret"),
        (["AKIAABCDEFGHIJKLMNOP"], "parameters[0] has a value that looks like a credential"),
        (["--url=https://u:p@h/x"], "parameters[0] '--url' has a value that looks like a cred"),
        (["--password-env", "DB_PASSWORD"], None),
        (["--token-file", "/run/secrets/t"], None),
        (["--landing", "./data/landing", "--customers", "1000"], None),
        (["--password"], None),
    ],
)
def test_secret_looking_parameters(parameters: list[str], reason: str | None) -> None:
    found = parameter_secret(parameters)
    assert (found is None) if reason is None else (found or "").startswith(reason)


def test_the_header_rule_and_the_parameter_rule_are_one() -> None:
    names = ["Authorization", "X-Api-Key", "api-key", "Cookie", "X-Auth-Token", "db_password"]
    assert all(secret_name(n) for n in names)
    assert not any(secret_name(n) for n in ["Accept", "X-Request-Id", "group_number", "token_env"])
    with pytest.raises(ValueError, match="header 'X-Auth-Token' looks like a secret"):
        HttpSource(kind="http", url="http://h", headers={"X-Auth-Token": "t"}, target="c.s.t")
    with pytest.raises(ValueError, match=r"'--auth-token' looks like a secret; task param"):
        SparkPythonTask(python_file="jobs/x.py", parameters=["--auth-token", "t"])


def test_a_secret_parameter_names_file_and_key_not_the_secret(demo_project_dir: Path) -> None:
    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["resources"]["jobs"]["demo"]["tasks"][1]["spark_python_task"]["parameters"] += [
            "--password",
            "hunter2",
        ]

    edit_yaml(demo_project_dir / "bundle.yml", edit)
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == (
        "bundle.yml",
        "resources.jobs.demo.tasks[1].spark_python_task.parameters",
    )
    assert err.message.startswith("parameters[2] '--password' looks like a secret; ")
    assert "environment variable" in err.message
    assert "hunter2" not in str(err)


def test_a_secret_variable_in_a_parameter_is_refused(demo_project_dir: Path) -> None:
    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["variables"]["warehouse_token"] = {"default": "hunter2"}
        d["resources"]["jobs"]["demo"]["tasks"][1]["spark_python_task"]["parameters"] += [
            "--login",
            "${var.warehouse_token}",
        ]

    edit_yaml(demo_project_dir / "bundle.yml", edit)
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == (
        "bundle.yml",
        "resources.jobs.demo.tasks[1].spark_python_task.parameters[3]",
    )
    assert err.message.startswith("variable 'warehouse_token' looks like a secret; ")
    assert "hunter2" not in str(err)
