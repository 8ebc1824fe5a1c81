"""A table's effective schema: its Delta log merged with the catalog's declarations.

A catalog table may omit ``columns``: Bronze then takes them from the files, Silver from the
conform/cast step and Gold from the transform or query. Declared columns only constrain
(type, NOT NULL, comment, tags, mask). Everything that needs a table's columns asks
:func:`effective_columns` (one log read with delta-rs, no Spark session), and every write
that may change a table's shape plans it with :func:`plan_changes`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import types as T

from lakehouse.config.catalog import Column
from lakehouse.config.project import TableRef
from lakehouse.core.errors import SchemaMismatchError
from lakehouse.io.schema_guard import _is_safe_widening

_SIMPLE: dict[str, T.DataType] = {
    "string": T.StringType(),
    "boolean": T.BooleanType(),
    "tinyint": T.ByteType(),
    "byte": T.ByteType(),
    "smallint": T.ShortType(),
    "short": T.ShortType(),
    "int": T.IntegerType(),
    "integer": T.IntegerType(),
    "bigint": T.LongType(),
    "long": T.LongType(),
    "float": T.FloatType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
    "timestamp_ntz": T.TimestampNTZType(),
    "binary": T.BinaryType(),
    "void": T.NullType(),
}
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")


def _split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside ``<...>`` and ``(...)``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def spark_type(type_name: str) -> T.DataType:
    """The Spark type of a catalog type string (``int``, ``decimal(10,2)``, ``array<string>``)."""
    text = type_name.strip().lower().replace(" ", "")
    if text in _SIMPLE:
        return _SIMPLE[text]
    decimal = _DECIMAL.match(text)
    if decimal:
        return T.DecimalType(int(decimal.group(1)), int(decimal.group(2)))
    if text.startswith("array<") and text.endswith(">"):
        return T.ArrayType(spark_type(text[6:-1]))
    if text.startswith("map<") and text.endswith(">"):
        key, value = _split_top(text[4:-1])
        return T.MapType(spark_type(key), spark_type(value))
    if text.startswith("struct<") and text.endswith(">"):
        fields = []
        for part in _split_top(text[7:-1]):
            name, _, inner = part.partition(":")
            fields.append(T.StructField(name, spark_type(inner)))
        return T.StructType(fields)
    raise ValueError(f"{type_name!r} is not a Spark SQL type")


def type_name(dtype: T.DataType) -> str:
    """The catalog spelling of a Spark type (``bigint``, ``decimal(10,2)``)."""
    return dtype.simpleString()


def delta_schema(location: str) -> T.StructType | None:
    """The schema in the Delta log at ``location`` (delta-rs), or None when there is no table."""
    try:
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(location):
            return None
        return T.StructType.fromJson(json.loads(DeltaTable(location).schema().to_json()))
    except Exception:  # a location delta-rs cannot reach: no schema known without a session
        return None


def _column(name: str, dtype: T.DataType, nullable: bool, declared: Column | None) -> Column:
    """A column of the table (type from the data) with what the catalog declares about it."""
    values: dict[str, Any] = {"comment": "", "tags": [], "mask": None}
    if declared is not None:
        values.update(declared.model_dump())
        nullable = nullable and declared.nullable
    values.update(name=name, type=type_name(dtype), nullable=nullable)
    return Column.model_construct(**values)  # the log's type names need no validation


def effective_columns(ref: TableRef, schema: T.StructType | None = None) -> list[Column]:
    """The table's columns: those in its Delta table (type and order from the log, the
    rest from the declaration), then the declared ones it lacks yet (added by the next
    write); only the declared ones while the table does not exist.

    ``schema`` is the table's Delta schema when the caller has it (read otherwise).
    """
    schema = delta_schema(ref.location) if schema is None else schema
    if schema is None:
        return list(ref.spec.columns)
    declared = {c.name: c for c in ref.spec.columns}
    out = [_column(f.name, f.dataType, f.nullable, declared.get(f.name)) for f in schema.fields]
    present = set(schema.fieldNames())
    return out + [c for c in ref.spec.columns if c.name not in present]


def wanted_schema(ref: TableRef, produced: T.StructType, *, step: str) -> T.StructType:
    """The schema a write of ``produced`` needs: its columns with the declared types and
    NOT NULL, or :class:`SchemaMismatchError` for a declared column the step does not produce."""
    names = set(produced.fieldNames())
    missing = [c.name for c in ref.spec.columns if c.name not in names]
    if missing:
        raise SchemaMismatchError(
            f"{ref.full_name}: column {missing[0]} is declared in the catalog but the {step} "
            "does not produce it"
        )
    declared = {c.name: c for c in ref.spec.columns}
    fields = []
    for f in produced.fields:
        col = declared.get(f.name)
        if col is None:
            fields.append(T.StructField(f.name, f.dataType, True))
        else:
            fields.append(T.StructField(f.name, spark_type(col.type), col.nullable))
    return T.StructType(fields)


@dataclass(frozen=True)
class SchemaChanges:
    """How a table's schema must change to take a write: columns to add, safe widenings
    (name, old, new) and changes no write can make (name, old, new)."""

    added: list[T.StructField] = field(default_factory=list)
    widened: list[tuple[str, T.DataType, T.DataType]] = field(default_factory=list)
    unsafe: list[tuple[str, T.DataType, T.DataType]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.widened or self.unsafe)


def plan_changes(
    existing: T.StructType, wanted: T.StructType, declared: set[str] | frozenset[str] = frozenset()
) -> SchemaChanges:
    """The changes that make ``existing`` take rows of ``wanted`` (columns it lacks are
    kept; their values are NULL in the new rows). A ``declared`` column must have its
    declared type; another one only needs to fit the table's column."""
    current = {f.name: f.dataType for f in existing.fields}
    changes = SchemaChanges()
    for f in wanted.fields:
        old = current.get(f.name)
        if old is None:
            changes.added.append(f)
        elif type_name(old) == type_name(f.dataType):
            continue
        elif f.name not in declared and _is_safe_widening(f.dataType, old):
            continue  # the values fit the table's (wider) column
        elif _is_safe_widening(old, f.dataType):
            changes.widened.append((f.name, old, f.dataType))
        else:
            changes.unsafe.append((f.name, old, f.dataType))
    return changes


