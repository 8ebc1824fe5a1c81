"""A small project and a run on the session fixture, for the declarative pipeline runner."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.config import load_project
from lakehouse.config.declarative import PipelineResource
from lakehouse.config.project import Project
from lakehouse.engine import EngineSession
from lakehouse.pipelines.declarative.spec import PipelineDefinition, from_resource
from lakehouse.runtime.run import RunAs, RunContext, open_run


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    write(
        tmp_path / "bundle.yml",
        """
        bundle: {name: sdp}
        include: [conf/*.yml]
        variables:
          data_root: {default: ./data}
        targets:
          local: {default: true}
        """,
    )
    write(
        tmp_path / "conf" / "catalog.yml",
        """
        catalog:
          name: lh
          storage_root: ${var.data_root}/tables
          schemas:
            sales: {}
        """,
    )
    return load_project(tmp_path)


@pytest.fixture()
def run(project: Project, engine_session: EngineSession) -> Iterator[RunContext]:
    with open_run(
        project, job="pipeline-test", session=engine_session, run_as=RunAs(explicit="tester")
    ) as opened:
        yield opened


def definition(
    project: Project, key: str, files: list[str], configuration: dict[str, str] | None = None
) -> PipelineDefinition:
    """A bundle pipeline resource (as dab-config resolves it: absolute paths) read in."""
    resource = PipelineResource.model_validate(
        {
            "catalog": "lh",
            "schema": "sales",
            "libraries": [
                {"notebook" if Path(f).suffix == "" else "file": {"path": str(project.root / f)}}
                for f in files
            ],
            "configuration": configuration or {},
        }
    )
    return from_resource(project, key, resource)
