"""The configuration reference is generated from the models: every model, every field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lakehouse.config.bundle_spec import BundleSpec, ConfFile
from lakehouse.config.pipelines import SilverSpec
from lakehouse.config.reference import render, walk
from lakehouse.config.rules import Rule
from lakehouse.config.sources import FileSource, HttpSource


def test_walk_reaches_every_nested_model_once() -> None:
    models = walk()
    assert models[0] is BundleSpec
    assert len(models) == len(set(models))
    assert {ConfFile, SilverSpec, Rule, FileSource, HttpSource} <= set(models)


def test_every_field_of_every_model_has_a_row() -> None:
    text = render()
    for model in walk():
        section = text.split(f"\n### {model.__name__}\n", 1)[1].split("\n### ", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        keys = [f.alias or name for name, f in model.model_fields.items()]  # YAML keys
        assert [r.split("`")[1] for r in rows] == keys, model.__name__


def test_rows_show_type_default_and_description() -> None:
    text = render()
    assert "| `files_per_commit` | int | `100` | files appended per Delta commit (≥ 1) |" in text
    assert "| `format` | `'csv'` \\| `'jsonl'` \\| `'json'` \\| `'parquet'` \\| `'excel'` " in text
    assert "| `run_as` | [RunAs](#runas) \\| null | `null` | identity for jobs and, by" in text
    assert (
        "| `engine` | [EngineSpec](#enginespec) | defaults of EngineSpec "
        "| the Spark engine of this target |" in text
    )
    assert '| `header` | str | `"Authorization"` | — |' in text  # no description: a dash
    assert "| `targets` | dict[str, [Target](#target)] | required | min length 1 |" in text


def test_module_prints_or_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "config.md"
    subprocess.run(
        [sys.executable, "-m", "lakehouse.config.reference", str(out)], check=True, timeout=120
    )
    assert out.read_text(encoding="utf-8") == render()
