"""PostgreSQL's COPY formats (text, csv, binary) for Arrow record batches, column at a time.

Each column of a batch becomes an Arrow binary array of its encoded fields (fixed-width
types through numpy, strings through Arrow compute kernels, the rest value by value with
:mod:`lakehouse.apps.sql.codec`'s encoders); the columns are joined element-wise into
rows and each row is framed as a CopyData message, all in Arrow, so a batch's messages
are one contiguous buffer written in one call.
"""

from __future__ import annotations

import datetime as dt
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.apps.sql.codec import NUMERIC_OID, ColumnInfo, PgError, binary_value, text_value

BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # flags, no extension
BINARY_TRAILER = struct.pack("!h", -1)
BATCH_ROWS = 8192  # rows per Arrow batch, written in one call
NULL_FIELD = b"\xff\xff\xff\xff"
_PG_EPOCH_DAYS = 10957  # 2000-01-01 in days since 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86400 * 10**6
# OID -> numpy big-endian type of its binary form (fixed-width types encoded vectorised)
_FIXED = {16: "?", 21: ">i2", 23: ">i4", 20: ">i8", 700: ">f4", 701: ">f8", 1082: ">i4"}
_FIXED.update({1114: ">i8", 1184: ">i8"})


@dataclass
class CopyOptions:
    """PostgreSQL's COPY options (the ones ``TO`` uses)."""

    format: str = "text"
    delimiter: str | None = None
    null: str | None = None
    header: bool = False
    quote: str = '"'
    escape: str | None = None
    force_quote: list[str] | bool = field(default_factory=list)  # True: every column

    def check(self) -> CopyOptions:
        if self.format not in ("text", "csv", "binary"):
            raise PgError(f'COPY format "{self.format}" not recognized', "22023")
        if self.delimiter is None:
            self.delimiter = "," if self.format == "csv" else "\t"
        if self.null is None:
            self.null = "" if self.format == "csv" else "\\N"
        if len(self.delimiter) != 1 or len(self.quote) != 1:
            raise PgError("COPY delimiter and quote must be a single one-byte character", "0A000")
        if self.header and self.format == "binary":
            raise PgError("cannot specify HEADER in BINARY mode", "0A000")
        return self


def arrow_batches(cursor: Any, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The executed cursor's rows as Arrow record batches (DuckDB streams them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the extra copy is cheaper than tuples
        reader = cursor.to_arrow_reader(batch_rows)
    yield from reader


def copy_header(columns: list[ColumnInfo], options: CopyOptions) -> bytes:
    """What precedes the rows: the binary signature, or the CSV header line."""
    if options.format == "binary":
        return BINARY_SIGNATURE
    if options.header:
        names = pa.array([c.name for c in columns], pa.string())
        if options.format == "csv":
            names = _csv_quote(names, options, force=False)
        else:
            names = _text_escape(names, str(options.delimiter))
        return (str(options.delimiter).join(names.to_pylist()) + "\n").encode()
    return b""


def copy_trailer(options: CopyOptions) -> bytes:
    return BINARY_TRAILER if options.format == "binary" else b""


def encode_rows(batch: pa.RecordBatch, columns: list[ColumnInfo], options: CopyOptions) -> pa.Array:
    """Each row of ``batch`` in the COPY format: a binary array of row payloads."""
    if options.format == "binary":
        count = struct.pack("!h", len(columns))
        fields = [_binary_column(a, c) for a, c in zip(batch.columns, columns, strict=True)]
        return pc.binary_join_element_wise(count, *fields, b"")
    delimiter = str(options.delimiter)
    texts = []
    for array, column in zip(batch.columns, columns, strict=True):
        text = _as_text(array)
        if options.format == "csv":
            force = options.force_quote
            forced = force is True or (isinstance(force, list) and column.name in force)
            text = _csv_quote(text, options, force=forced)
        else:
            text = _text_escape(text, delimiter)
        texts.append(pc.fill_null(text, str(options.null)))
    joined = pc.binary_join_element_wise(*texts, delimiter) if len(texts) > 1 else texts[0]
    return pc.binary_join_element_wise(joined, "\n", "")


def copy_messages(rows: pa.Array) -> memoryview:
    """The CopyData messages of ``rows`` (one per row), as one buffer."""
    lengths = pc.add(pc.binary_length(rows), 4).to_numpy(zero_copy_only=False).astype(">i4")
    framed = pc.binary_join_element_wise(
        b"d", _fixed_binary(lengths, 4), rows.cast(pa.binary()), b""
    )
    return _buffer_of(framed)


def _buffer_of(array: pa.Array) -> memoryview:
    """The concatenated values of a binary array, without copying."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    data = array.buffers()[2]
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


def _fixed_binary(values: np.ndarray, width: int) -> pa.Array:
    """A binary array whose i-th value is the i-th ``width`` bytes of ``values``' buffer."""
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(values), [None, pa.py_buffer(values.tobytes())]
    )
    return fixed.cast(pa.binary())


