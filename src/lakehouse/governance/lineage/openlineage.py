"""OpenLineage run events for every task, with ``openlineage-python``.

A task's run gets a START event when it first writes a table (a task that only reads tables:
at its end; its time is the task's start either way) and a COMPLETE (or FAIL) event when it
ends; a task that touches no table (or only bookkeeping tables) emits nothing. Events carry:

* job namespace = the bundle name, job name = ``<job>.<task>``, run id = a UUID derived from
  the lakehouse run id and the task (the same run always gets the same id), and a ``parent``
  facet naming the job run;
* inputs: the tables the task read (Delta version read) and the landing directories / API URLs
  of the Bronze tables it wrote; outputs: the tables it wrote (new Delta version, rows written)
  with their ``columnLineage``;
* datasets named after their storage location (OpenLineage naming: namespace ``file`` and the
  absolute path for local tables, ``s3://bucket`` and the key for S3, ...), with ``schema``,
  ``version`` (the Delta version), ``storage`` and a ``symlinks`` facet holding the catalog
  table name.

Transport: ``openlineage_url`` (a bundle variable) or ``OPENLINEAGE_URL`` sends the events by HTTP
to a Marquez-compatible endpoint (``OPENLINEAGE_ENDPOINT``, default ``api/v1/lineage``;
``OPENLINEAGE_API_KEY`` for a bearer token); an OpenLineage client configuration
(``OPENLINEAGE_CONFIG`` or ``OPENLINEAGE__TRANSPORT__*``) is used as the client reads it;
otherwise the events are appended as JSON lines to ``<data_root>/lineage/openlineage-<run
id>.jsonl``. ``OPENLINEAGE_DISABLED=true`` turns emission off. An event that cannot be sent is
a warning, never a failed task.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import json
import logging
import os
import pkgutil
import re
import types
import typing
import uuid
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lakehouse import __version__
from lakehouse.config.project import Project
from lakehouse.governance.lineage.columns import InputRef, split_column
from lakehouse.governance.lineage.recorder import TableWrite, TaskActivity
from lakehouse.io.table_schema import effective_columns

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet
    from openlineage.client.transport import Transport

log = logging.getLogger(__name__)

VAR_URL = "openlineage_url"
ENV_URL = "OPENLINEAGE_URL"
ENV_ENDPOINT = "OPENLINEAGE_ENDPOINT"
ENV_API_KEY = "OPENLINEAGE_API_KEY"
ENV_DISABLED = "OPENLINEAGE_DISABLED"
ENV_CONFIG = "OPENLINEAGE_CONFIG"
MAX_FAILURES = 3  # consecutive send failures before a run stops trying
_RUN_NAMESPACE = uuid.UUID("5d7c4f0e-3c55-4a43-9d7c-6c1f0b7a4e21")  # lakehouse run ids


# ---------------------------------------------------------------- naming


def dataset_naming(location: str) -> tuple[str, str]:
    """OpenLineage (namespace, name) of a storage location (table directory, landing path, URL)."""
    parsed = urlparse(location)
    scheme = parsed.scheme.lower()
    if not scheme or len(scheme) == 1:  # a local path (or a Windows drive letter)
        return "file", location
    if scheme == "file":
        return "file", parsed.path or "/"
    scheme = {"s3a": "s3", "s3n": "s3"}.get(scheme, scheme)
    path = parsed.path
    if scheme in ("s3", "gs", "abfss", "wasbs"):
        return f"{scheme}://{parsed.netloc}", path.lstrip("/")
    if scheme in ("http", "https"):
        return f"{scheme}://{parsed.netloc}", path or "/"
    return f"{scheme}://{parsed.netloc}", path


def run_uuid(run_id: str, job: str, task: str | None = None) -> str:
    """A deterministic UUID for a lakehouse run (``task`` None) or for one task of it."""
    return str(uuid.uuid5(_RUN_NAMESPACE, f"{job}/{run_id}" + (f"/{task}" if task else "")))


def events_file(project: Project, run_id: str) -> str:
    """Where the file transport appends a run's events: ``<data_root>/lineage/...jsonl``."""
    root = project.resolve_path(str(project.variables.get("data_root", "./data")))
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return f"{root.rstrip('/')}/lineage/openlineage-{safe}.jsonl"


def configured_url(project: Project) -> str | None:
    """The HTTP endpoint events go to: bundle variable ``openlineage_url``, else the env."""
    value = str(project.variables.get(VAR_URL) or "").strip()
    return value or os.environ.get(ENV_URL, "").strip() or None


