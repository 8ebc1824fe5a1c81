"""PostgreSQL wire values: type OIDs, result values in text and binary format, parameters.

What goes over the wire for one value: the OID and size a DuckDB type is described as, a
result value encoded in PostgreSQL's text or binary output format, a bound parameter decoded
from either format into the Python value DuckDB should see, and the small framing helpers
(C strings, per-column formats) the protocol loop in :mod:`lakehouse.apps.sql.wire` uses.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PG_EPOCH = dt.datetime(2000, 1, 1)
PG_EPOCH_DATE = dt.date(2000, 1, 1)

# DuckDB type name -> (PostgreSQL type OID, type size)
TYPE_OIDS: dict[str, tuple[int, int]] = {
    "BOOLEAN": (16, 1),
    "TINYINT": (21, 2),
    "SMALLINT": (21, 2),
    "UTINYINT": (21, 2),
    "INTEGER": (23, 4),
    "USMALLINT": (23, 4),
    "BIGINT": (20, 8),
    "UINTEGER": (20, 8),
    "UBIGINT": (1700, -1),
    "HUGEINT": (1700, -1),
    "UHUGEINT": (1700, -1),
    "FLOAT": (700, 4),
    "DOUBLE": (701, 8),
    "VARCHAR": (25, -1),
    "DATE": (1082, 4),
    "TIME": (1083, 8),
    "TIMESTAMP": (1114, 8),
    "TIMESTAMP_S": (1114, 8),
    "TIMESTAMP_MS": (1114, 8),
    "TIMESTAMP_NS": (1114, 8),
    "TIMESTAMP WITH TIME ZONE": (1184, 8),
    "INTERVAL": (1186, 16),
    "BLOB": (17, -1),
    "UUID": (2950, 16),
    "JSON": (114, -1),
}
TEXT_OID = 25
NUMERIC_OID = 1700
INT_OIDS = {20, 21, 23, 26}
FLOAT_OIDS = {700, 701}


class PgError(Exception):
    """An error the client sees with its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str = "XX000") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_name: str

    @property
    def oid(self) -> int:
        return _oid(self.type_name)[0]

    @property
    def size(self) -> int:
        return _oid(self.type_name)[1]

    @property
    def typmod(self) -> int:
        m = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", self.type_name)
        if m:
            return ((int(m.group(1)) << 16) | int(m.group(2))) + 4
        return -1


def _oid(type_name: str) -> tuple[int, int]:
    if type_name.startswith("DECIMAL"):
        return NUMERIC_OID, -1
    if type_name.startswith("VARCHAR"):
        return TEXT_OID, -1
    return TYPE_OIDS.get(type_name, (TEXT_OID, -1))


