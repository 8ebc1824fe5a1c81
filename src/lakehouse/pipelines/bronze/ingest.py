"""Bronze: land file drops and API responses as append-only Delta, exactly once, losing nothing.

Exactly once: every unit of arrival is a *batch* with an id that names its content — a file
by path + size + modification time, an API batch by the id the API gives it, a page by a
hash of its payload. Each Delta commit holds whole batches, and Delta commits are atomic, so
after a crash a batch is either entirely in Bronze or not at all. Before appending, the
batch ids already present in the Bronze table are looked up and skipped; the
``meta.processed_files`` log lets a re-run skip known files without reading them, and is
repaired from Bronze when a crash landed a commit but not its log entry.

Nothing lost: unparseable records keep their text (``_raw``) and a reason (``_corrupt``);
values that do not fit their column and undeclared fields go to ``_rescued_data``
(schema-drift policy ``rescue``), evolve the table (``add_new_columns``) or stop the source
before anything is written (``fail``).

A files source whose Bronze table declares no columns gets them from its first files
(:mod:`~lakehouse.pipelines.bronze.infer`), stored as versions under its schema location
(:mod:`~lakehouse.pipelines.bronze.schemas`); its drift policy defaults to
``add_new_columns``, and each evolution stores the next schema version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.bundle.context import TaskContext
from lakehouse.config.project import SourceHandle, TableRef
from lakehouse.config.sources import BRONZE_METADATA_COLUMNS, FileSource, HttpSource
from lakehouse.config.system_tables import (
    HttpResponseRow,
    ProcessedFileRow,
    SystemTable,
    rows_frame,
)
from lakehouse.core.errors import TaskError
from lakehouse.core.params import TaskParams
from lakehouse.io.store import TableStore
from lakehouse.pipelines.bronze import bad_rows, decode, http, schemas
from lakehouse.pipelines.bronze import files as file_drops
from lakehouse.transforms.parse import (
    corrupt_record,
    parse_json_lines,
    typed_records,
    undeclared_fields,
)

log = logging.getLogger(__name__)

METADATA_COLUMNS = frozenset(c.name for c in BRONZE_METADATA_COLUMNS)
Progress = Callable[[str, int, int | None], None]  # (what, done, total)


@dataclass
class IngestSummary:
    """What one source's ingest did."""

    source: str
    units: int = 0  # files or API responses seen as new
    skipped: int = 0  # already in Bronze
    rows: int = 0
    corrupt_rows: int = 0
    rescued_rows: int = 0
    new_columns: list[str] = field(default_factory=list)
    requests: int = 0
    quarantined: list[str] = field(default_factory=list)  # files kept whole: "path: reason"
    vanished: list[str] = field(default_factory=list)  # listed, gone before they were read
    refused: list[str] = field(default_factory=list)  # symlinks leaving the landing root
    bad_files: list[str] = field(default_factory=list)  # landed, but mostly bad: why, the fix
    rejected: list[str] = field(default_factory=list)  # mostly bad, kept aside (action: fail)
    csv_native_files: int = 0  # CSV files read by the engine's CSV reader (plain files)
    csv_text_files: int = 0  # CSV files parsed in the driver (the others)


@dataclass(frozen=True)
class Batch:
    """Raw records of one arrival unit plus its Bronze metadata."""

    batch_id: str
    raw: DataFrame  # _fields/_corrupt/_raw
    source_file: str | None = None
    request: str | None = None
    http_status: int | None = None
    fetched_at: datetime | None = None
    note: str | None = None  # what the reader found (a header naming no declared column)
    native: bool | None = None  # a CSV file: read by the engine's CSV reader (else parsed)


