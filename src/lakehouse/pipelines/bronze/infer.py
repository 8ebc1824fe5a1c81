"""Schema inference for ``files`` sources whose Bronze table declares no columns.

Like Databricks Auto Loader (``cloudFiles.inferColumnTypes``) and ``read_files``: the first
files of a source (at most ``infer_max_files`` files and ``infer_max_bytes`` bytes) are read
in the driver and each field's type is inferred from its values: integers -> ``bigint``,
other numbers -> ``double``, ``true``/``false`` -> ``boolean``, ISO dates -> ``date``, ISO
timestamps -> ``timestamp``, anything else (nested JSON too) -> ``string``; a field whose
values disagree is ``string`` (``bigint`` and ``double`` make ``double``, ``date`` and
``timestamp`` make ``timestamp``). With ``infer_column_types: false`` every field is a string.

Inference is done on the records that parse (a malformed line is skipped here; at ingest it
is kept with ``_corrupt``): the engine fails a whole read on one malformed line. Each inferred
type is one every sampled value casts to with ``try_cast``, so the sample itself is never
rescued; a later value that does not fit lands in ``_rescued_data``.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from lakehouse.config.sources import FileSource
from lakehouse.pipelines.bronze.decode import (
    decoded_text,
    filesystem_of,
    read_file_bytes,
    text_lines,
)
from lakehouse.pipelines.bronze.files import LandedFile
from lakehouse.transforms.csv_text import parse_csv

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_INT64 = (-(2**63), 2**63 - 1)
_WIDER = {
    frozenset({"bigint", "double"}): "double",
    frozenset({"date", "timestamp"}): "timestamp",
}


def merged_type(a: str | None, b: str | None) -> str | None:
    """The type that holds values of both types (None: no value seen yet)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    return _WIDER.get(frozenset({a, b}), "string")


def _temporal_type(text: str) -> str | None:
    try:
        if _DATE.match(text):
            date.fromisoformat(text)
            return "date"
        if _TIMESTAMP.match(text):
            datetime.fromisoformat(text.replace("Z", "+00:00"))
            return "timestamp"
    except ValueError:
        return None
    return None


