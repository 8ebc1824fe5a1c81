"""Bronze: land new file drops as append-only Delta, losing nothing.

Files are read as text and parsed here rather than with ``spark.read.csv/json``: on the
embedded engine one malformed line fails the whole read in every mode, and there is no
``input_file_name()``. Reading line by line works on every engine, keeps the raw text of a
bad record (``_raw``) with the reason (``_corrupt``), and lets each row carry its file.

Each file is ingested once: the ``system.processed_files`` table remembers path + size +
modification time, so a re-run takes only new or changed files.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.bundle.context import TaskContext
from lakehouse.config.loader import processed_files_table_name
from lakehouse.config.models import BRONZE_METADATA_COLUMNS, FileSource

log = logging.getLogger(__name__)

METADATA_COLUMNS = frozenset(c.name for c in BRONZE_METADATA_COLUMNS)


@dataclass(frozen=True)
class LandedFile:
    """A file in a landing directory, identified by path + size + modification time."""

    path: str
    size: int
    modified_at: datetime


# ---------------------------------------------------------------- pure transforms


def _split_csv_line(delimiter: str) -> object:
    @F.pandas_udf(T.ArrayType(T.StringType()))  # type: ignore[call-overload]
    def split(lines: pd.Series) -> pd.Series:
        out: list[list[str] | None] = []
        for line in lines:
            try:
                out.append(next(csv.reader([line], delimiter=delimiter, strict=True)))
            except (csv.Error, StopIteration):
                out.append(None)
        return pd.Series(out)

    return split


def parse_csv_lines(
    lines: DataFrame, header: list[str], columns: list[str], delimiter: str = ","
) -> DataFrame:
    """Parse a ``value`` column of CSV lines into string ``columns`` plus ``_corrupt``/``_raw``.

    ``header`` is the file's header row (field order in the file); ``columns`` the table's
    data columns. The header line itself and blank lines are skipped. A line with the wrong
    number of fields or broken quoting is kept with its raw text and a reason.
    """
    header_line = delimiter.join(header)
    split = _split_csv_line(delimiter)
    content = lines.where((F.trim(F.col("value")) != "") & (F.col("value") != F.lit(header_line)))
    parsed = content.select(F.col("value").alias("_line"), split(F.col("value")).alias("_fields"))  # type: ignore[operator]
    n = len(header)
    bad: Column = F.col("_fields").isNull() | (F.size("_fields") != n)
    reason = F.when(F.col("_fields").isNull(), F.lit("malformed CSV: broken quoting")).when(
        F.size("_fields") != n,
        F.concat(
            F.lit(f"malformed CSV: expected {n} fields, got "), F.size("_fields").cast("string")
        ),
    )
    position = {name: i for i, name in enumerate(header)}
    data = [
        (
            F.when(~bad, F.col("_fields")[position[c]])
            if c in position
            else F.lit(None).cast("string")
        ).alias(c)
        for c in columns
    ]
    return parsed.select(
        *data,
        reason.alias("_corrupt"),
        F.when(bad, F.col("_line")).alias("_raw"),
    )


def parse_json_lines(lines: DataFrame, columns: list[str]) -> DataFrame:
    """Parse a ``value`` column of JSON lines into string ``columns`` plus ``_corrupt``/``_raw``.

    Blank lines are skipped; a line that is not a JSON object is kept with its raw text.
    """
    schema = T.StructType([T.StructField(c, T.StringType()) for c in columns])
    content = lines.where(F.trim(F.col("value")) != "")
    parsed = content.select(
        F.col("value").alias("_line"),
        F.from_json(F.col("value"), schema).alias("_record"),
        F.json_object_keys(F.col("value")).alias("_keys"),
    )
    bad = F.col("_keys").isNull()
    return parsed.select(
        *[F.when(~bad, F.col("_record").getField(c)).alias(c) for c in columns],
        F.when(bad, F.lit("malformed JSON: not a JSON object")).alias("_corrupt"),
        F.when(bad, F.col("_line")).alias("_raw"),
    )


def with_ingest_metadata(
    df: DataFrame,
    *,
    source: str,
    source_file: str,
    batch_id: str,
    run_id: str,
    ingested_at: datetime,
) -> DataFrame:
    """Add the Bronze metadata columns."""
    return df.select(
        "*",
        F.lit(source).alias("_source"),
        F.lit(source_file).alias("_source_file"),
        F.lit(batch_id).alias("_batch_id"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
        F.lit(None).cast("string").alias("_rescued_data"),
    )


# ---------------------------------------------------------------- discovery


def list_landed_files(source: FileSource, root: str) -> list[LandedFile]:
    """Files matching the source's glob under its landing directory, sorted by path."""
    directory = Path(root)
    if not directory.is_dir():
        return []
    files = []
    for path in sorted(directory.glob(source.glob)):
        if path.is_file():
            stat = path.stat()
            files.append(
                LandedFile(
                    str(path.resolve()),
                    stat.st_size,
                    datetime.fromtimestamp(stat.st_mtime, tz=UTC).replace(tzinfo=None),
                )
            )
    return files


