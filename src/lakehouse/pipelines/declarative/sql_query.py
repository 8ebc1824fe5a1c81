"""Queries of pipeline SQL: streaming sources replaced by placeholders, checked by sqlglot.

``STREAM(t)``, ``STREAM t``, ``STREAM read_files(…)`` / ``STREAM cloud_files(…)`` become
``__stream_<n>`` in the query text (one :class:`StreamRead` each); a batch ``read_files(…)``
becomes one too, with ``incremental=False``. The legacy ``LIVE.`` prefix is removed. The
rest of the query is kept as written; sqlglot (Databricks dialect) only checks that it parses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.dialects.databricks import Databricks
from sqlglot.errors import ParseError, TokenError

from lakehouse.core.errors import ConfigError
from lakehouse.pipelines.declarative.model import FilesSource, SqlQuery, StreamRead
from lakehouse.pipelines.declarative.sql_text import Cursor

PLACEHOLDER_PREFIX = "__stream_"
_DIALECT = Databricks()
_FILE_FUNCTIONS = ("READ_FILES", "CLOUD_FILES")
_SOURCE_POSITION = ("FROM", "JOIN", ",", "(")
_EXTENSION_FORMATS = {
    "csv": "csv",
    "tsv": "csv",
    "json": "json",
    "jsonl": "json",
    "ndjson": "json",
    "parquet": "parquet",
    "avro": "avro",
    "orc": "orc",
    "xml": "xml",
    "txt": "text",
}
_INTERVAL_LITERALS = (TokenType.NUMBER, TokenType.STRING)
_INTERVAL_UNITS = {
    f"{unit}{plural}"
    for unit in ("YEAR", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND", "MILLISECOND")
    for plural in ("", "S")
} | {"MICROSECOND", "MICROSECONDS"}
# words that can follow a column named ``stream`` (so ``stream`` is not ``STREAM table``)
_CLAUSE_WORDS = {
    *("FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "QUALIFY", "WINDOW"),
    *("UNION", "EXCEPT", "INTERSECT", "MINUS", "JOIN", "ON", "USING", "AS", "LATERAL"),
    *("LEFT", "RIGHT", "FULL", "INNER", "CROSS", "OUTER", "SEMI", "ANTI", "NATURAL"),
    *("CLUSTER", "DISTRIBUTE", "SORT", "PIVOT", "UNPIVOT", "TABLESAMPLE", "WATERMARK"),
    *("AND", "OR", "NOT", "IS", "IN", "LIKE", "BETWEEN", "DESC", "ASC", "NULLS"),
}
_NOT_QUERIES = (exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Merge, exp.Drop, exp.Command)


def parse_query(cur: Cursor, counter: Iterator[int]) -> SqlQuery:
    """The query from the cursor to the end of the statement (the cursor moves to the end)."""
    start = cur.i
    if cur.done():
        raise cur.fail("expected a query after AS")
    base = cur.tokens[start].start
    edits: list[tuple[int, int, str]] = []  # (start, end exclusive, replacement) in cur.text
    streams: list[StreamRead] = []
    while not cur.done():
        j = cur.i
        if _is_live_prefix(cur):
            edits.append((cur.tokens[j].start, cur.tokens[j + 1].end + 1, ""))
            cur.i += 2
        elif _at_source(cur, j):
            placeholder = f"{PLACEHOLDER_PREFIX}{next(counter)}"
            streams.append(_stream_read(cur, placeholder))
            edits.append((cur.tokens[j].start, cur.tokens[cur.i - 1].end + 1, placeholder))
        elif cur.word() == "WATERMARK" and (end := _watermark_end(cur)) is not None:
            edits.append((cur.tokens[j - 1].end + 1, cur.tokens[end - 1].end + 1, ""))
            cur.i = end
        else:
            cur.i += 1
    text = cur.text
    for begin, end, replacement in reversed(edits):
        text = text[:begin] + replacement + text[end:]
    query = SqlQuery(text=text[base:].strip(), streams=tuple(streams))
    _check(cur, query, line_offset=cur.text[:base].count("\n"))
    return query


def _watermark_end(cur: Cursor) -> int | None:
    """The token index after ``WATERMARK col DELAY OF INTERVAL …`` at the cursor, if it is one.

    The clause is removed from the query: flows run as incremental batches, where Spark
    ignores watermarks too.
    """
    probe = Cursor(cur.text, cur.tokens, cur.file, cur.line)
    probe.i = cur.i + 1
    if not probe.is_name_part():
        return None
    probe.name_tokens("a column")
    if not probe.accept("DELAY", "OF", "INTERVAL"):
        return None
    literals = 0
    while (token := probe.peek()) is not None and token.token_type in _INTERVAL_LITERALS:
        literals += 1
        probe.i += 1
        if probe.word() in _INTERVAL_UNITS:
            probe.i += 1
    return probe.i if literals else None


def _is_live_prefix(cur: Cursor) -> bool:
    token, prev = cur.peek(), cur.peek(-1) if cur.i > 0 else None
    return (
        token is not None
        and token.token_type != TokenType.IDENTIFIER
        and token.text.upper() == "LIVE"
        and cur.word(1) == "."
        and cur.is_name_part(2)
        and (prev is None or prev.text != ".")
    )


def _at_source(cur: Cursor, j: int) -> bool:
    """Whether ``STREAM …`` or ``read_files(`` starts at token ``j`` in a FROM position."""
    if j == 0 or cur.word(-1) not in _SOURCE_POSITION:
        return False
    if cur.word() == "STREAM":
        return cur.word(1) == "(" or (cur.is_name_part(1) and cur.word(1) not in _CLAUSE_WORDS)
    return cur.word() in _FILE_FUNCTIONS and cur.word(1) == "("


def _stream_read(cur: Cursor, placeholder: str) -> StreamRead:
    """The source at the cursor (``STREAM …`` or a batch file function), advancing past it."""
    if not cur.accept("STREAM"):
        return StreamRead(placeholder, files=_files(cur), incremental=False)
    if cur.word() == "(":
        start, end = cur.group()
        inner = Cursor(cur.text, cur.tokens[:end], cur.file, cur.line)
        inner.i = start
        read = _stream_target(inner, placeholder)
        if not inner.done():
            raise cur.fail(
                f"expected a table or read_files(…) in STREAM(…), found {inner.describe()}"
            )
        return read
    return _stream_target(cur, placeholder)


def _stream_target(cur: Cursor, placeholder: str) -> StreamRead:
    if cur.word() in ("SELECT", "WITH", "FROM", "VALUES", "TABLE", "("):
        raise cur.fail(
            "a subquery in STREAM(…) is not supported (use STREAM(table) or STREAM read_files(…))"
        )
    if cur.word() in _FILE_FUNCTIONS and cur.word(1) == "(":
        return StreamRead(placeholder, files=_files(cur))
    return StreamRead(placeholder, table=cur.name("a table after STREAM"))


def _files(cur: Cursor) -> FilesSource:
    """``read_files(path, format => 'csv', k => v, …)`` or ``cloud_files(path, fmt, map(…))``."""
    function = cur.word()
    cur.i += 1
    start, end = cur.group()
    positional: list[str] = []
    options: dict[str, str] = {}
    for a, b in cur.items(start, end):
        if b - a >= 3 and cur.tokens[a + 1].token_type == TokenType.FARROW:
            options[cur.tokens[a].text] = _literal(cur, a + 2, b)
        elif cur.tokens[a].text.upper() == "MAP" and b > a + 1 and cur.tokens[a + 1].text == "(":
            options.update(_map(cur, a + 1, b))
        else:
            positional.append(_literal(cur, a, b))
    if not positional:
        raise cur.fail(f"{function.lower()}(…) needs a path")
    if function == "CLOUD_FILES" and len(positional) >= 2:
        options.setdefault("format", positional[1])
    fmt = options.pop("format", None) or _format_of(positional[0])
    if fmt is None:
        raise cur.fail(f"{function.lower()}('{positional[0]}') needs format => '…'")
    return FilesSource(path=positional[0], format=fmt.lower(), options=options)


def _literal(cur: Cursor, a: int, b: int) -> str:
    """A literal argument as text: strings unquoted, booleans lower-cased, others as written."""
    token = cur.tokens[a]
    if b == a + 1 and token.token_type in (TokenType.STRING, TokenType.RAW_STRING):
        return token.text
    if b == a + 1 and token.token_type in (TokenType.TRUE, TokenType.FALSE):
        return token.text.lower()
    return cur.source(a, b)


def _map(cur: Cursor, paren: int, end: int) -> dict[str, str]:
    """``map('k', 'v', …)`` as a dict."""
    inner = Cursor(cur.text, cur.tokens[:end], cur.file, cur.line)
    inner.i = paren
    start, stop = inner.group()
    values = [_literal(cur, a, b) for a, b in cur.items(start, stop)]
    if len(values) % 2:
        raise cur.fail("map(…) needs key, value pairs")
    return dict(zip(values[::2], values[1::2], strict=True))


def _format_of(path: str) -> str | None:
    suffix = PurePosixPath(path.rstrip("/")).suffix.lstrip(".").lower()
    return _EXTENSION_FORMATS.get(suffix)


def _for_sqlglot(text: str) -> str:
    """``text`` with the Spark SQL sqlglot 30 misreads made plain: the ``window(…)`` grouping
    function (a keyword to sqlglot: ``GROUP BY window(ts, '5 minutes')`` fails) is backticked."""
    try:
        tokens = _DIALECT.tokenize(text)
    except TokenError:
        return text
    for k in reversed(range(len(tokens) - 1)):
        token = tokens[k]
        call = token.text.upper() == "WINDOW" and tokens[k + 1].text == "("
        plain = token.token_type != TokenType.IDENTIFIER and (k == 0 or tokens[k - 1].text != ".")
        if call and plain:
            text = f"{text[: token.start]}`{token.text}`{text[token.end + 1 :]}"
    return text


def _check(cur: Cursor, query: SqlQuery, line_offset: int) -> None:
    """sqlglot must parse the query text; streams it did not recognise are refused."""
    try:
        tree = sqlglot.parse_one(_for_sqlglot(query.text), dialect="databricks")
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        line = cur.line + line_offset + max(int(error.get("line") or 1) - 1, 0)
        reason = str(error.get("description") or exc).splitlines()[0]
        raise ConfigError(cur.file, f"line {line}", f"invalid query: {reason}") from None
    if tree is None or isinstance(tree, _NOT_QUERIES):
        raise cur.fail("expected a query (SELECT …, WITH …, FROM …, VALUES …)")
    if tree.find(exp.Stream) is not None:
        raise cur.fail("unsupported STREAM source (use STREAM(table) or STREAM read_files(…))")
    tables = {t.name for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)}
    for read in query.streams:
        if read.placeholder not in tables:
            raise cur.fail("STREAM and read_files(…) can only be read in a FROM clause")


def check_expression(cur: Cursor, text: str, what: str) -> None:
    """``text`` must be one SQL expression (sqlglot parses ``SELECT <text>`` to one column)."""
    try:
        tree = sqlglot.parse_one(f"SELECT {text}", dialect="databricks")
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        reason = str(error.get("description") or exc).splitlines()[0]
        raise cur.fail(f"{what} must be one expression, found '{text}' ({reason})") from None
    extra = [k for k, v in tree.args.items() if v and k != "expressions"]
    columns = tree.expressions if isinstance(tree, exp.Select) else []
    if extra or len(columns) != 1 or isinstance(columns[0], exp.Alias):
        raise cur.fail(f"{what} must be one expression, found '{text}'")


def batch_tables(query: SqlQuery) -> tuple[str, ...]:
    """The tables a query reads in batch (not its streams, CTEs or table functions), in order.

    Names are Spark SQL text (``cat.db.t``, backticks only where needed); the runner uses them
    with ``query.streams`` to order the pipeline's flows.
    """
    tree = sqlglot.parse_one(_for_sqlglot(query.text), dialect="databricks")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    placeholders = {s.placeholder for s in query.streams}
    found: list[str] = []
    tables = [t for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)]
    tables.sort(key=lambda t: int(t.this.meta.get("start", 0)))  # table functions left out
    for table in tables:
        parts = [p for p in table.parts if isinstance(p, exp.Identifier)]
        if len(parts) == 1 and (parts[0].name.lower() in ctes or parts[0].name in placeholders):
            continue
        name = ".".join(_render(p) for p in parts)
        if name not in found:
            found.append(name)
    return tuple(found)


def _render(part: exp.Identifier) -> str:
    name = part.name
    if name.isidentifier() and name.isascii():
        return name
    return "`" + name.replace("`", "``") + "`"