def build_transport(project: Project, run_id: str) -> Transport | None:
    """The configured transport (None: let the OpenLineage client read its own config)."""
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    url = configured_url(project)
    if url:
        config: dict[str, Any] = {
            "url": url,
            "endpoint": os.environ.get(ENV_ENDPOINT, "api/v1/lineage"),
            "timeout": 5.0,
            "retry": {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2},
        }
        if os.environ.get(ENV_API_KEY):
            config["auth"] = {"type": "api_key", "apiKey": os.environ[ENV_API_KEY]}
        return HttpTransport(HttpConfig.from_dict(config))
    if os.environ.get(ENV_CONFIG) or any(
        k.startswith("OPENLINEAGE__TRANSPORT") for k in os.environ
    ):
        return None
    path = events_file(project, run_id)
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=path, append=True))


# ---------------------------------------------------------------- the emitter


class OpenLineageEmitter:
    """Sends a task's START and COMPLETE / FAIL run events; failures are logged, not raised."""

    def __init__(self, project: Project, run_id: str, transport: Transport | None = None) -> None:
        self.project = project
        self.run_id = run_id
        self.namespace = project.name
        self._transport = transport
        self._client: OpenLineageClient | None = None
        self._failures = 0
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return (
            os.environ.get(ENV_DISABLED, "").strip().lower() != "true"
            and self._failures < MAX_FAILURES
        )

    def start(self, activity: TaskActivity) -> None:
        self._emit("START", activity, None)

    def finish(self, activity: TaskActivity, error: BaseException | None) -> None:
        self._emit("FAIL" if error is not None else "COMPLETE", activity, error)

    def _emit(self, state: str, activity: TaskActivity, error: BaseException | None) -> None:
        if not self.enabled:
            return
        try:
            event = run_event(self.project, state, activity, error)
            self.client.emit(event)
            self._failures = 0
            self.sent += 1
        except Exception as exc:
            self._failures += 1
            stop = " (no more events this run)" if self._failures >= MAX_FAILURES else ""
            log.warning(
                "OpenLineage %s event of %s.%s not sent: %s%s",
                state,
                activity.job,
                activity.task,
                exc,
                stop,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )

    @property
    def client(self) -> OpenLineageClient:
        if self._client is None:
            from openlineage.client import OpenLineageClient

            transport = self._transport or build_transport(self.project, self.run_id)
            self._client = OpenLineageClient(transport=transport)
        return self._client


def openlineage_emitter(project: Project, run_id: str) -> OpenLineageEmitter | None:
    """The emitter a governed run gets (None when ``OPENLINEAGE_DISABLED=true``)."""
    if os.environ.get(ENV_DISABLED, "").strip().lower() == "true":
        return None
    return OpenLineageEmitter(project, run_id)


# ---------------------------------------------------------------- events


