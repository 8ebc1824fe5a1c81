"""Tables added at run time are recorded in the data root and known to the next load."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lakehouse.config import load_project
from lakehouse.config.catalog import TableSpec
from lakehouse.config.runtime_tables import runtime_tables_file, save_runtime_tables
from lakehouse.core.errors import ConfigError


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(
        textwrap.dedent(
            """
            bundle: {name: rt}
            include: [conf/*.yml]
            variables:
              data_root: {default: ./data}
            targets:
              local: {default: true}
            """
        )
    )
    (tmp_path / "conf" / "catalog.yml").write_text(
        "catalog:\n  name: lh\n  storage_root: ${var.data_root}/tables\n"
        "  schemas:\n    sales:\n      tables:\n        declared: {layer: silver}\n"
    )
    return tmp_path


def test_added_tables_are_known_to_the_next_load(root: Path) -> None:
    project = load_project(root)
    project.add_table("lh.sales.numbers", TableSpec(layer="gold", description="n"))
    project.add_table("lh.reports.top", TableSpec(layer="gold"))
    save_runtime_tables(project)
    again = load_project(root)
    numbers = again.table("lh.sales.numbers")
    assert (numbers.spec.layer, numbers.spec.description) == ("gold", "n")
    assert numbers.location == str(root / "data" / "tables" / "sales" / "numbers")
    assert again.table("lh.reports.top").location == str(root / "data/tables/reports/top")
    assert sorted(again.catalog.schemas) == ["meta", "reports", "sales"]
    assert sorted(again.added_tables) == ["lh.reports.top", "lh.sales.numbers"]


def test_the_conf_files_win_over_the_record(root: Path) -> None:
    path = runtime_tables_file(load_project(root))
    path.parent.mkdir(parents=True)
    path.write_text('{"lh.sales.declared": {"layer": "gold", "description": "stale"}}')
    declared = load_project(root).table("lh.sales.declared")
    assert (declared.spec.layer, declared.spec.description) == ("silver", "")


def test_a_broken_record_is_an_error_naming_it(root: Path) -> None:
    path = runtime_tables_file(load_project(root))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    assert str(path) in str(caught.value)
    assert "delete it to forget the tables pipelines added" in str(caught.value)
    path.write_text('{"lh.sales.x": {"layer": "platinum"}}')
    with pytest.raises(ConfigError, match=r"lh\.sales\.x"):
        load_project(root)
