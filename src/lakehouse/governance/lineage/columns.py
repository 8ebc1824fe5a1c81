"""Lineage from the configuration: which inputs feed a table, and where its columns come from.

Which inputs feed an output follows from the configuration, with the versions a task read:

* a Silver table (and its ``_quarantine`` table) <- its ``source`` Bronze table;
* a Gold table <- its ``inputs``; a model's ``scoring.output`` <- its ``scoring.input``;
* a Bronze table <- the sources whose ``target`` it is (a landing directory or an API URL);
* any other table <- the tables the task read before writing it (observed lineage).

A declared input the task did not read is recorded with a NULL version.

Column lineage, where it follows from declarations, is stored as JSON on every edge row of a
write (``{"output column": ["catalog.schema.table.column", ...]}``):

* Silver: each column <- the same-named (or ``rename``d) Bronze column; SCD2 ``valid_from``,
  ``valid_to`` and ``is_current`` <- the ``sequence_by`` column; the quarantine's ``_row`` <- the
  conformed Bronze columns.
* Gold ``query``: per output column, the input columns it is computed from (sqlglot's lineage).
* Gold ``features``: the columns each expression references, traced through the query when
  there is one; over a Python ``transform`` they point at the transform's own output columns
  (``<gold table>.<column>``), because a Python function's column lineage is not knowable:
  such tables are table-level only apart from their ``features``.
* Predictions: the key columns <- the scoring input's keys; ``prediction`` and
  ``probability`` <- the model's feature columns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from lakehouse.config.ml import ModelSpec
from lakehouse.config.pipelines import GoldSpec
from lakehouse.config.project import Project, feature_lookup_keys, feature_timestamp_key
from lakehouse.config.sources import FileSource
from lakehouse.io.table_schema import effective_columns

log = logging.getLogger(__name__)

# OpenLineage's DIRECT transformation subtypes
IDENTITY = "IDENTITY"
TRANSFORMATION = "TRANSFORMATION"
AGGREGATION = "AGGREGATION"

SCD2_SEQUENCE_COLUMNS = ("valid_from", "valid_to", "is_current")


@dataclass(frozen=True)
class InputRef:
    """One input of a write: a table (with the Delta version read), a landing path or a URL."""

    kind: str  # table | files | http
    name: str
    version: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


@dataclass(frozen=True)
class ColumnMapping:
    """Where one output column comes from: ``catalog.schema.table.column`` names."""

    sources: tuple[str, ...]
    subtype: str = TRANSFORMATION  # IDENTITY | TRANSFORMATION | AGGREGATION


ColumnLineage = dict[str, ColumnMapping]


# ---------------------------------------------------------------- inputs from the config


def split_column(qualified: str) -> tuple[str, str]:
    """``cat.schema.table.column`` -> (``cat.schema.table``, ``column``)."""
    table, _, column = qualified.rpartition(".")
    return table, column


def is_system_table(project: Project, table: str) -> bool:
    ref = project.tables.get(table)
    return ref is not None and ref.spec.layer == "system"


def quarantined_table(project: Project, table: str) -> str | None:
    """The Silver table whose quarantine ``table`` is, if it is one."""
    return project.quarantined_table(table)


def scoring_model(project: Project, table: str) -> ModelSpec | None:
    """The model whose batch predictions land in ``table``."""
    for model in project.models.values():
        if model.scoring is not None and model.scoring.output == table:
            return model
    return None


def source_ref(project: Project, name: str) -> InputRef:
    """A configured source as an input: its resolved landing directory or its URL."""
    source = project.sources[name]
    if isinstance(source, FileSource):
        return InputRef("files", project.resolve_path(source.path))
    return InputRef("http", source.url)


def declared_inputs(project: Project, table: str) -> list[InputRef] | None:
    """The inputs the configuration declares for ``table`` (versions unset), or None."""
    if table in project.silver:
        return [InputRef("table", project.silver[table].source)]
    base = quarantined_table(project, table)
    if base is not None:
        return [InputRef("table", project.silver[base].source)]
    if table in project.gold:
        return [InputRef("table", t) for t in dict.fromkeys(project.gold[table].inputs.values())]
    model = scoring_model(project, table)
    if model is not None and model.scoring is not None:
        return [InputRef("table", model.scoring.input)]
    sources = [name for name, s in project.sources.items() if s.target == table]
    if sources:
        return [source_ref(project, name) for name in sources]
    return None


def resolve_inputs(project: Project, table: str, reads: dict[str, int]) -> list[InputRef]:
    """The inputs of a write to ``table`` with the versions read so far in the task.

    Tables the configuration does not derive get the tables the task read (observed lineage).
    """
    declared = declared_inputs(project, table)
    if declared is None:
        declared = [
            InputRef("table", t)
            for t in reads
            if t != table and not is_system_table(project, t) and t in project.tables
        ]
    return [
        InputRef(ref.kind, ref.name, reads.get(ref.name)) if ref.kind == "table" else ref
        for ref in declared
    ]


# ---------------------------------------------------------------- column lineage


def column_lineage(project: Project, table: str) -> ColumnLineage:
    """Output column -> input columns, where declarations tell (empty: table-level only)."""
    try:
        if table in project.silver:
            return silver_column_lineage(project, table)
        base = quarantined_table(project, table)
        if base is not None:
            return quarantine_column_lineage(project, base)
        if table in project.gold:
            return gold_column_lineage(project, table)
        model = scoring_model(project, table)
        if model is not None:
            return prediction_column_lineage(project, model)
    except Exception:  # lineage is best effort: never fail a write over it
        log.warning("could not derive the column lineage of %s", table, exc_info=True)
    return {}


def silver_column_lineage(project: Project, table: str) -> ColumnLineage:
    spec = project.silver[table]
    source = project.table(spec.source)
    source_types = {c.name: c.type for c in effective_columns(source)}
    out: ColumnLineage = {}
    for col in effective_columns(project.table(table)):
        name = spec.rename.get(col.name, col.name)
        if name not in source_types:
            continue
        changed = (
            source_types[name] != col.type
            or col.name in spec.case
            or col.name in spec.standardize
            or (spec.trim and col.type == "string")
            or bool(spec.transforms)
        )
        out[col.name] = ColumnMapping(
            (f"{spec.source}.{name}",), TRANSFORMATION if changed else IDENTITY
        )
    if spec.mode == "scd2" and spec.sequence_by:
        sequence = spec.rename.get(spec.sequence_by, spec.sequence_by)
        if sequence in source_types:
            for col_name in SCD2_SEQUENCE_COLUMNS:
                out[col_name] = ColumnMapping((f"{spec.source}.{sequence}",), TRANSFORMATION)
    return out


def quarantine_column_lineage(project: Project, silver_table: str) -> ColumnLineage:
    spec = project.silver[silver_table]
    conformed = silver_column_lineage(project, silver_table)
    row_sources = tuple(
        dict.fromkeys(
            s
            for name, m in conformed.items()
            if name not in SCD2_SEQUENCE_COLUMNS
            for s in m.sources
        )
    )
    out: ColumnLineage = {}
    if row_sources:
        out["_row"] = ColumnMapping(row_sources, TRANSFORMATION)
    source_cols = {c.name for c in effective_columns(project.table(spec.source))}
    if "_source_file" in source_cols:
        out["_source_file"] = ColumnMapping((f"{spec.source}._source_file",), IDENTITY)
    return out


def gold_column_lineage(project: Project, table: str) -> ColumnLineage:
    spec = project.gold[table]
    columns = [c.name for c in effective_columns(project.table(table))]
    base: ColumnLineage = {}
    produced: set[str] = set()  # columns the query computes (with or without column sources)
    if spec.query is not None:
        produced = set(query_outputs(spec.query))
        base = query_column_lineage(
            spec.query,
            dict(spec.inputs),
            {
                alias: [c.name for c in effective_columns(project.table(t))]
                for alias, t in spec.inputs.items()
            },
            list(dict.fromkeys([*columns, *produced])),
        )
    features = feature_column_lineage(spec, table, base, produced)
    kept = {name: m for name, m in base.items() if name in columns and name not in features}
    return {**kept, **{name: m for name, m in features.items() if m.sources}}


def feature_column_lineage(
    spec: GoldSpec, table: str, base: ColumnLineage, produced: set[str] | None = None
) -> ColumnLineage:
    """Each ``features`` column <- the columns its expression references, traced through
    ``base`` (the query's lineage) where known, else the result's own column.

    A referenced column the query computes from no column (``COUNT(*)``) adds nothing.
    """
    out: ColumnLineage = {}
    for name, expression in spec.features.items():
        refs = referenced_columns(expression)
        if refs is None:
            continue
        sources: list[str] = []
        for ref in refs:
            if ref in base:
                sources.extend(base[ref].sources)
            elif ref not in (produced or set()):
                sources.append(f"{table}.{ref}")
        out[name] = ColumnMapping(tuple(dict.fromkeys(sources)), TRANSFORMATION)
    return out


def query_outputs(query: str) -> list[str]:
    """The names of a SQL query's result columns (empty when it does not parse)."""
    from sqlglot import parse_one
    from sqlglot.errors import SqlglotError

    try:
        tree = parse_one(query, dialect="spark")
    except SqlglotError:
        return []
    return [n for n in getattr(tree, "named_selects", []) if n and n != "*"]


def referenced_columns(expression: str) -> list[str] | None:
    """The column names a Spark SQL expression references (None when it does not parse)."""
    from sqlglot import exp, parse_one
    from sqlglot.errors import SqlglotError

    try:
        tree = parse_one(expression, dialect="spark")
    except SqlglotError:
        log.debug("cannot parse feature expression %r", expression)
        return None
    return list(dict.fromkeys(c.name for c in tree.find_all(exp.Column) if c.name))


def query_column_lineage(
    query: str, inputs: dict[str, str], schemas: dict[str, list[str]], columns: list[str]
) -> ColumnLineage:
    """Per output column, the input columns a SQL query computes it from (sqlglot lineage).

    ``inputs`` maps the views the query reads (input aliases) to table names.
    """
    from sqlglot import exp, parse_one
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage

    try:
        tree = parse_one(query, dialect="spark")
    except SqlglotError:
        log.debug("cannot parse Gold query for column lineage", exc_info=True)
        return {}
    schema = {alias: dict.fromkeys(cols, "string") for alias, cols in schemas.items()}
    by_alias = {alias.lower(): table for alias, table in inputs.items()}
    out: ColumnLineage = {}
    for column in columns:
        try:
            node = lineage(column, tree, schema=schema, dialect="spark")
        except Exception:  # a column sqlglot cannot trace stays table-level
            log.debug("no column lineage for %s", column, exc_info=True)
            continue
        sources: list[str] = []
        for leaf in node.walk():
            if leaf.downstream or not isinstance(leaf.source, exp.Table):
                continue
            table = by_alias.get(leaf.source.name.lower())
            if table is not None:
                sources.append(f"{table}.{leaf.name.split('.')[-1]}")
        if not sources:
            continue
        expression = node.expression
        aggregated = isinstance(expression, exp.Expression) and expression.find(exp.AggFunc)
        out[column] = ColumnMapping(
            tuple(dict.fromkeys(sources)), AGGREGATION if aggregated else TRANSFORMATION
        )
    return out


def prediction_column_lineage(project: Project, model: ModelSpec) -> ColumnLineage:
    assert model.scoring is not None
    source = model.scoring.input
    output_cols = {c.name for c in effective_columns(project.table(model.scoring.output))}
    ts_key = feature_timestamp_key(project, source)
    passthrough = [*feature_lookup_keys(project, source), *([ts_key] if ts_key else [])]
    out: ColumnLineage = {
        k: ColumnMapping((f"{source}.{k}",), IDENTITY) for k in passthrough if k in output_cols
    }
    features = tuple(f"{source}.{f}" for f in model.features)
    for col in ("prediction", "probability", "probabilities"):
        if col in output_cols:
            out[col] = ColumnMapping(features, TRANSFORMATION)
    return out


def column_lineage_json(columns: ColumnLineage) -> str | None:
    """The stored form: ``{"column": ["cat.schema.table.column", ...]}`` (None when empty)."""
    if not columns:
        return None
    return json.dumps({name: list(m.sources) for name, m in columns.items()}, sort_keys=True)
