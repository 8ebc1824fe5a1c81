"""Pure transforms that turn raw text into Bronze records, on every engine.

Every format is first reduced to one *raw shape*: one string column per declared field, an
``_extra`` map of the fields the table does not declare (NULL when there are none), and
``_corrupt`` (why a record could not be parsed) with ``_raw`` (its text, kept only then).
:func:`typed_records` then casts the declared columns: a value that does not fit its type is
rescued into ``_rescued_data`` (never silently nulled), and so are the undeclared fields
under the ``rescue`` schema-drift policy.

Parsing is done on text because on the embedded engine one malformed line fails a whole
``spark.read.json/csv`` in every mode: JSON lines with ``spark.read.text`` + ``from_json``
(parsed into a struct of the declared fields, and into a map only for the lines that carry
undeclared keys); CSV by Python's csv module in :mod:`lakehouse.transforms.csv_text`
(quoted fields spanning lines, per-record ``_raw``), handed to the engine as Arrow.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.io.sql import quote
from lakehouse.transforms.csv_text import CsvRows, gc_paused

EXTRA = "_extra"
_INFINITY = r"(?i)^\s*[+-]?inf(inity)?\s*$"  # the spellings of an infinity a cast accepts


def raw_schema(declared: list[str]) -> str:
    """DDL of the raw shape for these declared fields."""
    fields = ", ".join(f"{quote(name)} string" for name in declared)
    return f"{fields}, {EXTRA} map<string,string>, _corrupt string, _raw string"


def corrupt_record(spark: SparkSession, declared: list[str], reason: str, text: str) -> DataFrame:
    """One unparseable record (e.g. a whole broken file) in the raw shape."""
    return spark.createDataFrame(
        [(*([None] * len(declared)), None, reason, text)], raw_schema(declared)
    )


def _csv_table(rows: CsvRows) -> pa.Table:
    """One chunk of CSV records as an Arrow table of the raw shape, built column-wise (the
    undeclared fields become a map column without a Python dict per record)."""
    string, n = pa.string(), len(rows.good)
    by_name = {
        name: pa.array(values, string)
        for name, values in zip(rows.names, zip(*rows.good, strict=True) if n else [], strict=False)
    }
    values = [by_name.get(name, pa.nulls(n, string)) for name in rows.declared]
    map_type = pa.map_(string, string)
    undeclared = rows.undeclared
    if undeclared and n:
        k = len(undeclared)
        offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
        keys = pa.array(undeclared, string).take(pa.array(np.tile(np.arange(k), n)))
        order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()
        items = pa.concat_arrays([by_name[u] for u in undeclared]).take(pa.array(order))
        extra = pa.MapArray.from_arrays(offsets, keys, items)
    else:
        extra = pa.nulls(n, map_type)
    good = [*values, extra, pa.nulls(n, string), pa.nulls(n, string)]
    names = [*rows.declared, EXTRA, "_corrupt", "_raw"]
    nothing = [pa.nulls(len(rows.bad), string)] * len(rows.declared)
    bad = [
        *nothing,
        pa.nulls(len(rows.bad), map_type),
        pa.array([b[1] for b in rows.bad], string),
        pa.array([b[2] for b in rows.bad], string),
    ]
    return pa.concat_tables([pa.Table.from_arrays(good, names), pa.Table.from_arrays(bad, names)])


def csv_frame(spark: SparkSession, chunks: Iterable[CsvRows]) -> DataFrame:
    """Parsed CSV records (:func:`~lakehouse.transforms.csv_text.parse_csv`) -> the raw shape.

    The chunks travel inside the plan (local relations): over Spark Connect a file's plan is
    one message of at most 128 MB (about 170 MB of CSV; larger files fail to land).
    """
    frames: list[DataFrame] = []
    declared: list[str] = []
    with gc_paused():
        for rows in chunks:
            declared = rows.declared
            if len(rows) or not frames:
                frames.append(spark.createDataFrame(_csv_table(rows), raw_schema(declared)))
    if not frames:
        return spark.createDataFrame([], raw_schema(declared))
    return _union(frames)


def _union(frames: list[DataFrame]) -> DataFrame:
    return reduce(lambda a, b: a.union(b), frames)


# One flat JSON object whose values are strings with plain escapes (no lone surrogate, no raw
# control character), plain numbers, true or false, and nothing around it but JSON whitespace. Written unrolled
# (``[^"\\]*(?:\\.[^"\\]*)*``) so a backtracking engine (the JVM's) does not recurse per
# character.
_WS = "[ \\t\\n\\r]*"
_CHARS = '[^"\\\\\\x00-\\x1f]*'
_HEX = "[0-9a-fA-F]"
_ESCAPE = f'\\\\(?:["\\\\/bfnrt]|u(?:[0-9a-cA-CeEfF]{_HEX}{{3}}|[dD][0-7]{_HEX}{{2}}))'
_STRING = f'"{_CHARS}(?:{_ESCAPE}{_CHARS})*"'
# numbers every engine and the variant parse hold exactly: no exponent, at most 18 digits
# before and 17 after the point
_NUMBER = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?"
_PAIR = f"{_STRING}{_WS}:{_WS}(?:{_STRING}|{_NUMBER}|true|false)"
FLAT_OBJECT = f"^{_WS}\\{{{_WS}{_PAIR}(?:{_WS},{_WS}{_PAIR})*{_WS}\\}}{_WS}$"
KEY_END = f'"{_WS}:'  # ends every key; may also occur inside a string
_FLAT_MAX = 1_000_000  # longer lines always get the full checks


def parse_json_lines(lines: DataFrame, declared: list[str], *, screen: bool = True) -> DataFrame:
    """JSON lines (column ``value``) -> the raw shape.

    Blank lines are skipped; a line that is not a JSON object is corrupt. Nested objects and
    arrays are kept as their JSON text.

    Every line is parsed once into the declared fields. The checks that find corrupt lines
    and undeclared keys (:func:`_json_problem`) cost several more parses, so with ``screen``
    they run only for the lines not proved *plain*: a line is plain when it is one flat object
    of strings, plain numbers and booleans (:data:`FLAT_OBJECT`) with as many key ends (:data:`KEY_END`) as declared
    fields that came out non-NULL. Key ends over-count keys and keys over-count non-NULL
    fields, so equality means every key is declared, none repeats and none is NULL or lost:
    the checks would find nothing and the map of undeclared keys would be empty.
    ``screen=False`` runs every check on every line (the reference, for tests).

    The struct parse is wrapped in a one-row generator (``inline``) because the embedded
    engine does not share a subexpression between projections: merged into the next select,
    a parse referenced N times would run N times. The map parses of the suspect lines are
    not: a generator over every line costs more than repeating them for the few suspects.
    """
    struct = T.StructType([T.StructField(name, T.StringType()) for name in declared])
    value = F.col("value")
    content = lines.where(F.trim(value) != "")
    parse = F.from_json(value, struct)
    plain = plain_json_line(value, parse, declared) if screen else F.lit(False)
    parsed = _once(content, value.alias("_line"), parse.alias("_record"), plain.alias("_plain"))
    line, record, suspect = F.col("_line"), F.col("_record"), ~F.col("_plain")
    as_map = F.from_json(line, "map<string,string>")
    # no barrier here: the map parses run only for the suspect lines (rare), where running
    # them more than once costs less than a generator over every line (12% of the parse)
    checked = parsed.select(
        line,
        record,
        F.when(suspect, as_map).alias("_map"),
        F.when(suspect, _json_problem(declared, as_map)).alias("_corrupt"),
    )
    bad = F.col("_corrupt").isNotNull()
    extra_fields = F.map_filter("_map", lambda k, _v: ~k.isin(declared))
    extra = F.when(~bad & (F.size(extra_fields) > 0), extra_fields)
    return checked.select(
        *[F.when(~bad, record.getField(name)).alias(name) for name in declared],
        extra.alias(EXTRA),
        F.col("_corrupt"),
        F.when(bad, line).alias("_raw"),
    )


def plain_json_line(line: Column, parsed: Column, declared: list[str]) -> Column:
    """Whether a JSON ``line`` is plain: its struct parse ``parsed`` (declared fields as
    strings) is all there is to it (see :func:`parse_json_lines`)."""
    if not declared:
        return F.lit(False)
    found = reduce(
        lambda a, b: a + b, [parsed.getField(name).isNotNull().cast("int") for name in declared]
    )
    # the parse first: the engine shares it with the struct column only where it is always
    # evaluated (not in the later operands of an AND)
    return (
        (F.regexp_count(line, F.lit(KEY_END)) == found)
        & (F.length(line) < _FLAT_MAX)
        & line.rlike(FLAT_OBJECT)
    )


def _once(frame: DataFrame, *columns: Column) -> DataFrame:
    """``frame.select(*columns)``, each column evaluated once per row even where the next
    select references it many times (a generator is not merged into a projection)."""
    return frame.select(F.inline(F.array(F.struct(*columns))))


def _json_problem(declared: list[str], as_map: Column) -> Column:
    """Why a JSON line (``_line``, parsed into ``_record``; ``as_map`` its map parse) is
    corrupt, else NULL.

    Built from functions every engine runs on its workers (Sail's cluster mode has no
    ``json_object_keys``): ``get_json_object(line, '$')`` is the line's first JSON value.
    The struct parse fails silently (every field NULL) on a second value, trailing text or a
    number out of range, while the map parse fails visibly (NULL), so the map decides for the
    lines whose fields all came out NULL. A map keeps one value per key, and a variant parse
    refuses a repeated key: a line the map reads but the variant does not repeats a key.
    """
    line = F.col("_line")
    first = F.ltrim(F.get_json_object(line, "$"))
    fields = [F.col("_record").getField(name).isNull() for name in declared]
    all_null = reduce(lambda a, b: a & b, fields) if fields else F.lit(True)
    parsed_map = as_map.isNotNull()
    return (
        F.when(first.isNull() | ~first.startswith("{"), F.lit("malformed JSON: not a JSON object"))
        .when(
            all_null & ~parsed_map,
            F.lit("malformed JSON: not exactly one JSON object, or a number out of range"),
        )
        .when(
            parsed_map & F.try_parse_json(line).isNull(),
            F.lit("malformed JSON: duplicate key"),
        )
    )


def typed_records(
    raw: DataFrame,
    columns: list[tuple[str, str]],
    drift: str,
    new_columns: list[str] | None = None,
    new_types: dict[str, str] | None = None,
    *,
    blank_is_null: bool = False,
) -> DataFrame:
    """The raw shape -> the declared ``(name, type)`` columns + ``_rescued_data``.

    ``drift`` is the schema-drift policy: ``rescue`` keeps undeclared fields in
    ``_rescued_data``; ``add_new_columns`` adds ``new_columns`` after the declared ones,
    typed by ``new_types`` (default string; the caller evolves the table); ``fail`` is
    enforced by the caller with :func:`undeclared_fields`. A value that does not fit its
    column's type is rescued under every policy; with ``blank_is_null`` (CSV, where an empty
    field is how a missing value is written) an empty or blank value of a non-string column
    is NULL, not rescued. Columns of ``raw`` beyond the raw shape are kept.
    """
    declared = [name for name, _ in columns]
    added = [(n, (new_types or {}).get(n, "string")) for n in new_columns or []]
    values: list[Column] = []
    mismatch_entries: list[Column] = []
    mismatch_flags: list[Column] = []
    for name, type_ in [*columns, *added]:
        text = F.col(quote(name)) if name in declared else F.col(EXTRA).getItem(name)
        typed = text if type_ == "string" else text.try_cast(type_)
        if type_ in ("double", "float"):  # "1e400" casts to Infinity: out of range, not infinite
            overflow = F.when(F.abs(typed) == F.lit(float("inf")), ~text.rlike(_INFINITY))
            typed = F.when(overflow, F.lit(None).cast(type_)).otherwise(typed)
        values.append(typed.alias(name))
        if type_ != "string":
            flag = text.isNotNull() & typed.isNull()
            if blank_is_null:
                flag = flag & (F.trim(text) != "")
            mismatch_flags.append(flag)
            mismatch_entries.extend([F.lit(name), F.when(flag, text)])
    pieces: list[Column] = []
    any_flag: Column = F.lit(False)
    if mismatch_entries:
        pieces.append(F.map_filter(F.create_map(*mismatch_entries), lambda _k, v: v.isNotNull()))
        for flag in mismatch_flags:
            any_flag = any_flag | flag
    if drift == "rescue":
        pieces.append(F.coalesce(F.col(EXTRA), F.create_map().cast("map<string,string>")))
        any_flag = any_flag | (F.col(EXTRA).isNotNull() & (F.size(EXTRA) > 0))
    rescued_json: Column = F.lit(None).cast("string")
    if pieces:
        merged = pieces[0] if len(pieces) == 1 else F.map_concat(*pieces)
        rescued_json = F.when(any_flag, F.to_json(merged))
    shape = {*declared, EXTRA}
    others = [quote(c) for c in raw.columns if c not in shape]
    return raw.select(*values, rescued_json.alias("_rescued_data"), *others)


def undeclared_fields(raw: DataFrame) -> list[str]:
    """Names of the undeclared fields present in the raw records, sorted."""
    # No .where() on _extra here: Sail fails to push such a filter into a text scan.
    keys = raw.select(F.explode(F.map_keys(EXTRA)).alias("k"))
    return sorted(str(r["k"]) for r in keys.distinct().collect())