# ------------------------------------------------------------------ text and csv


def _as_text(array: pa.Array) -> pa.Array:
    """A column in PostgreSQL's text output (nulls stay null)."""
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array.cast(pa.string())
    if pa.types.is_integer(kind) or pa.types.is_date32(kind):
        return pc.cast(array, pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(array, "t", "f")
    if pa.types.is_timestamp(kind) and kind.tz in (None, "UTC", "Etc/UTC"):
        return _timestamp_text(array)
    values = [None if v is None else text_value(_py(v)) for v in array.to_pylist()]
    return pa.array(values, pa.string())


def _timestamp_text(array: pa.Array) -> pa.Array:
    """PostgreSQL's timestamp output: seconds, then the microseconds without trailing zeros,
    ``+00`` for a timestamptz (the session's zone is UTC)."""
    micros = pc.cast(array, pa.timestamp("us", tz=array.type.tz), safe=False)
    plain = micros.cast(pa.timestamp("us")) if array.type.tz else micros
    # %S carries the fraction; years 1-9999 make the seconds end at the 19th character
    text = pc.utf8_slice_codeunits(pc.strftime(plain, "%Y-%m-%d %H:%M:%S"), 0, 19)
    fraction = pc.subtract(
        plain.cast(pa.int64()), pc.multiply(pc.divide(plain.cast(pa.int64()), 1_000_000), 1_000_000)
    )
    fraction = pc.if_else(pc.less(fraction, 0), pc.add(fraction, 1_000_000), fraction)
    digits = pc.utf8_rtrim(pc.utf8_lpad(fraction.cast(pa.string()), 6, "0"), "0")
    text = pc.if_else(pc.equal(fraction, 0), text, pc.binary_join_element_wise(text, digits, "."))
    if array.type.tz:
        text = pc.binary_join_element_wise(text, "+00", "")
    return text


def _py(value: Any) -> Any:
    if isinstance(value, pa.MonthDayNano):  # DuckDB's INTERVAL, as its Python values
        micros = value.nanoseconds // 1000
        return dt.timedelta(days=value.months * 30 + value.days, microseconds=micros)
    return value


def _text_escape(text: pa.Array, delimiter: str) -> pa.Array:
    """PostgreSQL's text format: backslash, newline, carriage return, tab and the delimiter
    escaped with a backslash."""
    for char, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        text = pc.replace_substring(text, char, escaped)
    if delimiter not in "\t\n\r\\":
        text = pc.replace_substring(text, delimiter, "\\" + delimiter)
    return text


def _csv_quote(text: pa.Array, options: CopyOptions, *, force: bool) -> pa.Array:
    """PostgreSQL's CSV quoting: a value is quoted when forced, when it holds the delimiter,
    the quote, a carriage return or newline, or when it equals the NULL string or ``\\.``;
    quotes (and escapes) inside are doubled with the escape character."""
    quote = options.quote
    escape = options.escape or quote
    inner = text
    if escape != quote:
        inner = pc.replace_substring(inner, escape, escape + escape)
    inner = pc.replace_substring(inner, quote, escape + quote)
    quoted = pc.binary_join_element_wise(quote, inner, quote, "")
    if force:
        return quoted
    special = "".join(sorted({str(options.delimiter), quote, "\r", "\n"}))
    needs = pc.match_substring_regex(text, "[" + "".join(f"\\x{ord(c):02x}" for c in special) + "]")
    needs = pc.or_(needs, pc.equal(text, str(options.null)))
    needs = pc.or_(needs, pc.equal(text, "\\."))
    return pc.if_else(needs, quoted, text)


# ------------------------------------------------------------------ binary


def _fixed_values(array: pa.Array, oid: int) -> np.ndarray | None:
    """A column's values as the numbers PostgreSQL's binary format holds (None: not fixed)."""
    kind = array.type
    if oid in (1114, 1184) and pa.types.is_timestamp(kind):
        micros = pc.cast(array, pa.timestamp("us", tz=kind.tz), safe=False)
        return np.asarray(pc.fill_null(micros.view(pa.int64()), 0).to_numpy()) - _PG_EPOCH_US
    if oid == 1082 and pa.types.is_date32(kind):
        days = pc.fill_null(array.view(pa.int32()), 0).to_numpy()
        return np.asarray(days) - _PG_EPOCH_DAYS
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if oid in (16, 21, 23, 20, 700, 701) and (numeric or pa.types.is_boolean(kind)):
        filled = pc.fill_null(array, False if oid == 16 else 0)
        return np.asarray(filled.to_numpy(zero_copy_only=False))
    return None


def _binary_column(array: pa.Array, column: ColumnInfo) -> pa.Array:
    """Each value of a column as a COPY binary field (int32 length, then the value)."""
    oid = column.oid
    values = _fixed_values(array, oid)
    if values is not None:
        fmt = _FIXED[oid]
        width = np.dtype(fmt).itemsize
        record = np.empty(len(values), dtype=[("n", ">i4"), ("v", fmt)])
        record["n"] = width
        record["v"] = values
        fields = _fixed_binary(record, 4 + width)
    elif oid in (25, 1043) and pa.types.is_string(array.type):
        lengths = pc.fill_null(pc.binary_length(array), 0).to_numpy(zero_copy_only=False)
        prefix = _fixed_binary(lengths.astype(">i4"), 4)
        fields = pc.binary_join_element_wise(prefix, array.cast(pa.binary()), b"")
    elif oid == NUMERIC_OID and pa.types.is_decimal128(array.type) and array.type.precision <= 18:
        scale = array.type.scale
        fields = pa.array([_numeric_int(u, scale) for u in _unscaled(array)], pa.binary())
    else:
        encode = _numeric_field if oid == NUMERIC_OID else _value_field
        return pa.array([encode(v, oid) for v in array.to_pylist()], pa.binary())
    if array.null_count:
        fields = pc.if_else(array.is_null(), pa.scalar(NULL_FIELD, pa.binary()), fields)
    return fields


def _unscaled(array: pa.Array) -> list[int]:
    """The integer coefficients of a decimal128 column of at most 18 digits (0 for nulls):
    the low 64 bits of each little-endian 128-bit value."""
    words = np.frombuffer(array.buffers()[1], dtype="<i8")
    return list(words[2 * array.offset : 2 * (array.offset + len(array)) : 2].tolist())


def _numeric_int(coefficient: int, scale: int) -> bytes:
    data = numeric_bytes(coefficient, scale)
    return struct.pack("!i", len(data)) + data


def _value_field(value: Any, oid: int) -> bytes:
    if value is None:
        return NULL_FIELD
    data = binary_value(_py(value), oid)
    return struct.pack("!i", len(data)) + data


def _numeric_field(value: Any, oid: int) -> bytes:
    """A numeric field from an exact integer coefficient (faster than via digit strings)."""
    if value is None:
        return NULL_FIELD
    if not hasattr(value, "as_tuple") or not value.is_finite():
        return _value_field(value, oid)
    exponent = value.as_tuple().exponent
    scale = max(0, -exponent)
    data = numeric_bytes(int(value.scaleb(scale)), scale)
    return struct.pack("!i", len(data)) + data


def numeric_bytes(coefficient: int, scale: int) -> bytes:
    """PostgreSQL's binary numeric for ``coefficient * 10**-scale`` with display scale ``scale``."""
    sign = 0x4000 if coefficient < 0 else 0
    pad = -scale % 4
    rest = abs(coefficient) * 10**pad
    groups: list[int] = []
    while rest:
        rest, group = divmod(rest, 10000)
        groups.append(group)
    groups.reverse()
    weight = len(groups) - (scale + pad) // 4 - 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        return struct.pack("!hhHh", 0, 0, 0, scale)
    head = struct.pack("!hhHh", len(groups), weight, sign, scale)
    return head + struct.pack(f"!{len(groups)}H", *groups)
