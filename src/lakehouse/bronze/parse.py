"""Pure transforms that turn raw text into Bronze records, on every engine.

Every format is first reduced to one shape: a ``_fields`` map (field name -> value as
text, NULL when the record could not be parsed), ``_corrupt`` (why not) and ``_raw`` (the
record's text, kept only when it could not be parsed). :func:`typed_records` then maps
``_fields`` onto the table's declared columns: a value that does not fit its column's type
is rescued into ``_rescued_data`` (never silently nulled), and fields the table does not
declare are rescued too under the ``rescue`` schema-drift policy.

Parsing is done on text (``spark.read.text`` + ``from_json`` / a CSV splitter) because on
the embedded engine one malformed line fails a whole ``spark.read.json/csv`` in every mode.
"""

from __future__ import annotations

import csv

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.tables import quote

FIELDS = "_fields"
RAW_SHAPE = (FIELDS, "_corrupt", "_raw")


def _csv_splitter(delimiter: str) -> object:
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


def parse_csv_lines(lines: DataFrame, header: list[str], delimiter: str = ",") -> DataFrame:
    """CSV lines (column ``value``) -> ``_fields``/``_corrupt``/``_raw``.

    ``header`` is the file's header (field order); the header line itself and blank lines
    are skipped. A line with the wrong number of fields or broken quoting is corrupt.
    Quoted fields spanning several lines are not supported (each line is one record).
    """
    header_line = delimiter.join(header)
    split = _csv_splitter(delimiter)
    content = lines.where((F.trim(F.col("value")) != "") & (F.col("value") != F.lit(header_line)))
    parsed = content.select(
        F.col("value").alias("_line"),
        split(F.col("value")).alias("_parts"),  # type: ignore[operator]
    )
    n = len(header)
    bad = F.col("_parts").isNull() | (F.size("_parts") != n)
    reason = F.when(F.col("_parts").isNull(), F.lit("malformed CSV: broken quoting")).when(
        F.size("_parts") != n,
        F.concat(
            F.lit(f"malformed CSV: expected {n} fields, got "), F.size("_parts").cast("string")
        ),
    )
    names = F.array(*[F.lit(h) for h in header])
    return parsed.select(
        F.when(~bad, F.map_from_arrays(names, F.col("_parts"))).alias(FIELDS),
        reason.alias("_corrupt"),
        F.when(bad, F.col("_line")).alias("_raw"),
    )


def parse_json_lines(lines: DataFrame) -> DataFrame:
    """JSON lines (column ``value``) -> ``_fields``/``_corrupt``/``_raw``.

    Blank lines are skipped; a line that is not a JSON object is corrupt. Nested objects and
    arrays are kept as their JSON text.
    """
    content = lines.where(F.trim(F.col("value")) != "")
    parsed = content.select(
        F.col("value").alias("_line"),
        F.from_json(F.col("value"), "map<string,string>").alias("_map"),
        F.json_object_keys(F.col("value")).alias("_keys"),
    )
    bad = F.col("_keys").isNull()
    return parsed.select(
        F.when(~bad, F.col("_map")).alias(FIELDS),
        F.when(bad, F.lit("malformed JSON: not a JSON object")).alias("_corrupt"),
        F.when(bad, F.col("_line")).alias("_raw"),
    )


def typed_records(
    raw: DataFrame, columns: list[tuple[str, str]], drift: str, new_columns: list[str] | None = None
) -> DataFrame:
    """``_fields`` -> the declared ``(name, type)`` columns + ``_rescued_data``.

    ``drift`` is the schema-drift policy: ``rescue`` keeps undeclared fields in
    ``_rescued_data``; ``add_new_columns`` adds ``new_columns`` as string columns (the
    caller evolves the table); ``fail`` is enforced by the caller with
    :func:`undeclared_fields`. A value that does not fit its column's type is rescued under
    every policy. Columns of ``raw`` other than ``_fields`` are kept.
    """
    declared = [name for name, _ in columns]
    values: list[Column] = []
    mismatches: list[Column] = []
    for name, type_ in columns:
        text = F.col(FIELDS).getItem(name)
        typed = text if type_ == "string" else text.try_cast(type_)
        values.append(typed.alias(name))
        if type_ != "string":
            mismatches.extend([F.lit(name), F.when(text.isNotNull() & typed.isNull(), text)])
    rescued: Column = (
        F.map_filter(F.create_map(*mismatches), lambda _k, v: v.isNotNull())
        if mismatches
        else F.map_filter(F.col(FIELDS), lambda _k, _v: F.lit(False))
    )
    if drift == "rescue":
        rescued = F.map_concat(
            rescued, F.map_filter(F.col(FIELDS), lambda k, _v: ~k.isin(declared))
        )
    added = [F.col(FIELDS).getItem(n).alias(n) for n in new_columns or []]
    rescued_json = F.when(F.size(rescued) > 0, F.to_json(rescued))
    others = [quote(c) for c in raw.columns if c != FIELDS]
    return raw.select(*values, *added, rescued_json.alias("_rescued_data"), *others)


def undeclared_fields(raw: DataFrame, declared: list[str]) -> list[str]:
    """Field names present in ``_fields`` but not declared, sorted."""
    undeclared = F.map_keys(F.map_filter(F.col(FIELDS), lambda k, _v: ~k.isin(declared)))
    keys = raw.select(F.explode(undeclared).alias("k")).distinct().collect()
    return sorted(str(r["k"]) for r in keys)