def run_event(
    project: Project, state: str, activity: TaskActivity, error: BaseException | None = None
) -> RunEvent:
    """The OpenLineage run event of a task in ``state`` (START | COMPLETE | FAIL)."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import (
        error_message_run,
        job_type_job,
        parent_run,
        processing_engine_run,
        tags_run,
    )

    namespace = project.name
    job_run = run_uuid(activity.run_id, activity.job)
    run_facets: dict[str, RunFacet] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=job_run),
            job=parent_run.Job(namespace=namespace, name=activity.job),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=job_run),
                job=parent_run.RootJob(namespace=namespace, name=activity.job),
            ),
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=_engine_version(activity.engine),
            name=activity.engine or "spark",
            openlineageAdapterVersion=__version__,
        ),
        "tags": tags_run.TagsRunFacet(
            tags=[
                tags_run.TagsRunFacetFields("lakehouse.run_id", activity.run_id, "LAKEHOUSE"),
                tags_run.TagsRunFacetFields("lakehouse.principal", activity.principal, "LAKEHOUSE"),
                tags_run.TagsRunFacetFields("lakehouse.target", project.target_name, "LAKEHOUSE"),
            ]
        ),
    }
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=str(error)[:2000] or type(error).__name__, programmingLanguage="python"
        )
    inputs, outputs = datasets(project, activity)
    event_time = activity.started_at if state == "START" else dt.datetime.now(dt.UTC)
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=dt.UTC)
    return RunEvent(
        eventType=RunState(state),
        eventTime=event_time.isoformat(),
        run=Run(runId=run_uuid(activity.run_id, activity.job, activity.task), facets=run_facets),
        job=Job(
            namespace=namespace,
            name=f"{activity.job}.{activity.task}",
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="SPARK", jobType="TASK"
                )
            },
        ),
        inputs=inputs,
        outputs=outputs,
    )


def datasets(
    project: Project, activity: TaskActivity
) -> tuple[list[InputDataset], list[OutputDataset]]:
    """Inputs: tables read (not also written) and declared inputs of the writes; outputs: writes."""
    inputs: dict[tuple[str, str], InputRef] = {}
    for table, version in activity.reads.items():
        table_ref = project.tables.get(table)
        if (
            table_ref is not None
            and table_ref.spec.layer != "system"
            and table not in activity.writes
        ):
            inputs[("table", table)] = InputRef("table", table, version)
    for write in activity.writes.values():
        for ref in write.inputs:
            if ref.key not in inputs and ref.name not in activity.writes:
                inputs[ref.key] = ref
    return (
        [input_dataset(project, ref) for ref in inputs.values()],
        [output_dataset(project, write) for write in activity.writes.values()],
    )


def input_dataset(project: Project, ref: InputRef) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset

    if ref.kind == "table" and ref.name in project.tables:
        namespace, name = dataset_naming(project.tables[ref.name].location)
        return InputDataset(
            namespace=namespace, name=name, facets=table_facets(project, ref.name, ref.version)
        )
    namespace, name = dataset_naming(ref.name)
    return InputDataset(namespace=namespace, name=name, facets=source_facets(project, ref))


def output_dataset(project: Project, write: TableWrite) -> OutputDataset:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import (
        OutputDatasetFacet,
        column_lineage_dataset,
        output_statistics_output_dataset,
    )

    ref = project.table(write.table)
    namespace, name = dataset_naming(ref.location)
    facets = table_facets(project, write.table, write.version)
    fields: dict[str, column_lineage_dataset.Fields] = {}
    for column, mapping in write.columns.items():
        input_fields = []
        for source in mapping.sources:
            table, field = split_column(source)
            if table not in project.tables:
                continue
            in_namespace, in_name = dataset_naming(project.tables[table].location)
            input_fields.append(
                column_lineage_dataset.InputField(
                    namespace=in_namespace,
                    name=in_name,
                    field=field,
                    transformations=[
                        column_lineage_dataset.Transformation(
                            type="DIRECT", subtype=mapping.subtype
                        )
                    ],
                )
            )
        if input_fields:
            fields[column] = column_lineage_dataset.Fields(inputFields=input_fields)
    if fields:
        facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)
    output_facets: dict[str, OutputDatasetFacet] = {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=write.rows_written
        )
    }
    return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=output_facets)


def table_facets(project: Project, table: str, version: int | None) -> dict[str, DatasetFacet]:
    """schema, version (Delta), storage, dataSource, catalog and symlinks (the table name)."""
    from openlineage.client.facet_v2 import (
        catalog_dataset,
        dataset_version_dataset,
        datasource_dataset,
        schema_dataset,
        storage_dataset,
        symlinks_dataset,
    )

    ref = project.table(table)
    namespace, _ = dataset_naming(ref.location)
    storage_root = project.resolve_path(project.catalog.storage_root)
    catalog_namespace = _join_namespace(*dataset_naming(storage_root))
    facets: dict[str, DatasetFacet] = {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=c.name, type=c.type, description=c.comment or None
                )
                for c in effective_columns(ref)
            ]
        ),
        "storage": storage_dataset.StorageDatasetFacet(storageLayer="delta", fileFormat="parquet"),
        "dataSource": datasource_dataset.DatasourceDatasetFacet(name=namespace, uri=namespace),
        "symlinks": symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[
                symlinks_dataset.Identifier(namespace=catalog_namespace, name=table, type="TABLE")
            ]
        ),
        "catalog": catalog_dataset.CatalogDatasetFacet(
            framework="delta",
            type="lakehouse",
            name=project.catalog.name,
            warehouseUri=catalog_namespace,
            source="lakehouse",
        ),
    }
    if version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(version)
        )
    return facets


def source_facets(project: Project, ref: InputRef) -> dict[str, DatasetFacet]:
    """A landing directory or an API: dataSource, and the format of a file source."""
    from openlineage.client.facet_v2 import datasource_dataset, storage_dataset

    namespace, _ = dataset_naming(ref.name)
    facets: dict[str, DatasetFacet] = {
        "dataSource": datasource_dataset.DatasourceDatasetFacet(name=namespace, uri=namespace)
    }
    for source in project.sources.values():
        if source.kind == "files" and project.resolve_path(source.path) == ref.name:
            facets["storage"] = storage_dataset.StorageDatasetFacet(
                storageLayer="files", fileFormat=source.format
            )
    return facets


def _join_namespace(namespace: str, root: str) -> str:
    """A location as a URI (``file:/path``, ``s3://bucket/key``): the catalog's namespace."""
    if namespace == "file":
        return f"file:{root}"
    return (namespace + (root if root.startswith("/") else f"/{root}")).rstrip("/")


def _engine_version(engine: str) -> str:
    package = "pysail" if engine == "sail" else "pyspark"
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- reading events back


def read_events(path: str | Path) -> list[RunEvent]:
    """The run events of a JSON-lines file, parsed into the client's own models."""
    text = Path(path).read_text(encoding="utf-8")
    return [parse_run_event(json.loads(line)) for line in text.splitlines() if line.strip()]


def parse_run_event(data: dict[str, Any]) -> RunEvent:
    """A run event dict -> ``openlineage.client.event_v2.RunEvent``; raises on anything the
    client's models do not define (unknown keys, unknown facets, invalid values)."""
    from openlineage.client.event_v2 import RunEvent

    event = _structure(data, RunEvent)
    assert isinstance(event, RunEvent)
    return event


def _structure(value: Any, hint: Any) -> Any:
    """``value`` (parsed JSON) as an instance of the type ``hint``; raises if it does not fit."""
    import attr

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _structure_union(value, args)
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {value!r}")
        return [_structure(v, args[0]) for v in value]
    if origin is dict:
        return _structure_dict(value, args[1])
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if isinstance(hint, type) and attr.has(hint):
        return _structure_attrs(value, hint)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint):
        raise TypeError(f"expected {hint.__name__}, got {value!r}")
    return value


