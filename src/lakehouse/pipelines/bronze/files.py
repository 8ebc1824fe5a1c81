"""File drops: discover landed files on any filesystem pyarrow can list, read each into the
raw Bronze shape (``_fields``/``_corrupt``/``_raw``).

A plain CSV file (no quotes, one record per line, every line as wide as the header: checked
in one pass over its bytes, :mod:`~lakehouse.pipelines.bronze.native_csv`) is read by the
engine's CSV reader; any other is parsed in the driver by
:mod:`lakehouse.transforms.csv_text` (Python's csv module: quoted fields spanning lines,
per-record ``_raw``) and handed to the engine as Arrow; both give the same rows. JSON
lines are read as text by the engine and parsed line by line. A JSON array
file and an Excel workbook are parsed in the driver (json / openpyxl via pandas) into JSON
lines first: an array is one document, so one bad byte makes the whole file one corrupt
record (kept with its text) rather than failing the run. Parquet is read by the engine and
each row re-expressed as a JSON object, so every format shares one typing/rescue path.
"""

from __future__ import annotations

import fnmatch
import io
import json
import logging
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config.sources import CsvOptions, FileSource
from lakehouse.pipelines.bronze.decode import (
    Decoding,
    decoded_text,
    filesystem_of,
    is_remote,
    read_file_bytes,
    text_lines,
)
from lakehouse.pipelines.bronze.native_csv import PlainCsv, native_csv_frame, plain_csv_file
from lakehouse.transforms.csv_text import CsvRows, parse_csv
from lakehouse.transforms.parse import (
    corrupt_record,
    csv_frame,
    parse_json_lines,
    raw_schema,
)

log = logging.getLogger(__name__)


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


def _lines_frame(spark: SparkSession, lines: list[str]) -> DataFrame:
    import pandas as pd

    if not lines:
        return spark.createDataFrame([], "value string")
    return spark.createDataFrame(pd.DataFrame({"value": lines}, dtype=object), "value string")


def _text_lines(spark: SparkSession, landed: LandedFile) -> DataFrame:
    """The file's lines (column ``value``): read by the engine when the file is plain UTF-8,
    decoded by the driver otherwise; a UTF-8 BOM removed."""
    decoding = landed.decoding
    if decoding is not None and decoding.encoding is not None:
        return _lines_frame(spark, text_lines(decoded_text(landed.path, decoding) or ""))
    frame = spark.read.text(landed.path)
    if decoding is not None and decoding.bom:
        frame = frame.select(F.regexp_replace("value", "^\ufeff", "").alias("value"))
    return frame


@contextmanager
def _decoded_lines(landed: LandedFile) -> Iterator[Iterable[str]]:
    """The file's text as lines with their line breaks (``\\r\\n``, ``\\r``, ``\\n``), streamed
    when it is plain UTF-8 (a BOM removed); none if the file vanished."""
    decoding = landed.decoding
    if decoding is not None and decoding.encoding is not None:
        yield io.StringIO(decoded_text(landed.path, decoding) or "", newline="")
        return
    fs, inner, _ = filesystem_of(landed.path)
    try:
        stream = fs.open_input_stream(inner)
    except FileNotFoundError:
        yield ()
        return
    with io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="") as text:
        yield text


@dataclass(frozen=True)
class RawFile:
    """A landed file in the raw Bronze shape, and why it was probably misread (or None);
    ``native``: read by the engine's CSV reader, not parsed in the driver."""

    frame: DataFrame
    note: str | None = None
    native: bool = False


def read_csv(
    spark: SparkSession, options: CsvOptions, landed: LandedFile, declared: list[str]
) -> RawFile:
    """A CSV file read by the engine when it is plain (:mod:`.native_csv`), else parsed in
    the driver (:mod:`lakehouse.transforms.csv_text`); both give the same rows."""
    decoding = landed.decoding
    if options.native_reader and decoding is not None and decoding.encoding is None:
        plain = plain_csv_file(landed.path, options, declared, bom=decoding.bom)
        if isinstance(plain, PlainCsv):
            frame = native_csv_frame(spark, landed.path, options, plain, declared)
            return RawFile(frame, plain.header_note, native=True)
        log.info("%s: parsed as text: %s", landed.path, plain)
    return read_csv_text(spark, options, landed, declared)


def read_csv_text(
    spark: SparkSession, options: CsvOptions, landed: LandedFile, declared: list[str]
) -> RawFile:
    """A CSV file parsed in the driver (:mod:`lakehouse.transforms.csv_text`)."""
    found: list[CsvRows] = []

    def noting(chunks: Iterator[CsvRows]) -> Iterator[CsvRows]:
        for rows in chunks:
            found[:] = [rows]
            yield rows

    with _decoded_lines(landed) as lines:
        frame = csv_frame(spark, noting(parse_csv(lines, options, declared)))
    return RawFile(frame, found[0].header_note if found else None)


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
) -> RawFile:
    """One landed (and decodable) file in the raw Bronze shape, for the ``declared`` fields."""
    if source.format == "csv":
        return read_csv(spark, source.csv, landed, declared)
    return RawFile(_structured_raw(spark, source, landed, declared))


def _structured_raw(
    spark: SparkSession, source: FileSource, landed: LandedFile, declared: list[str]
) -> DataFrame:
    """A JSON lines, JSON, Parquet or Excel file in the raw Bronze shape."""
    if source.format == "jsonl":
        return parse_json_lines(_text_lines(spark, landed), declared)
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