def with_ingest_metadata(
    batch: Batch, *, source: str, run_id: str, ingested_at: datetime
) -> DataFrame:
    """The batch's raw records plus the Bronze metadata columns."""
    return batch.raw.select(
        "*",
        F.lit(source).alias("_source"),
        F.lit(batch.source_file).cast("string").alias("_source_file"),
        F.lit(batch.request).cast("string").alias("_request"),
        F.lit(batch.http_status).cast("int").alias("_http_status"),
        F.lit(batch.fetched_at).cast("timestamp").alias("_fetched_at"),
        F.lit(batch.batch_id).alias("_batch_id"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
    )


def batches_in_bronze(
    tables: TableStore, target: TableRef, source: str, batch_ids: Iterable[str]
) -> set[str]:
    """Which of ``batch_ids`` the source already committed to the Bronze table."""
    ids = sorted(set(batch_ids))
    if not ids:
        return set()
    found = (
        tables.read(target)
        .where((F.col("_source") == source) & F.col("_batch_id").isin(ids))
        .select("_batch_id")
        .distinct()
        .collect()
    )
    return {str(r["_batch_id"]) for r in found}


def declared_columns(tables: TableStore, target: TableRef) -> list[tuple[str, str]]:
    """The Bronze table's data columns as ``(name, type)``, from the table itself (so columns
    added by schema evolution count as declared)."""
    return [
        (f.name, f.dataType.simpleString())
        for f in tables.schema(target).fields
        if f.name not in METADATA_COLUMNS
    ]


def batch_counts(
    bronze: DataFrame, source: str, batch_ids: list[str], declared: list[str] | None = None
) -> dict[str, bad_rows.Health]:
    """Rows, corrupt rows, rows with rescued data (and, for the ``declared`` columns, rows
    with nothing but rescued data) per batch id of a source in Bronze."""
    mine = bronze.where((F.col("_source") == source) & F.col("_batch_id").isin(batch_ids))
    return bad_rows.file_health(mine, declared or [])


def schema_drift(source: SourceHandle) -> str:
    """The source's schema-drift policy: as set, else ``add_new_columns`` for a Bronze table
    whose columns are inferred (Auto Loader's default without a schema), else ``rescue``."""
    if source.spec.schema_drift is not None:
        return source.spec.schema_drift
    return "add_new_columns" if schemas.is_inferred(source) else "rescue"


def append_batches(
    ctx: TaskContext,
    source: SourceHandle,
    declared: list[tuple[str, str]],
    batches: list[Batch],
    summary: IngestSummary,
    new_types: Callable[[list[str]], dict[str, str]] | None = None,
) -> dict[str, bad_rows.Health]:
    """Append the batches not yet in Bronze in one commit; returns what landed per batch id.

    The batches' raw frames must have been parsed for ``declared``; ``new_types`` gives the
    types of fields added as columns (default: strings). The counts per batch come from the
    committed table (:class:`~lakehouse.pipelines.bronze.bad_rows.Health`).
    """
    tables = ctx.tables
    source_name, target, drift = source.name, source.target, schema_drift(source)
    present = batches_in_bronze(tables, target, source_name, [b.batch_id for b in batches])
    todo = [b for b in batches if b.batch_id not in present]
    summary.skipped += len(batches) - len(todo)
    if not todo:
        return {}
    ingested_at = datetime.now(tz=UTC).replace(tzinfo=None, microsecond=0)
    frames = [
        with_ingest_metadata(b, source=source_name, run_id=ctx.run_id, ingested_at=ingested_at)
        for b in todo
    ]
    raw = reduce(DataFrame.unionByName, frames)
    new_columns: list[str] = []
    if drift != "rescue":
        extra = undeclared_fields(raw)
        if extra and drift == "fail":
            raise TaskError(
                f"source {source_name}: fields not declared in {target.full_name}: "
                f"{', '.join(extra)} "
                "(schema_drift: fail); nothing was appended"
            )
        new_columns = extra
    types = new_types(new_columns) if new_columns and new_types else None
    csv_text = isinstance(source.spec, FileSource) and source.spec.format == "csv"
    typed = typed_records(raw, declared, drift, new_columns, types, blank_is_null=csv_text)
    result = tables.append(target, typed, add_new_columns=bool(new_columns))
    if new_columns:
        summary.new_columns.extend(c for c in new_columns if c not in summary.new_columns)
        log.warning(
            "%s: added columns to %s: %s", source_name, target.full_name, ", ".join(new_columns)
        )
    counts = batch_counts(
        tables.read(target, version=result.version),
        source_name,
        [b.batch_id for b in todo],
        [name for name, _ in declared],
    )
    summary.units += len(todo)
    summary.rows += sum(c.rows for c in counts.values())
    summary.corrupt_rows += sum(c.corrupt for c in counts.values())
    summary.rescued_rows += sum(c.rescued for c in counts.values())
    return counts


def _source_handle(ctx: TaskContext, source: str | SourceHandle) -> SourceHandle:
    """The source's handle: given, or its name looked up (once, at the task's edge)."""
    return source if isinstance(source, SourceHandle) else ctx.project.source_handle(source)


# ---------------------------------------------------------------- file drops


def ingest_file_source(
    ctx: TaskContext, source_name: str | SourceHandle, progress: Progress | None = None
) -> IngestSummary:
    """Append a file source's new files to its Bronze table.

    Each new file is read once by the driver before the engine reads it (content hash and
    decoding, :mod:`~lakehouse.pipelines.bronze.decode`): a file that cannot be decoded is
    quarantined whole (one corrupt record pointing at a byte-exact copy), a file that
    vanished is not recorded, and a symlink that resolves outside the landing directory is
    refused; each is counted and reported.
    """
    handle = _source_handle(ctx, source_name)
    source, source_name = handle.spec, handle.name
    assert isinstance(source, FileSource)
    tables = ctx.tables
    summary = IngestSummary(source_name)
    log_table = ctx.project.system_table(SystemTable.PROCESSED_FILES)
    location = ctx.project.resolve_path(source.path)

    logged = {
        (r["path"], int(r["size"]), r["modified_at"])
        for r in tables.read(log_table)
        .where(F.col("source") == source_name)
        .select("path", "size", "modified_at")
        .collect()
    }
    landed = _admitted_files(location, source, summary)
    new = _inspected(
        [f for f in landed if (f.path, f.size, f.modified_at) not in logged], source, summary
    )
    if not schemas.ensure_inferred_table(ctx, handle, new):
        return summary  # no columns declared, no files to infer them from yet
    # Repair: files committed to Bronze by a run that died before logging them.
    ids = [f.batch_id for f in new] + [f.legacy_batch_id for f in new]
    in_bronze = batches_in_bronze(tables, handle.target, source_name, ids)
    recovered = [f for f in new if {f.batch_id, f.legacy_batch_id} & in_bronze]
    if recovered:
        _log_files(ctx, log_table, handle, recovered, None)
        log.warning(
            "%s: %d file(s) were in Bronze but not logged; logged now", source_name, len(recovered)
        )
    todo = [f for f in new if f not in recovered]
    summary.skipped += len(landed) - len(new) + len(recovered)
    done = 0
    if progress:
        progress(f"files of {source_name}", 0, len(todo))
    for start in range(0, len(todo), source.files_per_commit):
        chunk = todo[start : start + source.files_per_commit]
        _land_files(ctx, handle, chunk, log_table, summary)
        done += len(chunk)
        if progress:
            progress(f"files of {source_name}", done, len(todo))
    return summary


def _admitted_files(
    location: str, source: FileSource, summary: IngestSummary
) -> list[file_drops.LandedFile]:
    """The landed files, less the symlinks leaving the landing directory (unless allowed)."""
    landed = file_drops.list_landed_files(location, source.glob)
    if source.follow_symlinks_outside:
        return landed
    escaping = file_drops.escaping_symlinks(location, landed)
    for f in escaping:
        summary.refused.append(f"{f.path}: symlink to a file outside {location}")
        log.warning("%s: refused %s: a symlink that leaves %s", summary.source, f.path, location)
    return [f for f in landed if f not in escaping]


def _inspected(
    files: list[file_drops.LandedFile], source: FileSource, summary: IngestSummary
) -> list[file_drops.LandedFile]:
    """The files with their content hash and decoding; a file that vanished is left out."""
    out = []
    for f in files:
        if source.format in ("parquet", "excel"):  # binary formats: identity only
            decoding = decode.inspect_file(f.path, text=False)
        else:
            decoding = decode.inspect_file(f.path, source.encoding)
        if decoding is None:
            _vanished(summary, f)
        else:
            out.append(dataclasses.replace(f, decoding=decoding))
    return out


def _vanished(summary: IngestSummary, f: file_drops.LandedFile) -> None:
    summary.vanished.append(f.path)
    log.warning("%s: %s vanished during the run; not recorded", summary.source, f.path)


def _file_batch(
    ctx: TaskContext,
    source_name: str,
    source: FileSource,
    f: file_drops.LandedFile,
    declared: list[str],
) -> Batch | None:
    """The file's batch: its records, or one corrupt record for a file that cannot be
    decoded (kept as a byte-exact copy under the data root); None if it vanished."""
    decoding = f.decoding
    if decoding is None or decoding.problem is None:
        read = file_drops.read_raw(ctx.spark, source, f, declared)
        native = read.native if source.format == "csv" else None
        return Batch(f.batch_id, read.frame, source_file=f.path, note=read.note, native=native)
    copy = file_drops.keep_quarantined_copy(f, _quarantine_dir(ctx, source_name))
    if copy is None:
        return None
    reason = f"undecodable file ({decoding.label}): {decoding.problem}"
    pointer = f"quarantined file copy: {copy} (sha256 {decoding.sha256}, {f.size} bytes)"
    raw = corrupt_record(ctx.spark, declared, reason, pointer)
    return Batch(f.batch_id, raw, source_file=f.path)


def _quarantine_dir(ctx: TaskContext, source_name: str) -> Path:
    """Where files kept aside whole go: ``<data_root>/quarantine/files/<source>``."""
    data_root = Path(str(ctx.project.data_root).removeprefix("file:"))
    return data_root / "quarantine" / "files" / source_name


def _checked_files(
    batches: list[Batch], files: list[file_drops.LandedFile]
) -> list[tuple[str, str, str | None]]:
    """(path, batch id, reader's note) of the decodable files' batches: the ones the
    bad-rows policy judges (an undecodable file is already kept aside and reported)."""
    decodable = {f.batch_id for f in files if f.decoding is None or f.decoding.problem is None}
    return [
        (b.source_file or b.batch_id, b.batch_id, b.note)
        for b in batches
        if b.batch_id in decodable
    ]


def _reject_bad_files(
    ctx: TaskContext,
    handle: SourceHandle,
    declared: list[tuple[str, str]],
    batches: list[Batch],
    files: list[file_drops.LandedFile],
    summary: IngestSummary,
) -> set[str]:
    """``bad_rows.action: fail``: the batch ids of files over the threshold, judged before
    the commit; each is kept aside (a byte-exact copy and the reason under the quarantine
    files directory), lands nothing and is not logged, so it is read again next run."""
    source = handle.spec
    assert isinstance(source, FileSource)
    checked = _checked_files(batches, files)
    ids = {batch_id for _, batch_id, _ in checked}
    raws = [(b.batch_id, b.raw) for b in batches if b.batch_id in ids]
    health = bad_rows.raw_health(raws, declared, csv=source.format == "csv")
    by_id = {f.batch_id: f for f in files}
    rejected: set[str] = set()
    for bad in bad_rows.over_threshold(source, checked, health):
        message = bad.message(source)
        copy = file_drops.keep_quarantined_copy(
            by_id[bad.batch_id], _quarantine_dir(ctx, handle.name)
        )
        if copy is not None:
            copy.with_name(copy.name + ".reason.txt").write_text(message + "\n")
            message = f"{message} (kept as {copy})"
        summary.rejected.append(message)
        log.warning("%s: %s", handle.name, message)
        rejected.add(bad.batch_id)
    return rejected


def _warn_bad_files(
    source: FileSource,
    checked: list[tuple[str, str, str | None]],
    counts: dict[str, bad_rows.Health],
    summary: IngestSummary,
) -> None:
    """``bad_rows.action: warn``: a warning per landed file over the threshold (from the
    commit's counts); and, under either action, per file whose header named no declared
    column."""
    flagged = (
        bad_rows.over_threshold(source, checked, counts) if source.bad_rows.action == "warn" else []
    )
    for bad in flagged:
        summary.bad_files.append(bad.message(source))
        log.warning("%s: %s", summary.source, summary.bad_files[-1])
    flagged_ids = {bad.batch_id for bad in flagged}
    for path, batch_id, note in checked:
        if note and batch_id not in flagged_ids:
            summary.bad_files.append(f"{path}: {note}")


def _land_files(
    ctx: TaskContext,
    handle: SourceHandle,
    files: list[file_drops.LandedFile],
    log_table: TableRef,
    summary: IngestSummary,
) -> None:
    """Append one commit's files and log them; a file gone by then is not logged."""
    source = handle.spec
    assert isinstance(source, FileSource)
    declared = declared_columns(ctx.tables, handle.target)
    names = [name for name, _ in declared]
    batches: list[Batch] = []
    for f in files:
        batch = _file_batch(ctx, handle.name, source, f, names)
        if batch is None:
            _vanished(summary, f)
        else:
            batches.append(batch)
    summary.csv_native_files += sum(b.native is True for b in batches)
    summary.csv_text_files += sum(b.native is False for b in batches)
    rejected: set[str] = set()
    if source.bad_rows.action == "fail":
        rejected = _reject_bad_files(ctx, handle, declared, batches, files, summary)
        batches = [b for b in batches if b.batch_id not in rejected]
    inferred, known = schemas.is_inferred(handle), len(summary.new_columns)
    new_types = schemas.new_field_types(source, files) if inferred else None
    counts = append_batches(ctx, handle, declared, batches, summary, new_types)
    _warn_bad_files(source, _checked_files(batches, files), counts, summary)
    if inferred and len(summary.new_columns) > known:
        location = schemas.schema_location(ctx.project, handle.name)
        added = summary.new_columns[known:]
        columns = declared_columns(ctx.tables, handle.target)
        version = schemas.record_evolution(location, columns, added, files)
        ctx.report.notes.append(
            f"{handle.name}: schema version {version.version} at {location} adds {', '.join(added)}"
        )
    kept = [f for f in files if f.batch_id not in rejected and file_drops.file_exists(f.path)]
    for f in files:
        if (
            f not in kept
            and f.batch_id not in rejected
            and (f.batch_id not in counts or counts[f.batch_id].rows == 0)
            and f.path not in summary.vanished
        ):
            _vanished(summary, f)
        decoding = f.decoding
        if decoding is not None and decoding.problem and f.batch_id in counts:
            summary.quarantined.append(f"{f.path}: {decoding.problem}")
            log.warning("%s: quarantined %s: %s", handle.name, f.path, decoding.problem)
    _log_files(ctx, log_table, handle, kept, counts)


def _log_files(
    ctx: TaskContext,
    log_table: TableRef,
    source: SourceHandle,
    landed: list[file_drops.LandedFile],
    counts: dict[str, bad_rows.Health] | None,
) -> None:
    if not landed:
        return
    source_name = source.name
    if counts is None:  # recovered: count what Bronze holds
        counts = batch_counts(
            ctx.tables.read(source.target), source_name, [f.batch_id for f in landed]
        )
    now = datetime.now(tz=UTC).replace(tzinfo=None, microsecond=0)
    rows = [
        ProcessedFileRow(
            source_name,
            f.path,
            f.size,
            f.modified_at,
            *(counts[f.batch_id][:2] if f.batch_id in counts else (0, 0)),
            ctx.run_id,
            now,
        )
        for f in landed
    ]
    ctx.tables.merge(
        log_table,
        rows_frame(ctx.spark, SystemTable.PROCESSED_FILES, rows),
        ["source", "path", "size", "modified_at"],
        insert_only=True,
    )


# ---------------------------------------------------------------- APIs


def _response_batch(ctx: TaskContext, response: http.Response, declared: list[str]) -> Batch:
    if response.records is None:
        raw = corrupt_record(
            ctx.spark, declared, response.error or "unparseable response", response.payload
        )
    else:
        lines = [json.dumps(r, default=str) for r in response.records]
        frame = (
            ctx.spark.createDataFrame([(line,) for line in lines], "value string")
            if lines
            else ctx.spark.createDataFrame([], "value string")
        )
        raw = parse_json_lines(frame, declared)
    return Batch(
        response.batch_id,
        raw,
        request=response.request,
        http_status=response.status,
        fetched_at=response.fetched_at,
    )


def ingest_http_source(
    ctx: TaskContext,
    source_name: str | SourceHandle,
    progress: Progress | None = None,
    fetcher: http.Fetcher | None = None,
) -> IngestSummary:
    """Fetch a JSON API's new pages or batches into its Bronze table (by name or handle)."""
    handle = _source_handle(ctx, source_name)
    source, source_name = handle.spec, handle.name
    assert isinstance(source, HttpSource)
    summary = IngestSummary(source_name)
    responses_table = ctx.project.system_table(SystemTable.HTTP_RESPONSES)
    own_fetcher = fetcher is None
    fetcher = fetcher or http.Fetcher(source, source_name)
    if progress is not None:
        counter = fetcher

        def on_request(_url: str, _status: int) -> None:
            progress(f"requests to {source_name}", counter.requests, None)

        fetcher.on_request = on_request
    try:
        if source.rotating is not None:
            known = {
                str(r["_batch_id"])
                for r in ctx.tables.read(handle.target)
                .where(F.col("_source") == source_name)
                .select("_batch_id")
                .distinct()
                .collect()
            }
            for response in http.rotating(fetcher, known):
                _land_responses(ctx, handle, [response], responses_table, summary)
        else:
            pending: list[http.Response] = []
            for response in http.paginated(fetcher):
                pending.append(response)
                if len(pending) >= 50:
                    _land_responses(ctx, handle, pending, responses_table, summary)
                    pending = []
            _land_responses(ctx, handle, pending, responses_table, summary)
    finally:
        summary.requests = fetcher.requests
        if own_fetcher:
            fetcher.close()
    return summary


def _land_responses(
    ctx: TaskContext,
    source: SourceHandle,
    responses: list[http.Response],
    responses_table: TableRef,
    summary: IngestSummary,
) -> None:
    if not responses:
        return
    declared = declared_columns(ctx.tables, source.target)
    names = [name for name, _ in declared]
    batches = [_response_batch(ctx, r, names) for r in responses]
    counts = append_batches(ctx, source, declared, batches, summary)
    rows = [
        HttpResponseRow(
            source.name,
            r.batch_id,
            r.request,
            r.status,
            r.fetched_at,
            r.payload,
            counts[r.batch_id].rows if r.batch_id in counts else None,
            r.error,
            ctx.run_id,
        )
        for r in responses
    ]
    ctx.tables.merge(
        responses_table,
        rows_frame(ctx.spark, SystemTable.HTTP_RESPONSES, rows),
        ["source", "batch_id"],
        insert_only=True,
    )


# ---------------------------------------------------------------- the task


def _report_files_aside(
    ctx: TaskContext, source_name: str, summary: IngestSummary, counts: dict[str, int]
) -> None:
    """Warnings (and counters) for files kept aside rather than landed, and for files that
    landed mostly bad: the run succeeds, but not plainly."""
    files_kept_aside = {
        "quarantined_files": summary.quarantined,
        "vanished_files": summary.vanished,
        "refused_symlinks": summary.refused,
    }
    for key, items in files_kept_aside.items():
        if items:
            counts[key] = len(items)
            shown = "; ".join(items[:5]) + (
                f"; ... ({len(items)} in all)" if len(items) > 5 else ""
            )
            ctx.report.warnings.append(f"{source_name}: {key.replace('_', ' ')}: {shown}")
    for message in summary.bad_files:
        ctx.report.warnings.append(f"{source_name}: {message}")
    if summary.bad_files:
        counts["flagged_files"] = len(summary.bad_files)
    if summary.rejected:
        counts["rejected_files"] = len(summary.rejected)


def ingest_source(
    ctx: TaskContext,
    source_name: str,
    progress: Progress | None = None,
    *,
    full_refresh: bool = False,
) -> IngestSummary:
    """Ingest one configured source and add its counts to the run report; ``full_refresh``
    first deletes its Bronze rows and processed files, so all of its files land again."""
    if full_refresh:
        from lakehouse.pipelines.refresh import forget_source

        forget_source(ctx, source_name)
    handle = ctx.project.source_handle(source_name)
    source = handle.spec
    if isinstance(source, FileSource):
        summary = ingest_file_source(ctx, handle, progress)
    else:
        summary = ingest_http_source(ctx, handle, progress)
    counts = {
        "new": summary.units,
        "skipped": summary.skipped,
        "rows": summary.rows,
        "corrupt_rows": summary.corrupt_rows,
        "rescued_rows": summary.rescued_rows,
    }
    if isinstance(source, HttpSource):
        counts["requests"] = summary.requests
    elif source.format == "csv":
        counts["csv_native_files"] = summary.csv_native_files
        counts["csv_text_files"] = summary.csv_text_files
    _report_files_aside(ctx, source_name, summary, counts)
    ctx.report.count(f"source {source_name}", **counts)
    if summary.new_columns:
        ctx.report.notes.append(
            f"{source_name}: new columns added to {source.target}: {', '.join(summary.new_columns)}"
        )
    if summary.rejected:
        raise TaskError(
            f"source {source_name}: {len(summary.rejected)} file(s) over the bad-rows threshold "
            f"(bad_rows.action: fail), not landed: {' | '.join(summary.rejected)}"
        )
    return summary


class IngestParams(TaskParams):
    """``[--sources NAME...] [--with-sample-api PORT] [--full-refresh]``."""

    sources: tuple[str, ...] = ()
    with_sample_api: int | None = None
    full_refresh: bool = False


def ingest_bronze(ctx: TaskContext) -> None:
    """Ingest every configured source (or ``--sources a b``).

    ``--with-sample-api PORT`` serves the demo's sample data API on 127.0.0.1:PORT while
    the sources are ingested and stops it afterwards; a shared ``lakehouse samples serve``
    API already on the port is reused, anything else there is refused.
    """
    args = IngestParams.parse(ctx.parameters, task=ctx.task_key)
    names = args.sources or list(ctx.project.sources)
    unknown = [n for n in names if n not in ctx.project.sources]
    if unknown:
        raise TaskError(
            f"unknown source(s): {', '.join(unknown)} (configured: {', '.join(ctx.project.sources)})"
        )
    with contextlib.ExitStack() as stack:
        if args.with_sample_api is not None:
            from lakehouse.samples.api import demo_sample_api

            stack.enter_context(demo_sample_api(args.with_sample_api))
        for name in names:
            ingest_source(ctx, name, full_refresh=args.full_refresh)