def _text_timestamp(value: dt.datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        hours, mins = divmod(abs(minutes), 60)
        text += f"{sign}{hours:02d}" + (f":{mins:02d}" if mins else "")
    return text


def _text_interval(value: dt.timedelta) -> str:
    days, seconds = value.days, value.seconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    if value.microseconds:
        clock += f".{value.microseconds:06d}".rstrip("0")
    day_part = f"{days} day{'s' if abs(days) != 1 else ''}" if days else ""
    return " ".join(p for p in (day_part, clock) if p and (p != "00:00:00" or not day_part))


def _text_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def text_value(value: Any) -> str:
    """A Python value from DuckDB in PostgreSQL's text output format."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return _text_float(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return _text_timestamp(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _text_interval(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _binary_numeric(value: decimal.Decimal) -> bytes:
    if value.is_nan():
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    if value.is_infinite():
        return struct.pack("!hhHh", 0, 0, 0xF000 if value < 0 else 0xD000, 0)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    dscale = max(0, -exponent)
    text = "".join(map(str, digits))
    if exponent > 0:
        text += "0" * exponent
        exponent = 0
    int_len = len(text) + exponent
    int_part, frac_part = text[: max(int_len, 0)] or "0", text[max(int_len, 0) :]
    frac_part = "0" * max(-int_len, 0) + frac_part
    int_part = int_part.zfill((len(int_part) + 3) // 4 * 4)
    frac_part = frac_part.ljust((len(frac_part) + 3) // 4 * 4, "0")
    groups = [int(int_part[i : i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i : i + 4]) for i in range(0, len(frac_part), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    head = struct.pack("!hhhh", len(groups), weight, 0x4000 if sign else 0, dscale)
    return head + b"".join(struct.pack("!H", g) for g in groups)


def _binary_timestamp(value: dt.datetime) -> bytes:
    naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    delta = naive - PG_EPOCH
    return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds)


def _binary_time(value: dt.time) -> bytes:
    micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**6
    return struct.pack("!q", micros + value.microsecond)


def _binary_interval(value: dt.timedelta) -> bytes:
    return struct.pack("!qii", value.seconds * 10**6 + value.microseconds, value.days, 0)


# PostgreSQL type OID -> its binary output format (the types drivers ask for)
_BINARY_ENCODERS: dict[int, Callable[[Any], bytes]] = {
    16: lambda value: b"\x01" if value else b"\x00",
    21: functools.partial(struct.pack, "!h"),
    23: functools.partial(struct.pack, "!i"),
    20: functools.partial(struct.pack, "!q"),
    700: functools.partial(struct.pack, "!f"),
    701: functools.partial(struct.pack, "!d"),
    NUMERIC_OID: lambda value: _binary_numeric(decimal.Decimal(value)),
    1082: lambda value: struct.pack("!i", (value - PG_EPOCH_DATE).days),
    1114: _binary_timestamp,
    1184: _binary_timestamp,
    1083: _binary_time,
    1186: _binary_interval,
    17: bytes,
    2950: lambda value: uuid.UUID(str(value)).bytes,
}


def binary_value(value: Any, oid: int) -> bytes:
    """A value in PostgreSQL's binary format for ``oid`` (the types drivers ask for)."""
    encode = _BINARY_ENCODERS.get(oid)
    if encode is None:
        return text_value(value).encode()
    return encode(value)


def decode_parameter(raw: bytes | None, oid: int, binary: bool) -> Any:
    """A bound parameter as the Python value DuckDB should see."""
    if raw is None:
        return None
    if binary:
        return _binary_parameter(raw, oid)
    return _text_parameter(raw.decode(), oid)


def _timestamp_from_binary(raw: bytes) -> dt.datetime:
    return PG_EPOCH + dt.timedelta(microseconds=struct.unpack("!q", raw)[0])


# PostgreSQL type OID -> the Python value of a parameter in its binary format
_BINARY_DECODERS: dict[int, Callable[[bytes], Any]] = {
    16: lambda raw: raw != b"\x00",
    **dict.fromkeys(INT_OIDS, lambda raw: int.from_bytes(raw, "big", signed=True)),
    700: lambda raw: struct.unpack("!f", raw)[0],
    701: lambda raw: struct.unpack("!d", raw)[0],
    NUMERIC_OID: lambda raw: _numeric_from_binary(raw),
    17: lambda raw: raw,
    **dict.fromkeys((0, 25, 1043, 1042, 19, 114), bytes.decode),
    1082: lambda raw: PG_EPOCH_DATE + dt.timedelta(days=struct.unpack("!i", raw)[0]),
    1114: _timestamp_from_binary,
    1184: lambda raw: _timestamp_from_binary(raw).replace(tzinfo=dt.UTC),
    1083: lambda raw: (
        dt.datetime.min + dt.timedelta(microseconds=struct.unpack("!q", raw)[0])
    ).time(),
    2950: lambda raw: str(uuid.UUID(bytes=raw)),
}


def _binary_parameter(raw: bytes, oid: int) -> Any:
    """A parameter in PostgreSQL's binary format (what drivers send for typed values)."""
    decode = _BINARY_DECODERS.get(oid)
    if decode is None:
        raise PgError(f"binary parameters of type OID {oid} are not supported", "0A000")
    return decode(raw)


def _numeric_from_binary(raw: bytes) -> decimal.Decimal:
    """PostgreSQL's binary numeric: digit count, weight, sign, scale, base-10000 digits."""
    ndigits, weight, sign, dscale = struct.unpack("!hhHh", raw[:8])
    if sign == 0xC000:
        return decimal.Decimal("NaN")
    if sign in (0xD000, 0xF000):
        return decimal.Decimal("-Infinity" if sign == 0xF000 else "Infinity")
    digits = struct.unpack(f"!{ndigits}H", raw[8 : 8 + 2 * ndigits])
    coefficient = int("".join(f"{d:04d}" for d in digits) or "0")
    value = decimal.Decimal(-coefficient if sign == 0x4000 else coefficient)
    value = value.scaleb(4 * (weight - ndigits + 1), context=_WIDE)
    return value.quantize(decimal.Decimal(1).scaleb(-dscale), context=_WIDE)


_WIDE = decimal.Context(prec=131072 + 16383)  # exact: PostgreSQL's most numeric digits
# A date with a time zone ("2024-03-01 +00", pgjdbc's setDate): PostgreSQL's date, timestamp
# and timestamptz inputs accept it, DuckDB's do not (they do with a midnight time added).
_DATE_WITH_ZONE = re.compile(r"^(\d{4,}-\d{2}-\d{2})\s*([+-]\d{2}(?::?\d{2}){0,2})$")


def _text_parameter(text: str, oid: int) -> Any:
    """A parameter in PostgreSQL's text format, parsed as the type ``oid`` names."""
    if oid == 16:
        return text.lower() in ("t", "true", "1", "yes", "on")
    if oid in INT_OIDS:
        return int(text)
    if oid in FLOAT_OIDS:
        return float(text)
    if oid == NUMERIC_OID:
        return decimal.Decimal(text)
    if oid == 1082:  # PostgreSQL's date input ignores a zone after the date
        return dt.date.fromisoformat(text.split()[0])
    dated = _DATE_WITH_ZONE.match(text.strip()) if oid in (0, 1114, 1184) else None
    if dated:
        text = f"{dated.group(1)} 00:00:00{dated.group(2)}"
    if oid == 1114:  # and so does its timestamp (without time zone) input
        return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    if oid == 1184:
        stamp = dt.datetime.fromisoformat(text.strip())
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)  # the session zone
    return text


def column_encoder(column: ColumnInfo, binary: bool) -> Callable[[Any], bytes]:
    """The value encoder for one result column (plain fast paths for text and integers)."""
    if binary:
        return functools.partial(_binary_for, column.oid)
    if column.type_name == "VARCHAR":
        return str.encode
    if column.oid in INT_OIDS:
        return _int_text
    return _any_text


def _binary_for(oid: int, value: Any) -> bytes:
    return binary_value(value, oid)


def _int_text(value: int) -> bytes:
    return str(value).encode()


def _any_text(value: Any) -> bytes:
    return text_value(value).encode()


def column_format(formats: list[int], index: int) -> int:
    if not formats:
        return 0
    return formats[index] if len(formats) > 1 else formats[0]


def cstring(data: bytes) -> tuple[str, bytes]:
    end = data.index(b"\x00")
    return data[:end].decode(), data[end + 1 :]