# The same rules for a whole column of text values at once (RE2 through pyarrow.compute):
# the narrowest type every non-blank value fits, tried in this order.
_COLUMN_PATTERNS = (
    ("bigint", r"^[+-]?\d{1,18}$"),
    ("double", r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"),
    ("boolean", r"(?i)^(true|false)$"),
    ("date", r"^\d{4}-\d{2}-\d{2}$"),
    ("timestamp", _TIMESTAMP.pattern + "|" + _DATE.pattern),
)


def column_type(values: list[str | None]) -> str | None:
    """The type every non-blank text value of a column casts to (None: no such value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(pa.array(values, type=pa.string()))
    present = trimmed.filter(pc.not_equal(trimmed, ""))
    if len(present) == 0:
        return None
    for kind, pattern in _COLUMN_PATTERNS:
        if not pc.all(pc.match_substring_regex(present, pattern)).as_py():
            continue
        if kind == "bigint" or kind == "boolean":
            return kind
        if kind == "double":
            finite = pc.is_finite(pc.cast(present, pa.float64()))
            return "double" if pc.all(finite).as_py() else "string"
        if _valid_temporal(present, kind):
            return kind
    return "string"


def _valid_temporal(present: object, kind: str) -> bool:
    """Whether the distinct dates (and times of day) of matching values are real ones
    (``2024-02-30`` and ``25:00`` match the patterns); at most 10,000 of each are checked."""
    import pyarrow.compute as pc

    days = pc.unique(pc.utf8_slice_codeunits(present, 0, 10)).to_pylist()[:10_000]
    if not all(_temporal_type(d) == "date" for d in days):
        return False
    if kind == "date":
        return True
    times = pc.unique(pc.utf8_slice_codeunits(present, 10, 64)).to_pylist()[:10_000]
    return all(_temporal_type(f"2000-01-01{t}") == "timestamp" for t in times if t)


def json_type(value: object) -> str | None:
    """The type of a parsed JSON value (strings are strings unless ISO dates/timestamps)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint" if _INT64[0] <= value <= _INT64[1] else "double"
    if isinstance(value, float):
        return "double" if math.isfinite(value) else "string"
    if isinstance(value, str):
        return _temporal_type(value.strip()) or "string"
    return "string"  # objects and arrays are kept as their JSON text


@dataclass
class Inference:
    """Fields in first-seen order with their types, and the files they came from."""

    types: dict[str, str | None] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def see(self, name: str, kind: str | None) -> None:
        self.types[name] = merged_type(self.types.get(name), kind) if name in self.types else kind

    def columns(self, column_types: bool = True) -> list[tuple[str, str]]:
        """``(name, type)`` of every field seen; untyped (all-NULL) fields are strings."""
        return [(n, (t or "string") if column_types else "string") for n, t in self.types.items()]


# ---------------------------------------------------------------- reading a sample


def _sample_bytes(path: str, limit: int) -> tuple[bytes, bool] | None:
    """The first ``limit`` bytes of a file and whether it was cut; None if it vanished."""
    fs, inner, _ = filesystem_of(path)
    try:
        with fs.open_input_stream(inner) as stream:
            data = bytes(stream.read(limit + 1))
    except FileNotFoundError:
        return None
    return data[:limit], len(data) > limit


def _sample_lines(landed: LandedFile, limit: int) -> list[str] | None:
    """The file's first lines (within ``limit`` bytes, a cut last line dropped)."""
    decoding = landed.decoding
    if decoding is not None and decoding.encoding is not None:  # decoded by the driver
        text = decoded_text(landed.path, decoding)
        return None if text is None else text_lines(text)
    sample = _sample_bytes(landed.path, limit)
    if sample is None:
        return None
    data, cut = sample
    lines = text_lines(data.decode("utf-8-sig", errors="replace"))
    return lines[:-1] if cut and len(lines) > 1 else lines


def _csv_columns(source: FileSource, lines: list[str]) -> dict[str, list[str | None]]:
    """The sampled CSV records column by column, parsed as ingest parses them (the source's
    ``csv`` options; a malformed record is skipped). The header names every field, even one
    with no value yet."""
    columns: dict[str, list[str | None]] = {}
    for rows in parse_csv((line + "\n" for line in lines), source.csv, []):
        for name in rows.names:
            columns.setdefault(name, [])
        for fields in rows.good:
            for name, value in zip(rows.names, fields, strict=True):
                columns[name].append(value)
    return columns


def _json_objects(items: Iterable[object]) -> Iterator[dict[str, object]]:
    for item in items:
        if isinstance(item, dict):
            yield {str(k): v for k, v in item.items()}


def _jsonl_records(lines: list[str]) -> Iterator[dict[str, object]]:
    for line in lines:
        if not line.strip():
            continue
        try:
            yield from _json_objects([json.loads(line)])
        except ValueError:
            continue


def _document_records(landed: LandedFile) -> Iterator[dict[str, object]]:
    decoding = landed.decoding
    if decoding is not None and decoding.encoding is not None:
        text = decoded_text(landed.path, decoding) or ""
    else:
        data = read_file_bytes(landed.path)
        text = "" if data is None else data.decode("utf-8-sig", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return
    yield from _json_objects(document if isinstance(document, list) else [document])


def _parquet_columns(landed: LandedFile) -> list[tuple[str, str]]:
    import pyarrow.parquet as pq

    fs, inner, _ = filesystem_of(landed.path)
    schema = pq.read_schema(inner, filesystem=fs)
    return [(f.name, arrow_type(f.type)) for f in schema]


def arrow_type(kind: object) -> str:
    """The Spark SQL type of a pyarrow type as Bronze casts it (nested types: JSON text)."""
    import pyarrow as pa
    import pyarrow.types as pat

    assert isinstance(kind, pa.DataType)
    if pat.is_boolean(kind):
        return "boolean"
    if pat.is_integer(kind):
        return "bigint"
    if pat.is_floating(kind):
        return "double"
    if pat.is_date(kind):
        return "date"
    if pat.is_timestamp(kind):
        return "timestamp"
    if pat.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    return "string"


def _excel_records(landed: LandedFile) -> Iterator[dict[str, object]]:
    import pandas as pd

    data = read_file_bytes(landed.path)
    if data is None:
        return
    try:
        sheet = pd.read_excel(io.BytesIO(data), sheet_name=0, dtype=str, engine="openpyxl")
    except Exception:  # a broken workbook: no evidence (ingest keeps it as a corrupt record)
        return
    for record in sheet.where(sheet.notna(), None).to_dict(orient="records"):
        yield {str(k): v for k, v in record.items()}


def _typed_fields(
    source: FileSource, landed: LandedFile, limit: int
) -> Iterator[tuple[str, str | None]]:
    """``(field, type)`` pairs of a file's records (per value for JSON, per column for text
    formats), fields in first-seen order."""
    if source.format == "parquet":
        yield from _parquet_columns(landed)
    elif source.format in ("csv", "excel"):
        columns: dict[str, list[str | None]] = {}
        if source.format == "csv":
            columns = _csv_columns(source, _sample_lines(landed, limit) or [])
        for record in _excel_records(landed) if source.format == "excel" else []:
            for name, value in record.items():
                columns.setdefault(name, []).append(None if value is None else str(value))
        yield from ((name, column_type(values)) for name, values in columns.items())
    else:
        records = (
            _jsonl_records(_sample_lines(landed, limit) or [])
            if source.format == "jsonl"
            else _document_records(landed)
        )
        for item in records:
            yield from ((name, json_type(value)) for name, value in item.items())


def observe_file(inference: Inference, source: FileSource, landed: LandedFile, limit: int) -> None:
    """Add the fields and values of one landed file (its first ``limit`` bytes) to ``inference``."""
    if landed.decoding is not None and landed.decoding.problem:
        return  # quarantined whole at ingest: it tells nothing about the schema
    for name, kind in _typed_fields(source, landed, limit):
        inference.see(name, kind)
    inference.files.append(landed.path)


def infer_schema(source: FileSource, files: list[LandedFile]) -> Inference:
    """Infer from the first files (path order) within the source's sample limits."""
    inference = Inference()
    budget = source.infer_max_bytes
    for landed in files[: source.infer_max_files]:
        if budget <= 0:
            break
        observe_file(inference, source, landed, budget)
        budget -= landed.size
    return inference
