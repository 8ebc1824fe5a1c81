"""The write guard: a frame cast and ordered to a table's schema, with the checks its rows
must pass (values that do not fit their column, NULLs in NOT NULL columns, CHECK constraints).

Safe widening casts are applied; a value that does not fit its column (a BIGINT overflowing an
INT, which Sail would silently store as NULL) or a NULL in a NOT NULL column refuses the write
with a clear error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.core.errors import SchemaMismatchError
from lakehouse.io.sql import quote

log = logging.getLogger(__name__)

_INTEGRAL_RANK = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}


def _is_safe_widening(source: T.DataType, target: T.DataType) -> bool:
    s, t = source.simpleString(), target.simpleString()
    if s == t:
        return True
    if s in _INTEGRAL_RANK and t in _INTEGRAL_RANK:
        return _INTEGRAL_RANK[s] <= _INTEGRAL_RANK[t]
    if s in _INTEGRAL_RANK and t in ("double", "string"):
        return True
    if s == "float" and t == "double":
        return True
    if s == "date" and t in ("timestamp", "timestamp_ntz"):
        return True
    if isinstance(source, T.DecimalType) and isinstance(target, T.DecimalType):
        return (
            target.scale >= source.scale
            and target.precision - target.scale >= source.precision - source.scale
        )
    if isinstance(target, T.StringType):
        return isinstance(source, T.AtomicType)
    return isinstance(source, T.NullType)


WRITE_GUARD = "LAKEHOUSE_WRITE_GUARD"


@dataclass(frozen=True)
class SchemaConformed:
    """A frame's columns cast and ordered to a table's schema, with the checks the rows must
    pass: ``checks`` are conditions over the frame's own columns (before the casts),
    ``constraints`` the table's CHECK constraints (SQL over its columns, after the casts),
    not applied to rows whose ``exempt`` column is true (rows a MERGE deletes)."""

    source: DataFrame
    columns: list[Column]  # the table's columns, cast and aliased, then the extra ones
    checks: list[tuple[str, Column]]
    table: str
    constraints: dict[str, str] = field(default_factory=dict)
    exempt: str | None = None

    @property
    def data(self) -> DataFrame:
        return self.source.select(*self.columns)

    @property
    def has_checks(self) -> bool:
        return bool(self.checks or self.constraints)

    def _constraint_checks(self) -> list[tuple[str, Column]]:
        """Delta's rule: a row violates a CHECK constraint when it is false or NULL."""
        exempt = F.coalesce(F.col(quote(self.exempt)), F.lit(False)) if self.exempt else None
        out = []
        for name, expr in self.constraints.items():
            failing = ~F.coalesce(F.expr(expr), F.lit(False))
            out.append(
                (
                    f"CHECK constraint {name} ({expr}) violated",
                    failing if exempt is None else failing & ~exempt,
                )
            )
        return out

    def refuse_failures(self) -> None:
        """Count the rows failing each check (one pass per layer); raise if any does."""
        failures = _failure_counts(self.source, self.checks)
        failures += _failure_counts(self.data, self._constraint_checks())
        if failures:
            raise SchemaMismatchError(f"{self.table}: write refused: {'; '.join(failures)}")

    def guarded(self) -> DataFrame:
        """The rows with the checks riding along: a failing row fails the job that writes
        it (``raise_error``), so the write and its checks are one pass and nothing commits."""
        guard = F.raise_error(F.lit(f"{WRITE_GUARD}: {self.table}"))
        first, *rest = self.columns
        name = self.data.columns[0]
        rows = self.data
        if self.checks:
            failing = reduce(lambda a, b: a | b, [cond for _, cond in self.checks])
            rows = self.source.select(F.when(failing, guard).otherwise(first).alias(name), *rest)
        constraints = self._constraint_checks()
        if constraints:
            failing = reduce(lambda a, b: a | b, [cond for _, cond in constraints])
            others = [F.col(quote(c)) for c in rows.columns[1:]]
            rows = rows.select(
                F.when(failing, guard).otherwise(F.col(quote(name))).alias(name), *others
            )
        return rows