def _read_header(path: str, delimiter: str) -> list[str]:
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


# ---------------------------------------------------------------- the task


def ingest_bronze(ctx: TaskContext) -> None:
    """Ingest every configured file source's new drops into its Bronze table."""
    for name in ctx.project.sources:
        ingest_file_source(ctx, name)


def ingest_file_source(ctx: TaskContext, source_name: str) -> int:
    """Append a source's unprocessed files to its Bronze table; returns rows appended."""
    source = ctx.project.sources[source_name]
    tables = ctx.tables
    target = ctx.project.table(source.target)
    processed_table = processed_files_table_name(ctx.project.catalog.name)
    root = ctx.project.resolve_path(source.path)

    seen = {
        (r["path"], int(r["size"]), r["modified_at"])
        for r in tables.read(processed_table)
        .where(F.col("source") == source_name)
        .select("path", "size", "modified_at")
        .collect()
    }
    landed = list_landed_files(source, root)
    new_files = [f for f in landed if (f.path, f.size, f.modified_at) not in seen]
    ctx.report.count(f"source {source_name}", files_seen=len(landed), files_new=len(new_files))
    if not new_files:
        log.info("%s: no new files in %s", source_name, root)
        return 0

    columns = [c.name for c in target.spec.columns if c.name not in METADATA_COLUMNS]
    ingested_at = datetime.now(tz=UTC).replace(tzinfo=None, microsecond=0)
    frames = []
    for landed_file in new_files:
        lines = ctx.spark.read.text(landed_file.path)
        if source.format == "csv":
            header = (
                _read_header(landed_file.path, source.csv.delimiter)
                if source.csv.header
                else columns
            )
            parsed = parse_csv_lines(lines, header, columns, source.csv.delimiter)
        else:
            parsed = parse_json_lines(lines, columns)
        frames.append(
            with_ingest_metadata(
                parsed,
                source=source_name,
                source_file=landed_file.path,
                batch_id=Path(landed_file.path).name,
                run_id=ctx.run_id,
                ingested_at=ingested_at,
            )
        )
    batch = reduce(DataFrame.unionByName, frames)
    result = tables.append(source.target, batch)

    per_file = {
        r["_source_file"]: (int(r["rows"]), int(r["corrupt"]))
        for r in tables.read(source.target, version=result.version)
        .where(F.col("_run_id") == ctx.run_id)
        .where(F.col("_source") == source_name)
        .groupBy("_source_file")
        .agg(F.count("*").alias("rows"), F.count("_corrupt").alias("corrupt"))
        .collect()
    }
    records = [
        (
            source_name,
            f.path,
            f.size,
            f.modified_at,
            per_file.get(f.path, (0, 0))[0],
            per_file.get(f.path, (0, 0))[1],
            ctx.run_id,
            ingested_at,
        )
        for f in new_files
    ]
    schema = tables.schema(processed_table)
    tables.append(processed_table, ctx.spark.createDataFrame(records, schema))
    corrupt = sum(c for _, c in per_file.values())
    ctx.report.count(f"source {source_name}", rows=result.rows_written, corrupt_rows=corrupt)
    log.info(
        "%s: %d files, %d rows (%d corrupt)",
        source_name,
        len(new_files),
        result.rows_written,
        corrupt,
    )
    return result.rows_written
