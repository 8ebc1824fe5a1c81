"""Pipeline SQL files (Lakeflow Declarative Pipelines / Apache Spark 4.1+ SDP) to definitions.

``parse_pipeline_sql`` is pure: no Spark. It reads ``SET``, ``USE``, ``CREATE [OR REFRESH]
[PRIVATE] MATERIALIZED VIEW | STREAMING TABLE``, ``CREATE TEMPORARY VIEW``, ``CREATE FLOW …
AS INSERT INTO | AUTO CDC INTO`` and the legacy ``LIVE`` forms (``CREATE LIVE TABLE``,
``CREATE STREAMING LIVE TABLE``, ``CREATE LIVE VIEW``, ``APPLY CHANGES INTO``). The DDL
header, ``CONSTRAINT … EXPECT`` and the AUTO CDC clauses are parsed here on sqlglot's
tokens (sqlglot 30 parses none of them); queries are checked with sqlglot and kept as
written, streaming sources replaced by placeholders (see ``sql_query``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import cast

from lakehouse.pipelines.declarative.model import (
    AutoCdc,
    DatasetKind,
    Expectation,
    ExpectationAction,
    SourceLocation,
    SqlDataset,
    SqlDefinition,
    SqlFlow,
    SqlQuery,
    SqlSet,
    SqlUse,
)
from lakehouse.pipelines.declarative.sql_query import batch_tables, check_expression, parse_query
from lakehouse.pipelines.declarative.sql_text import (
    Cursor,
    Statement,
    render_part,
    split_statements,
    substitute,
    tokenize,
)

__all__ = ["batch_tables", "parse_pipeline_sql"]

_MODIFIERS = ("PRIVATE", "TEMPORARY", "TEMP", "STREAMING", "INCREMENTAL", "LIVE", "MATERIALIZED")
_SKIPPED_CLAUSES = ("SCHEDULE", "TRIGGER", "WITH", "DEFAULT", "ROW", "STORED", "MASK")
_CLAUSES = ("USING", "PARTITIONED", "CLUSTER", "COMMENT", "TBLPROPERTIES", "OPTIONS", "LOCATION")
_CDC_CLAUSES = (
    ("KEYS",),
    ("IGNORE", "NULL", "UPDATES"),
    ("APPLY", "AS"),
    ("SEQUENCE", "BY"),
    ("COLUMNS",),
    ("STORED", "AS"),
    ("TRACK", "HISTORY"),
    ("SYSTEM", "SEQUENCE", "BY"),
)
_SET = re.compile(r"SET(?:\s+(.*))?\Z", re.IGNORECASE | re.DOTALL)


def parse_pipeline_sql(text: str, file: str, conf: Mapping[str, str] = {}) -> list[SqlDefinition]:
    """The definitions of one pipeline SQL file, in order.

    ``${key}`` is replaced from ``conf`` (the pipeline's configuration) and the file's earlier
    ``SET key = value`` statements; an undefined key, an unsupported or unparseable statement
    raises :class:`~lakehouse.core.errors.ConfigError` naming ``file`` and ``line N``.
    """
    values = dict(conf)
    counter = itertools.count()
    definitions: list[SqlDefinition] = []
    for statement in split_statements(text):
        body = substitute(statement, values, file)
        definition = _statement(statement, body, file, counter)
        if isinstance(definition, SqlSet):
            values[definition.key] = definition.value
        definitions.append(definition)
    return definitions


def _statement(statement: Statement, body: str, file: str, counter: Iterator[int]) -> SqlDefinition:
    location = SourceLocation(file, statement.line)
    if _SET.match(body):  # the value is raw text: not tokenized
        return _set(Cursor(body, [], file, statement.line), location)
    cur = Cursor(body, tokenize(body, file, statement.line), file, statement.line)
    if cur.word() == "CREATE":
        return _create(cur, location, counter)
    if cur.at("APPLY", "CHANGES") or cur.at("AUTO", "CDC"):
        return _auto_cdc(cur, location, None)
    if cur.word() == "USE":
        return _use(cur, location)
    raise cur.fail(
        "unsupported statement (expected SET, USE, CREATE MATERIALIZED VIEW, CREATE STREAMING "
        "TABLE, CREATE TEMPORARY VIEW, CREATE FLOW or APPLY CHANGES INTO)"
    )


def _use(cur: Cursor, location: SourceLocation) -> SqlUse:
    """``USE CATALOG c`` | ``USE {SCHEMA | DATABASE | NAMESPACE} [c.]s`` | ``USE [c.]s``."""
    cur.expect("USE")
    catalog = cur.accept("CATALOG")
    if not catalog:
        _ = cur.accept("SCHEMA") or cur.accept("DATABASE") or cur.accept("NAMESPACE")
    token = cur.peek()
    if token is not None and token.token_type.name == "STRING":
        parts = [token.text]  # USE SCHEMA 'name'
        cur.i += 1
    else:
        parts = [t.text for t in cur.name_tokens("a catalog or schema name")]
    if not cur.done():
        raise cur.fail(f"unexpected {cur.describe()}")
    if catalog and len(parts) == 1:
        return SqlUse(catalog=parts[0], schema=None, location=location)
    if not catalog and len(parts) in (1, 2):
        return SqlUse(
            catalog=parts[0] if len(parts) == 2 else None, schema=parts[-1], location=location
        )
    raise cur.fail("expected USE CATALOG c, USE SCHEMA s or USE SCHEMA c.s")


def _set(cur: Cursor, location: SourceLocation) -> SqlSet:
    """``SET key = value``: the value is the raw text after ``=`` (quotes kept, as in Spark)."""
    match = _SET.match(cur.text)
    rest = (match.group(1) or "").strip() if match else ""
    if rest.upper().startswith(("VAR ", "VARIABLE ")):
        raise cur.fail("SET VAR (session variables) is not supported; use SET key = value")
    key, sep, value = rest.partition("=")
    key, value = _unquote(key.strip()), _unquote(value.strip())
    if not sep or not key:
        raise cur.fail("SET needs key = value")
    return SqlSet(key=key, value=value, location=location)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1].replace("``", "`")
    return text


def _create(cur: Cursor, location: SourceLocation, counter: Iterator[int]) -> SqlDefinition:
    cur.expect("CREATE")
    _ = cur.accept("OR", "REFRESH") or cur.accept("OR", "REPLACE")
    modifiers: set[str] = set()
    while cur.word() in _MODIFIERS:
        modifiers.add(cur.word())
        cur.i += 1
    if cur.word() == "FLOW" and not modifiers:
        cur.i += 1
        return _flow(cur, location, counter)
    kind, private = _kind(cur, modifiers)
    cur.accept("IF", "NOT", "EXISTS")
    name = cur.name("the dataset's name")
    schema, expectations = _columns(cur) if cur.word() == "(" else (None, ())
    clauses = _clauses(cur)
    query = parse_query(cur, counter) if cur.accept("AS") else None
    if not cur.done():
        raise cur.fail(f"unexpected {cur.describe()}")
    if query is None and kind != "streaming_table":
        raise cur.fail("expected AS followed by a query")
    if kind == "materialized_view" and "LIVE" in modifiers and query and _streams(query):
        kind = "streaming_table"  # legacy CREATE LIVE TABLE … AS SELECT … FROM STREAM(…)
    return SqlDataset(
        kind=kind,
        name=name,
        location=location,
        query=query,
        comment=cast("str | None", clauses.get("comment")),
        schema=schema,
        expectations=expectations,
        table_properties=cast("dict[str, str]", clauses.get("properties", {})),
        partition_cols=cast("tuple[str, ...]", clauses.get("partitioned", ())),
        cluster_by=cast("tuple[str, ...]", clauses.get("cluster", ())),
        private=private,
    )


def _streams(query: SqlQuery) -> bool:
    return any(s.incremental for s in query.streams)


def _kind(cur: Cursor, modifiers: set[str]) -> tuple[DatasetKind, bool]:
    """The dataset kind of ``CREATE <modifiers> TABLE | VIEW`` and whether it is private."""
    what = cur.word()
    if what not in ("TABLE", "VIEW"):
        raise cur.fail(
            "expected MATERIALIZED VIEW, STREAMING TABLE, TEMPORARY VIEW or FLOW after CREATE"
        )
    cur.i += 1
    temporary = bool(modifiers & {"TEMPORARY", "TEMP"})
    private = "PRIVATE" in modifiers or (temporary and what == "TABLE")
    streaming = bool(modifiers & {"STREAMING", "INCREMENTAL"})
    if what == "VIEW" and "MATERIALIZED" in modifiers and not streaming:
        return "materialized_view", private
    if what == "VIEW" and (temporary or "LIVE" in modifiers) and "MATERIALIZED" not in modifiers:
        return "temporary_view", False
    if what == "TABLE" and streaming and "MATERIALIZED" not in modifiers:
        return "streaming_table", private
    if what == "TABLE" and "LIVE" in modifiers and "MATERIALIZED" not in modifiers:
        return "materialized_view", private
    if what == "VIEW" and not modifiers - {"PRIVATE"}:
        raise cur.fail(
            "persisted views (CREATE VIEW) are not supported: use CREATE TEMPORARY VIEW "
            "or CREATE MATERIALIZED VIEW"
        )
    if what == "TABLE" and not modifiers - {"PRIVATE"}:
        raise cur.fail(
            "CREATE TABLE is not a pipeline dataset: use CREATE MATERIALIZED VIEW "
            "or CREATE STREAMING TABLE"
        )
    raise cur.fail(f"unsupported combination CREATE {' '.join(sorted(modifiers))} {what}")


def _columns(cur: Cursor) -> tuple[str | None, tuple[Expectation, ...]]:
    """``(col defs, CONSTRAINT … EXPECT …, …)``: the columns as DDL and the expectations."""
    start, end = cur.group()
    columns: list[str] = []
    expectations: list[Expectation] = []
    for a, b in cur.items(start, end):
        item = Cursor(cur.text, cur.tokens[:b], cur.file, cur.line)
        item.i = a
        if item.accept("CONSTRAINT"):
            name = item.ident("the constraint's name")
            if item.accept("EXPECT"):
                expectations.append(_expectation(item, name))
            # other table constraints (PRIMARY KEY, FOREIGN KEY, CHECK) are informational
        elif not (item.at("PRIMARY", "KEY") or item.at("FOREIGN", "KEY")):
            columns.append(cur.source(a, b))
    names = [e.name for e in expectations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise cur.fail(f"expectation {duplicates[0]!r} is defined twice")
    return (", ".join(columns) or None), tuple(expectations)


def _expectation(item: Cursor, name: str) -> Expectation:
    """The rest of ``CONSTRAINT name EXPECT (expr) [ON VIOLATION DROP ROW | FAIL UPDATE]``."""
    start, end = item.group()
    condition = item.source(start, end)
    if not condition:
        raise item.fail(f"expectation {name!r} has an empty condition")
    check_expression(item, condition, f"the condition of expectation {name!r}")
    action: ExpectationAction = "warn"
    if item.accept("ON", "VIOLATION"):
        if item.accept("DROP", "ROW"):
            action = "drop"
        elif item.accept("FAIL", "UPDATE"):
            action = "fail"
        else:
            raise item.fail(f"expected DROP ROW or FAIL UPDATE after ON VIOLATION for {name!r}")
    if not item.done():
        raise item.fail(f"unexpected {item.describe()} after expectation {name!r}")
    return Expectation(name=name, condition=condition, action=action)


def _clauses(cur: Cursor) -> dict[str, object]:
    """The table clauses before ``AS``; Databricks-only ones are skipped (see the docs)."""
    found: dict[str, object] = {}
    while not cur.done() and cur.word() != "AS":
        if cur.accept("PARTITIONED", "BY"):
            found["partitioned"] = _column_names(cur)
        elif cur.accept("CLUSTER", "BY"):
            if not (cur.accept("AUTO") or cur.accept("NONE")):
                found["cluster"] = _column_names(cur)
        elif cur.accept("COMMENT"):
            found["comment"] = cur.string("a comment")
        elif cur.accept("TBLPROPERTIES"):
            found["properties"] = _properties(cur)
        else:
            _ignored_clause(cur)
    return found


def _ignored_clause(cur: Cursor) -> None:
    """A clause that means nothing locally: tables are Delta in the lakehouse's own storage."""
    if cur.accept("USING"):
        cur.ident("a format after USING")
    elif cur.accept("OPTIONS"):
        _properties(cur)
    elif cur.accept("LOCATION"):
        cur.string("a path after LOCATION")
    elif cur.word() in _SKIPPED_CLAUSES:
        _skip_clause(cur)
    else:
        raise cur.fail(f"unexpected {cur.describe()} (expected a table clause or AS)")


def _skip_clause(cur: Cursor) -> None:
    """Past a clause that means nothing locally (SCHEDULE, TRIGGER ON UPDATE, ROW FILTER …)."""
    cur.i += 1
    while not cur.done() and cur.word() not in (*_CLAUSES, *_SKIPPED_CLAUSES, "AS"):
        if cur.word() == "(":
            cur.group()
        else:
            cur.i += 1


def _column_names(cur: Cursor) -> tuple[str, ...]:
    start, end = cur.group()
    names = []
    for a, b in cur.items(start, end):
        if b - a not in (1, 2) or not cur.is_name_part(a - cur.i):
            raise cur.fail(f"expected column names, found '{cur.source(a, b)}'")
        names.append(cur.tokens[a].text)
    return tuple(names)


def _properties(cur: Cursor) -> dict[str, str]:
    """``('k' = 'v', a.b = true, …)`` as strings (booleans lower-cased)."""
    start, end = cur.group()
    found: dict[str, str] = {}
    for a, b in cur.items(start, end):
        eq = next((j for j in range(a, b) if cur.tokens[j].text == "="), None)
        key_end, value_start = (eq, eq + 1) if eq is not None else (a + 1, a + 1)
        if key_end <= a or value_start >= b:
            raise cur.fail(f"expected key = value, found '{cur.source(a, b)}'")
        key_token = cur.tokens[a]
        key = key_token.text if key_end == a + 1 else cur.source(a, key_end)
        value = cur.tokens[value_start]
        text = value.text if b == value_start + 1 else cur.source(value_start, b)
        if value.token_type.name in ("TRUE", "FALSE"):
            text = text.lower()
        found[key] = text
    return found


def _flow(cur: Cursor, location: SourceLocation, counter: Iterator[int]) -> SqlFlow:
    """``CREATE FLOW name [COMMENT '…'] AS INSERT INTO … | AUTO CDC INTO …`` (after FLOW)."""
    parts = cur.name_tokens("the flow's name")
    if len(parts) != 1:
        raise cur.fail("a flow's name cannot be qualified")
    name = render_part(parts[0])
    if cur.accept("COMMENT"):
        cur.string("a comment")
    cur.expect("AS")
    if cur.at("AUTO", "CDC") or cur.at("APPLY", "CHANGES"):
        return _auto_cdc(cur, location, name)
    cur.expect("INSERT")
    if cur.at("OVERWRITE"):
        raise cur.fail("INSERT OVERWRITE flows are not supported (use INSERT INTO)")
    once = cur.accept("ONCE")  # INSERT [ONCE] INTO [ONCE]: both spellings are documented
    cur.expect("INTO")
    once = cur.accept("ONCE") or once
    cur.accept("TABLE")
    target = cur.name("the flow's target")
    if cur.word() in ("(", "PARTITION"):
        raise cur.fail("a flow's target takes no column list or partition spec")
    cur.accept("BY", "NAME")
    query = parse_query(cur, counter)
    return SqlFlow(name=name, target=target, location=location, query=query, once=once)


def _auto_cdc(cur: Cursor, location: SourceLocation, name: str | None) -> SqlFlow:
    """``AUTO CDC INTO`` / ``APPLY CHANGES INTO target FROM source KEYS (…) …``."""
    _ = cur.accept("AUTO", "CDC") or cur.accept("APPLY", "CHANGES")
    once = cur.accept("ONCE")
    cur.expect("INTO")
    target = cur.name("the AUTO CDC target")
    cur.expect("FROM")
    if cur.at("SNAPSHOT"):
        raise cur.fail("AUTO CDC FROM SNAPSHOT is not supported")
    source = _cdc_source(cur)
    spec: dict[str, object] = {}
    seen: set[str] = set()
    while not cur.done():
        _cdc_clause(cur, spec, seen)
    for required in ("keys", "sequence_by"):
        if required not in spec:
            clause = "KEYS (…)" if required == "keys" else "SEQUENCE BY …"
            raise cur.fail(f"AUTO CDC INTO {target} needs {clause}")
    auto_cdc = AutoCdc(target=target, source=source, name=name, **spec)  # type: ignore[arg-type]
    return SqlFlow(
        name=name or target, target=target, location=location, auto_cdc=auto_cdc, once=once
    )


def _cdc_source(cur: Cursor) -> str:
    if cur.word() == "(":
        raise cur.fail("AUTO CDC needs a table as its source (STREAM(table)), not a subquery")
    if cur.accept("STREAM") and cur.word() == "(":
        start, end = cur.group()
        inner = Cursor(cur.text, cur.tokens[:end], cur.file, cur.line)
        inner.i = start
        source = inner.name("the AUTO CDC source")
        if not inner.done():
            raise cur.fail(f"unexpected {inner.describe()} in STREAM(…)")
        return source
    return cur.name("the AUTO CDC source")


def _cdc_clause(cur: Cursor, spec: dict[str, object], seen: set[str]) -> None:
    """One clause of AUTO CDC into ``spec`` (keyword arguments of :class:`AutoCdc`)."""
    for words, parse in _CDC_PARSERS:
        if cur.accept(*words):
            clause = " ".join(words)
            if clause in seen:
                raise cur.fail(f"{clause} is given twice")
            seen.add(clause)
            spec.update(parse(cur))
            return
    raise cur.fail(f"unexpected {cur.describe()} in AUTO CDC (expected KEYS, SEQUENCE BY, …)")


def _cdc_keys(cur: Cursor) -> dict[str, object]:
    start, end = cur.group()
    return {"keys": tuple(_identifier(cur, a, b) for a, b in cur.items(start, end))}


def _cdc_ignore_null_updates(cur: Cursor) -> dict[str, object]:
    if cur.at("ON"):
        raise cur.fail("IGNORE NULL UPDATES ON columns is not supported (Databricks SQL only)")
    return {"ignore_null_updates": True}


def _cdc_scd_type(cur: Cursor) -> dict[str, object]:
    token = cur.peek(2)
    if not cur.accept("SCD", "TYPE") or token is None or token.text not in ("1", "2"):
        raise cur.fail(f"expected SCD TYPE 1 or 2, found {cur.describe()}")
    cur.i += 1
    return {"stored_as_scd_type": int(token.text)}


def _cdc_columns(cur: Cursor) -> dict[str, object]:
    if cur.at("TO", "UPDATE"):
        raise cur.fail("COLUMNS TO UPDATE is not supported (Databricks SQL only)")
    return dict(zip(("column_list", "except_column_list"), _column_selection(cur), strict=True))


def _cdc_history(cur: Cursor) -> dict[str, object]:
    keys = ("track_history_column_list", "track_history_except_column_list")
    return dict(zip(keys, _column_selection(cur), strict=True))


def _cdc_system_sequence(cur: Cursor) -> dict[str, object]:
    raise cur.fail("SYSTEM SEQUENCE BY is not supported (Databricks SQL only)")


def _cdc_expression_clause(key: str, clause: str) -> Callable[[Cursor], dict[str, object]]:
    return lambda cur: {key: _cdc_expression(cur, clause)}


_CDC_PARSERS: tuple[tuple[tuple[str, ...], Callable[[Cursor], dict[str, object]]], ...] = (
    (("KEYS",), _cdc_keys),
    (("IGNORE", "NULL", "UPDATES"), _cdc_ignore_null_updates),
    (
        ("APPLY", "AS", "DELETE", "WHEN"),
        _cdc_expression_clause("apply_as_deletes", "APPLY AS DELETE WHEN"),
    ),
    (
        ("APPLY", "AS", "TRUNCATE", "WHEN"),
        _cdc_expression_clause("apply_as_truncates", "APPLY AS TRUNCATE WHEN"),
    ),
    (("SEQUENCE", "BY"), _cdc_expression_clause("sequence_by", "SEQUENCE BY")),
    (("COLUMNS",), _cdc_columns),
    (("STORED", "AS"), _cdc_scd_type),
    (("TRACK", "HISTORY", "ON"), _cdc_history),
    (("SYSTEM", "SEQUENCE", "BY"), _cdc_system_sequence),
)


def _at_cdc_clause(cur: Cursor) -> bool:
    return any(cur.at(*words) for words in _CDC_CLAUSES)


def _cdc_expression(cur: Cursor, clause: str) -> str:
    """The expression from the cursor to the next AUTO CDC clause (as written)."""
    start = cur.i
    while not cur.done() and not _at_cdc_clause(cur):
        if cur.word() == "(":
            cur.group()
        else:
            cur.i += 1
    if cur.i == start:
        raise cur.fail(f"expected an expression after {clause}")
    text = cur.source(start, cur.i)
    check_expression(cur, text, clause)
    return text


def _column_selection(cur: Cursor) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """``* [EXCEPT (a, b)]`` or ``a, b`` / ``(a, b)``: (columns, except columns)."""
    if cur.accept("*"):
        if not cur.accept("EXCEPT"):
            return None, None
        start, end = cur.group()
        return None, tuple(_identifier(cur, a, b) for a, b in cur.items(start, end))
    if cur.word() == "(":
        start, end = cur.group()
        return tuple(_identifier(cur, a, b) for a, b in cur.items(start, end)), None
    start = cur.i
    while not cur.done() and not _at_cdc_clause(cur):
        cur.i += 1
    if cur.i == start:
        raise cur.fail("expected * or column names")
    return tuple(_identifier(cur, a, b) for a, b in cur.items(start, cur.i)), None


def _identifier(cur: Cursor, a: int, b: int) -> str:
    """The single column name in ``tokens[a:b]``, unquoted."""
    if b != a + 1 or not cur.is_name_part(a - cur.i):
        raise cur.fail(f"expected a column name, found '{cur.source(a, b)}'")
    return cur.tokens[a].text