def unsafe_change_error(
    ref: TableRef, change: tuple[str, T.DataType, T.DataType]
) -> SchemaMismatchError:
    """The one-line error for a type change the table cannot take, with the fixing command."""
    name, old, new = change
    fix = {
        "gold": f"lakehouse build {ref.full_name} --full-refresh",
        "silver": f"lakehouse refine {ref.full_name} --full-refresh",
    }.get(ref.spec.layer, f"lakehouse table reset {ref.full_name} --yes")
    return SchemaMismatchError(
        f"{ref.full_name}: column {name} is {type_name(old)} in the table but "
        f"{type_name(new)} now, which is not a safe widening; rebuild it with `{fix}`"
    )


@dataclass(frozen=True)
class Mismatch:
    """A difference between the catalog and a table's Delta schema; ``unsafe`` when no
    write can resolve it (the table must be rebuilt)."""

    text: str
    unsafe: bool = False


def catalog_mismatches(ref: TableRef, schema: T.StructType | None = None) -> list[Mismatch]:
    """What the catalog declares that the table's Delta schema does not match: a declared
    column missing from the table, a type that differs (a safe widening the next write
    applies, or an unsafe change). Empty when the table does not exist yet."""
    schema = delta_schema(ref.location) if schema is None else schema
    if schema is None:
        return []
    current = {f.name: f.dataType for f in schema.fields}
    out = []
    for col in ref.spec.columns:
        old = current.get(col.name)
        if old is None:
            out.append(
                Mismatch(
                    f"{ref.full_name}: declared column {col.name} is not in the table "
                    "(the next write adds it)"
                )
            )
            continue
        try:
            new = spark_type(col.type)
        except ValueError:
            continue
        if type_name(old) == type_name(new):
            continue
        if _is_safe_widening(old, new):
            out.append(
                Mismatch(
                    f"{ref.full_name}: column {col.name} is {type_name(old)} in the table, "
                    f"declared {type_name(new)} (a safe widening: the next write applies it)"
                )
            )
        else:
            out.append(Mismatch(str(unsafe_change_error(ref, (col.name, old, new))), True))
    return out
