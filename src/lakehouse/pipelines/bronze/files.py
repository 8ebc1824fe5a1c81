"""File drops: discover landed files on any filesystem pyarrow can list, read each into the
raw Bronze shape (``_fields``/``_corrupt``/``_raw``).

CSV and JSON lines are read as text by the engine and parsed line by line. A JSON array
file and an Excel workbook are parsed in the driver (json / openpyxl via pandas) into JSON
lines first: an array is one document, so one bad byte makes the whole file one corrupt
record (kept with its text) rather than failing the run. Parquet is read by the engine and
each row re-expressed as a JSON object, so every format shares one typing/rescue path.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config.sources import FileSource
from lakehouse.transforms.parse import corrupt_record, parse_csv_lines, parse_json_lines

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class LandedFile:
    """A landed file, identified by path + size + modification time."""

    path: str  # as the engine reads it: an absolute local path or a URI
    size: int
    modified_at: datetime

    @property
    def batch_id(self) -> str:
        """The file's identity as a Bronze batch: a changed file is a new batch."""
        stamp = int(self.modified_at.replace(tzinfo=UTC).timestamp() * 1_000_000)
        return f"{PurePosixPath(self.path).name}@{self.size}:{stamp}"


def _filesystem(location: str) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, path inside it, prefix that turns such a path back into a URI)."""
    if _URI.match(location) and not location.startswith("file://"):
        fs, inner = pafs.FileSystem.from_uri(location)
        scheme = location.split("://", 1)[0]
        return fs, inner, f"{scheme}://"
    local = location.removeprefix("file://")
    return pafs.LocalFileSystem(), str(Path(local).resolve()), ""


def _skipped(name: str) -> bool:
    # Spark's convention: _hidden and .hidden files are not data; .tmp are writes in flight.
    return name.startswith(("_", ".")) or name.endswith((".tmp", ".crc"))


def list_landed_files(location: str, glob: str) -> list[LandedFile]:
    """Files under ``location`` matching ``glob``, sorted by path.

    A glob without ``/`` matches file names in the directory itself; with ``/`` it matches
    paths relative to the directory (``**`` crosses directories).
    """
    fs, root, prefix = _filesystem(location)
    selector = pafs.FileSelector(root, recursive="/" in glob, allow_not_found=True)
    files = []
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File or _skipped(info.base_name):
            continue
        relative = info.path[len(root) :].lstrip("/")
        target = relative if "/" in glob else info.base_name
        if not fnmatch.fnmatchcase(target, glob.replace("**/", "*")):
            continue
        mtime = info.mtime or datetime.fromtimestamp(0, tz=UTC)
        files.append(
            LandedFile(
                path=prefix + info.path,
                size=int(info.size or 0),
                modified_at=mtime.astimezone(UTC).replace(tzinfo=None),
            )
        )
    return sorted(files, key=lambda f: f.path)


def _read_bytes(path: str) -> bytes:
    fs, inner, _ = _filesystem(path)
    with fs.open_input_stream(inner) as stream:
        return bytes(stream.read())


def _read_header(path: str, delimiter: str) -> list[str]:
    fs, inner, _ = _filesystem(path)
    with fs.open_input_stream(inner) as stream:
        first = b""
        while not first.endswith(b"\n"):
            chunk = stream.read(4096)
            if not chunk:
                break
            first += chunk
            if b"\n" in first:
                first = first.split(b"\n", 1)[0]
                break
    text = first.decode("utf-8-sig").rstrip("\r\n")
    return next(csv.reader([text], delimiter=delimiter), [])


def _json_lines_frame(spark: SparkSession, lines: list[str]) -> DataFrame:
    if not lines:
        return spark.createDataFrame([], "value string")
    return spark.createDataFrame([(line,) for line in lines], "value string")


def read_raw(
    spark: SparkSession, source: FileSource, landed: LandedFile, declared: list[str]
) -> DataFrame:
    """One landed file in the raw Bronze shape, for the table's ``declared`` fields."""
    if source.format == "csv":
        text_lines = spark.read.text(landed.path)
        header = _read_header(landed.path, source.csv.delimiter) if source.csv.header else None
        if header is None:
            raise ValueError(f"{landed.path}: CSV without a header needs csv.header: true")
        return parse_csv_lines(text_lines, header, declared, source.csv.delimiter)
    if source.format == "jsonl":
        return parse_json_lines(spark.read.text(landed.path), declared)
    if source.format == "parquet":
        rows = spark.read.parquet(landed.path)
        as_json = rows.select(
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in rows.columns])).alias("value")
        )
        return parse_json_lines(as_json, declared)
    data = _read_bytes(landed.path)
    if source.format == "json":
        text = data.decode("utf-8", errors="replace")
        try:
            document = json.loads(text)
        except ValueError as exc:
            return corrupt_record(spark, declared, f"malformed JSON document: {exc}", text)
        items = document if isinstance(document, list) else [document]
        lines = [json.dumps(item) for item in items]  # a non-object item becomes a corrupt record
        return parse_json_lines(_json_lines_frame(spark, lines), declared)
    # excel
    import pandas as pd

    try:
        sheet = pd.read_excel(io.BytesIO(data), sheet_name=0, dtype=str, engine="openpyxl")
    except Exception as exc:  # a broken workbook is kept as one corrupt record
        return corrupt_record(
            spark, declared, f"unreadable Excel workbook: {type(exc).__name__}: {exc}", data.hex()
        )
    records = sheet.where(sheet.notna(), None).to_dict(orient="records")
    lines = [json.dumps({str(k): v for k, v in r.items()}) for r in records]
    return parse_json_lines(_json_lines_frame(spark, lines), declared)