def _failure_counts(frame: DataFrame, checks: list[tuple[str, Column]]) -> list[str]:
    """``"N label"`` for each check that ``N > 0`` rows of ``frame`` fail (one pass)."""
    if not checks:
        return []
    counts = frame.select(
        *[F.sum(F.when(cond, 1).otherwise(0)).alias(f"c{i}") for i, (_, cond) in enumerate(checks)]
    ).first()
    assert counts is not None
    return [f"{int(counts[i])} {label}" for i, (label, _) in enumerate(checks) if counts[i]]


def conform_to_schema(
    df: DataFrame, target: T.StructType, table: str, *, allow_new_columns: bool = False
) -> DataFrame:
    """Return ``df`` cast and ordered to ``target``, or raise :class:`SchemaMismatchError`.

    Widening casts are applied directly. Narrowing or converting casts are checked: if any
    non-null value would not survive the cast (and so be stored as NULL), the write is
    refused. NULLs in NOT NULL columns and columns the table does not have are refused too.
    """
    conformed = schema_conformed(df, target, table, allow_new_columns=allow_new_columns)
    conformed.refuse_failures()
    return conformed.data


def schema_conformed(
    df: DataFrame, target: T.StructType, table: str, *, allow_new_columns: bool = False
) -> SchemaConformed:
    """``df`` cast and ordered to ``target`` plus the checks of :func:`conform_to_schema`,
    not yet run (columns the table does not have are refused at once)."""
    source = {f.name: f for f in df.schema.fields}
    target_names = [f.name for f in target.fields]
    extra = [name for name in source if name not in target_names]
    if extra and not allow_new_columns:
        raise SchemaMismatchError(
            f"{table}: the data has columns the table does not have: {', '.join(extra)} "
            "(declare them in the catalog first)"
        )
    columns: list[Column] = []
    checks: list[tuple[str, Column]] = []
    for f in target.fields:
        if f.name not in source:
            if not f.nullable:
                raise SchemaMismatchError(f"{table}: the data lacks NOT NULL column {f.name}")
            columns.append(F.lit(None).cast(f.dataType).alias(f.name))
            continue
        src_col = F.col(quote(f.name))
        src_type = source[f.name].dataType
        if _is_safe_widening(src_type, f.dataType):
            out = src_col if src_type == f.dataType else src_col.cast(f.dataType)
        else:
            out = src_col.try_cast(f.dataType)
            checks.append(
                (
                    f"{f.name}: {src_type.simpleString()} values that do not fit "
                    f"{f.dataType.simpleString()}",
                    src_col.isNotNull() & out.isNull(),
                )
            )
        if not f.nullable and source[f.name].nullable:
            checks.append((f"{f.name}: NULL in a NOT NULL column", out.isNull()))
        columns.append(out.alias(f.name))
    return SchemaConformed(df, [*columns, *[F.col(quote(name)) for name in extra]], checks, table)


def new_columns(schema: T.StructType, df: DataFrame) -> list[tuple[str, T.DataType]]:
    """The columns of ``df`` a table of ``schema`` does not have yet (name, type)."""
    known = set(schema.fieldNames())
    return [(f.name, f.dataType) for f in df.schema.fields if f.name not in known]


def write_checked(conformed: SchemaConformed, write: Callable[[DataFrame], None]) -> None:
    """Write rows that must pass the schema checks, in one pass where that is safe.

    The checks ride along the write (:meth:`SchemaConformed.guarded`): a failing row
    fails the job before the commit, and only then are the failures counted for the
    error. Checking first would run the whole plan twice (a Gold query, a Bronze parse).
    """
    if not conformed.has_checks:
        write(conformed.data)
        return
    try:
        write(conformed.guarded())
    except Exception as e:
        if WRITE_GUARD not in str(e):
            _refuse_masked_failures(conformed, e)
        conformed.refuse_failures()  # raises, with the counts
        # The engine tripped the guard on a row it did not write: the rows pass.
        log.warning("%s: write guard tripped on rows that pass; writing again", conformed.table)
        write(conformed.data)


def _refuse_masked_failures(conformed: SchemaConformed, error: Exception) -> None:
    """Re-raise ``error`` of a guarded write, or the refused rows if it hides them.

    A cluster engine may report a failed task's retry rather than the guard's own error
    (Sail's cluster modes: "a different attempt has already produced job output"), so the
    failures are counted before the engine's error is passed on.
    """
    try:
        conformed.refuse_failures()
    except SchemaMismatchError:
        raise
    except Exception:  # counting failed too: the write's own error is the one to report
        raise error from None
    raise error
