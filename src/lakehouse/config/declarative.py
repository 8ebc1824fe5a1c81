"""A declarative pipeline as a bundle declares it (``resources.pipelines.<key>``, the
Databricks Asset Bundles shape) or as Apache Spark's ``spark-pipelines`` spec file does.

Keys that only mean something on Databricks compute (``clusters``, ``serverless``,
``photon``, ``channel``, ``edition``, ``environment`` …) are accepted here and reported as
ignored locally by the bundle loader; an unknown key is still an error.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from lakehouse.config.base import StrictModel

# pipeline keys accepted for Databricks and not used by the local runner
PIPELINE_IGNORED_KEYS = (
    "budget_policy_id",
    "channel",
    "clusters",
    "continuous",
    "deployment",
    "edition",
    "environment",
    "event_log",
    "notifications",
    "photon",
    "serverless",
    "allow_duplicate_names",
    "restart_window",
    "run_as",
    "trigger",
)


class GlobLibrary(StrictModel):
    include: str = Field(description="a glob of source files (.py, .sql), relative to the file")


class PathLibrary(StrictModel):
    path: str = Field(description="a source file or notebook, relative to the declaring file")


class PipelineLibrary(StrictModel):
    """One entry of ``libraries``: exactly one of ``glob``, ``file`` or ``notebook``."""

    glob: GlobLibrary | None = None
    file: PathLibrary | None = None
    notebook: PathLibrary | None = None
    jar: str | None = Field(None, description="Databricks only (ignored locally)")
    maven: dict[str, Any] | None = Field(None, description="Databricks only (ignored locally)")
    whl: str | None = Field(None, description="Databricks only (ignored locally)")

    @model_validator(mode="after")
    def _one_kind(self) -> PipelineLibrary:
        given = [k for k in ("glob", "file", "notebook", "jar", "maven", "whl") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of 'glob', 'file', 'notebook' (or jar/maven/whl)")
        return self


class PipelineResource(StrictModel):
    """A declarative pipeline: its source files, where its datasets live, its configuration.

    Paths (``libraries``, ``root_path``) are absolute once the bundle loader has resolved
    them against the file that declared them (as Databricks does).
    """

    name: str | None = Field(None, description="display name (default: the resource key)")
    catalog: str | None = Field(None, description="catalog of the pipeline's datasets")
    schema_: str | None = Field(
        None, alias="schema", description="schema of the pipeline's datasets"
    )
    target: str | None = Field(None, description="legacy name of 'schema'")
    libraries: list[PipelineLibrary] = Field(default_factory=list)
    root_path: str | None = Field(None, description="folder added to sys.path for imports")
    configuration: dict[str, str] = Field(
        default_factory=dict, description="read by pipeline code with spark.conf.get(key)"
    )
    development: bool | None = Field(None, description="development mode (set by the target)")
    storage: str | None = Field(None, description="Databricks storage location (ignored locally)")
    tags: dict[str, str] = Field(default_factory=dict)
    permissions: list[dict[str, Any]] = Field(default_factory=list)
    # Databricks compute and service settings: accepted, ignored locally
    budget_policy_id: str | None = None
    channel: str | None = None
    clusters: list[dict[str, Any]] | None = None
    continuous: bool | None = None
    deployment: dict[str, Any] | None = None
    edition: str | None = None
    environment: dict[str, Any] | None = None
    event_log: dict[str, Any] | None = None
    notifications: list[dict[str, Any]] | None = None
    photon: bool | None = None
    serverless: bool | None = None
    allow_duplicate_names: bool | None = None
    restart_window: dict[str, Any] | None = None
    run_as: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def schema_name(self) -> str | None:
        """The pipeline's schema (``schema``, or the legacy ``target``)."""
        return self.schema_ or self.target

    def ignored_keys(self) -> list[str]:
        """The Databricks-only keys this pipeline sets."""
        return [k for k in PIPELINE_IGNORED_KEYS if getattr(self, k) is not None]
