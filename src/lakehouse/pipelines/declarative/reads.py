"""What a flow reads, seen while its function runs: ``spark.read.table``, ``spark.table``,
``spark.sql``, ``spark.readStream.table`` / ``.format("cloudFiles").load(path)`` and
``dp.read`` / ``dp.read_stream`` are routed to a :class:`ReadHandler` for the duration of
the call only (the engine has no streaming: a stream read becomes a batch of new rows).

A DataFrame on Spark Connect is lazy, so calling a flow function to learn its reads does
not touch the server; SQL text is parsed with sqlglot for its table names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import sqlglot
from pyspark.sql import DataFrame, SparkSession
from sqlglot import exp

from lakehouse.pipelines.declarative.model import FilesSource

_ORIGINAL_SQL: dict[type, Any] = {}
_FILE_FORMATS = {"json", "csv", "parquet", "text", "orc", "avro", "xml", "binaryfile"}


class ReadHandler(Protocol):
    """Where a flow's reads go (discovery records them; execution resolves them)."""

    def table(self, name: str, *, stream: bool) -> DataFrame: ...

    def files(self, source: FilesSource, schema: Any) -> DataFrame: ...

    def sql(self, text: str) -> DataFrame: ...


class StreamReader:
    """``spark.readStream`` while a flow runs: tables and files as batches of new rows."""

    def __init__(self, handler: ReadHandler) -> None:
        self._handler = handler
        self._format: str | None = None
        self._options: dict[str, str] = {}
        self._schema: Any = None

    def format(self, source: str) -> StreamReader:
        self._format = source
        return self

    def option(self, key: str, value: Any) -> StreamReader:
        self._options[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return self

    def options(self, **options: Any) -> StreamReader:
        for k, v in options.items():
            self.option(k, v)
        return self

    def schema(self, schema: Any) -> StreamReader:
        self._schema = schema
        return self

    def table(self, name: str) -> DataFrame:
        return self._handler.table(name, stream=True)

    def load(self, path: str | None = None, format: str | None = None, **options: Any) -> DataFrame:
        if format is not None:
            self._format = format
        self.options(**options)
        fmt = (self._format or "parquet").lower()
        opts = dict(self._options)
        if fmt == "cloudfiles":
            fmt = opts.pop("cloudFiles.format", "")
            if not fmt:
                raise ValueError("cloudFiles needs the option cloudFiles.format")
        if fmt == "delta":
            if path is None:
                raise ValueError("readStream.format('delta').load() needs a path")
            return self._handler.table(f"delta.`{path}`", stream=True)
        if path is None:
            raise ValueError(f"readStream.format({fmt!r}).load() needs a path")
        return self._handler.files(FilesSource(path, fmt.lower(), opts), self._schema)

    def __getattr__(self, fmt: str) -> Any:
        if fmt.lower() not in _FILE_FORMATS:
            raise AttributeError(fmt)

        def read(path: str, **options: Any) -> DataFrame:
            return self.format(fmt).load(path, **options)

        return read


@contextlib.contextmanager
def routed_reads(spark: SparkSession, handler: ReadHandler) -> Iterator[None]:
    """Route the session's reads to ``handler`` for the block, then restore them."""
    session_cls = type(spark)
    reader_cls = type(spark.read)
    saved = {
        (session_cls, "table"): session_cls.__dict__.get("table"),
        (session_cls, "sql"): session_cls.__dict__.get("sql"),
        (session_cls, "readStream"): session_cls.__dict__.get("readStream"),
        (reader_cls, "table"): reader_cls.__dict__.get("table"),
    }
    original_sql = session_cls.sql
    _ORIGINAL_SQL.setdefault(session_cls, original_sql)

    def table(_self: Any, name: str) -> DataFrame:
        return handler.table(name, stream=False)

    def sql(self: Any, query: str, args: Any = None, **kwargs: Any) -> DataFrame:
        if args is not None or kwargs:
            return original_sql(self, query, args, **kwargs)
        return handler.sql(query)

    setattr(session_cls, "table", table)  # noqa: B010
    setattr(session_cls, "sql", sql)  # noqa: B010
    setattr(session_cls, "readStream", property(lambda _self: StreamReader(handler)))  # noqa: B010
    setattr(reader_cls, "table", table)  # noqa: B010
    try:
        yield
    finally:
        for (cls, attr), value in saved.items():
            if value is None:
                with contextlib.suppress(AttributeError):
                    delattr(cls, attr)
            else:
                setattr(cls, attr, value)


def original_sql(spark: SparkSession, text: str) -> DataFrame:
    """``spark.sql`` itself, even while reads are routed."""
    method = _ORIGINAL_SQL.get(type(spark), type(spark).sql)
    return method(spark, text)  # type: ignore[no-any-return]


def sql_tables(text: str) -> list[str]:
    """The tables a SQL query reads (CTE names excluded), as written."""
    names: list[str] = []
    for statement in sqlglot.parse(text, read="spark"):
        if statement is None:
            continue
        ctes = {c.alias_or_name.lower() for c in statement.find_all(exp.CTE)}
        for table in statement.find_all(exp.Table):
            name = _table_name(table)
            if name and name.lower() not in ctes and name not in names:
                names.append(name)
    return names


def _table_name(table: exp.Table) -> str:
    if not table.name or isinstance(table.this, exp.Func):
        return ""  # a table function (read_files, range …)
    return ".".join(p for p in (table.catalog, table.db, table.name) if p)


def rewrite_tables(text: str, names: dict[str, str]) -> str:
    """The SQL with each table written as a key of ``names`` replaced by its value."""
    if not names:
        return text
    out = []
    for statement in sqlglot.parse(text, read="spark"):
        if statement is None:
            continue
        ctes = {c.alias_or_name.lower() for c in statement.find_all(exp.CTE)}

        def swap(node: exp.Expression, ctes: set[str] = ctes) -> exp.Expression:
            if isinstance(node, exp.Table):
                name = _table_name(node)
                if name and name.lower() not in ctes and name in names:
                    new = exp.to_table(names[name], dialect="spark")
                    if node.alias:
                        new.set("alias", node.args.get("alias"))
                    return new
            return node

        out.append(statement.transform(swap).sql(dialect="spark"))
    return ";\n".join(out)
