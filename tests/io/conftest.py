"""Fixtures of the Delta store tests: a small project (one Silver, one partitioned Gold
table) and its store with every table registered."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import Project, load_project
from lakehouse.engine import EngineKind
from lakehouse.io.delta import DeltaStore

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
CATALOG = """
catalog:
  name: cat
  storage_root: ${var.data_root}/tables
  schemas:
    s:
      tables:
        items:
          layer: silver
          keys: [id]
          columns:
            - {name: id, type: int, nullable: false}
            - {name: label, type: string}
            - {name: qty, type: int}
        events:
          layer: gold
          partition_by: [day]
          columns:
            - {name: id, type: bigint}
            - {name: day, type: date}
"""


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(textwrap.dedent(BUNDLE))
    (tmp_path / "conf" / "catalog.yml").write_text(textwrap.dedent(CATALOG))
    return load_project(tmp_path)


@pytest.fixture()
def tables(spark: SparkSession, project: Project, engine_kind: EngineKind) -> DeltaStore:
    adapter = DeltaStore(spark, project, engine_kind)
    adapter.register_all()
    return adapter