def _structure_union(value: Any, args: tuple[Any, ...]) -> Any:
    """``value`` as the first member of the union that fits (None for an optional's None)."""
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return _structure(value, arg)
        except (TypeError, ValueError, KeyError) as exc:
            errors.append(str(exc))
    raise ValueError("; ".join(errors))


def _structure_dict(value: Any, item: Any) -> dict[Any, Any]:
    """A mapping of ``item`` values; facets take the class their ``_schemaURL`` names."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {value!r}")
    if _is_facet_base(item):
        return {k: _structure(v, _facet_class(v, item)) for k, v in value.items()}
    return {k: _structure(v, item) for k, v in value.items()}


def _structure_attrs(value: Any, hint: type) -> Any:
    """An attrs class instance from a mapping of its fields (unknown keys rejected)."""
    import attr

    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping for {hint.__name__}, got {value!r}")
    hints = typing.get_type_hints(hint)
    fields = attr.fields(hint)
    unknown = set(value) - {f.name for f in fields}
    if unknown:
        raise ValueError(f"{hint.__name__} has no field {', '.join(sorted(unknown))}")
    given = [f for f in fields if f.name in value]
    obj = hint(**{f.alias: _structure(value[f.name], hints[f.name]) for f in given if f.init})
    for f in given:
        if not f.init:  # e.g. a facet's _schemaURL: keep what the event says
            setattr(obj, f.name, _structure(value[f.name], hints[f.name]))
    return obj


def _is_facet_base(hint: Any) -> bool:
    from openlineage.client.generated.base import BaseFacet

    return isinstance(hint, type) and issubclass(hint, BaseFacet)


_FACETS: dict[str, type] = {}


def _facet_class(value: Any, base: type) -> type:
    """The facet class named by a facet's ``_schemaURL`` (``...#/$defs/<ClassName>``)."""
    if not _FACETS:
        import openlineage.client.generated as generated

        for module_info in pkgutil.iter_modules(generated.__path__):
            module = importlib.import_module(f"{generated.__name__}.{module_info.name}")
            for name, obj in vars(module).items():
                if isinstance(obj, type) and _is_facet_base(obj):
                    _FACETS.setdefault(name, obj)
    url = value.get("_schemaURL", "") if isinstance(value, dict) else ""
    name = str(url).rsplit("/", 1)[-1]
    cls = _FACETS.get(name)
    if cls is None or not issubclass(cls, base):
        raise ValueError(f"unknown {base.__name__} {name or '(no _schemaURL)'}")
    return cls
