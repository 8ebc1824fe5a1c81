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
import math
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config.sources import FileSource
from lakehouse.pipelines.bronze.decode import (
    Decoding,
    decoded_text,
    filesystem_of,
    is_remote,
    read_file_bytes,
    text_lines,
)
from lakehouse.transforms.parse import (
    corrupt_record,
    parse_csv_lines,
    parse_json_lines,
    raw_schema,
)


@dataclass(frozen=True)
class LandedFile:
    """A landed file: listed by path + size + modification time, identified by its content
    once :func:`~lakehouse.pipelines.bronze.decode.inspect_file` has read it (``decoding``)."""

    path: str  # as the engine reads it: an absolute local path or a URI
    size: int
    modified_at: datetime
    decoding: Decoding | None = field(default=None, compare=False)

    @property
    def batch_id(self) -> str:
        """The file's identity as a Bronze batch: name + content hash once inspected (a
        changed file is a new batch; a quarantined file has its own id, so the same bytes
        land again once the source's ``encoding`` is fixed and the file is touched)."""
        if self.decoding is None:
            return self.legacy_batch_id
        kept = "!quarantined" if self.decoding.problem else ""
        return f"{PurePosixPath(self.path).name}@{self.size}:{self.decoding.sha256[:24]}{kept}"

    @property
    def legacy_batch_id(self) -> str:
        """The identity of earlier versions (name + size + modification time)."""
        stamp = int(self.modified_at.replace(tzinfo=UTC).timestamp() * 1_000_000)
        return f"{PurePosixPath(self.path).name}@{self.size}:{stamp}"


def _skipped(name: str) -> bool:
    # Spark's convention: _hidden and .hidden files are not data; .tmp are writes in flight.
    return name.startswith(("_", ".")) or name.endswith((".tmp", ".crc"))


def list_landed_files(location: str, glob: str) -> list[LandedFile]:
    """Files under ``location`` matching ``glob``, sorted by path.

    A glob without ``/`` matches file names in the directory itself; with ``/`` it matches
    paths relative to the directory (``**`` crosses directories).
    """
    fs, root, prefix = filesystem_of(location)
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


def escaping_symlinks(location: str, landed: list[LandedFile]) -> list[LandedFile]:
    """The local ``landed`` files that resolve (through symlinks) outside the landing root."""
    if is_remote(location):
        return []
    root = os.path.realpath(location.removeprefix("file://")).rstrip("/") + "/"
    return [f for f in landed if not os.path.realpath(f.path).startswith(root)]


def file_exists(path: str) -> bool:
    """Whether the landed file is (still) there."""
    fs, inner, _ = filesystem_of(path)
    return bool(fs.get_file_info(inner).type != pafs.FileType.NotFound)


def keep_quarantined_copy(landed: LandedFile, directory: Path) -> Path | None:
    """Copy a quarantined file's bytes into ``directory`` (named by content hash + name);
    None if the file vanished."""
    assert landed.decoding is not None
    fs, inner, _ = filesystem_of(landed.path)
    target = directory / f"{landed.decoding.sha256[:24]}-{PurePosixPath(landed.path).name}"
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with fs.open_input_stream(inner) as stream, partial.open("wb") as out:
            shutil.copyfileobj(stream, out)
    except FileNotFoundError:
        partial.unlink(missing_ok=True)
        return None
    partial.replace(target)
    return target


def _first_line(path: str) -> str:
    """The first line of a UTF-8 file (without a BOM), ended by ``\n``, ``\r`` or the end."""
    fs, inner, _ = filesystem_of(path)
    first = b""
    try:
        with fs.open_input_stream(inner) as stream:
            while chunk := stream.read(4096):
                first += chunk
                if b"\n" in first or b"\r" in first:
                    break
    except FileNotFoundError:  # vanished since it was inspected: the engine reads no lines
        return ""
    return text_lines(first.decode("utf-8-sig", errors="replace"))[0] if first else ""


def _lines_frame(spark: SparkSession, lines: list[str]) -> DataFrame:
    import pandas as pd

    if not lines:
        return spark.createDataFrame([], "value string")
    return spark.createDataFrame(pd.DataFrame({"value": lines}, dtype=object), "value string")


def _text_lines(spark: SparkSession, landed: LandedFile) -> tuple[DataFrame, str]:
    """The file's lines (column ``value``) and its first line: read by the engine when the
    file is plain UTF-8, decoded by the driver otherwise; a UTF-8 BOM removed."""
    decoding = landed.decoding
    if decoding is not None and decoding.encoding is not None:
        text = decoded_text(landed.path, decoding)
        lines = text_lines(text or "")
        return _lines_frame(spark, lines), lines[0] if lines else ""
    frame = spark.read.text(landed.path)
    if decoding is not None and decoding.bom:
        frame = frame.select(F.regexp_replace("value", "^\ufeff", "").alias("value"))
    return frame, _first_line(landed.path)


def _json_lines_frame(spark: SparkSession, lines: list[str]) -> DataFrame:
    if not lines:
        return spark.createDataFrame([], "value string")
    return spark.createDataFrame([(line,) for line in lines], "value string")


def _finite_or_text(number: str) -> float | str:
    """A JSON number as a float, or its text when it is out of range (``1e400``): never
    Infinity, so a ``double`` column rescues it."""
    value = float(number)
    return value if math.isfinite(value) else number


def _keep_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose repeated keys are kept: the later ones renamed
    ``<key>__duplicate_<position>`` (undeclared fields, rescued), as for CSV headers."""
    out: dict[str, object] = {}
    for position, (key, value) in enumerate(pairs, start=1):
        out[f"{key}__duplicate_{position}" if key in out else key] = value
    return out


def read_raw(
    spark: SparkSession, source: FileSource, landed: LandedFile, declared: list[str]
) -> DataFrame:
    """One landed (and decodable) file in the raw Bronze shape, for the ``declared`` fields."""
    if source.format == "csv":
        if not source.csv.header:
            raise ValueError(f"{landed.path}: CSV without a header needs csv.header: true")
        text_lines_, first = _text_lines(spark, landed)
        header = next(csv.reader([first], delimiter=source.csv.delimiter), [])
        return parse_csv_lines(
            text_lines_, header, declared, source.csv.delimiter, header_line=first
        )
    if source.format == "jsonl":
        return parse_json_lines(_text_lines(spark, landed)[0], declared)
    if source.format == "parquet":
        rows = spark.read.parquet(landed.path)
        as_json = rows.select(
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in rows.columns])).alias("value")
        )
        return parse_json_lines(as_json, declared)
    data = read_file_bytes(landed.path)
    if data is None:  # vanished since it was listed: nothing to read, not recorded
        return spark.createDataFrame([], raw_schema(declared))
    if source.format == "json":
        decoding = landed.decoding
        if decoding is not None and decoding.encoding is not None:
            text = decoded_text(landed.path, decoding) or ""
        else:
            text = data.decode("utf-8-sig", errors="replace")
        try:
            document = json.loads(text, parse_float=_finite_or_text, object_pairs_hook=_keep_pairs)
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
