"""What a flow reads, seen while its function runs: ``spark.read.table``, ``spark.table``,
``spark.sql``, ``spark.readStream.table`` / ``.format("cloudFiles").load(path)`` and
``dp.read`` / ``dp.read_stream`` are routed to a :class:`ReadHandler` for the duration of
the call only (the engine has no streaming: a stream read becomes a batch of new rows).

A DataFrame on Spark Connect is lazy, so calling a flow function to learn its reads does
not touch the server; SQL text is parsed with sqlglot for its table names.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import sqlglot
from pyspark.sql import DataFrame, SparkSession
from sqlglot import exp

from lakehouse.pipelines.declarative.model import FilesSource

_FILE_FORMATS = {"json", "csv", "parquet", "text", "orc", "avro", "xml", "binaryfile"}


class ReadHandler(Protocol):
    """Where a flow's reads go (discovery records them; execution resolves them)."""

    def table(self, name: str, *, stream: bool) -> DataFrame: ...

    def files(self, source: FilesSource, schema: Any, incremental: bool = True) -> DataFrame: ...

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
        with serving():
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
            with serving():
                return self._handler.table(f"delta.`{path}`", stream=True)
        if path is None:
            raise ValueError(f"readStream.format({fmt!r}).load() needs a path")
        with serving():
            return self._handler.files(FilesSource(path, fmt.lower(), opts), self._schema)

    def __getattr__(self, fmt: str) -> Any:
        if fmt.lower() not in _FILE_FORMATS:
            raise AttributeError(fmt)

        def read(path: str, **options: Any) -> DataFrame:
            return self.format(fmt).load(path, **options)

        return read


_LOCK = threading.Lock()
_ROUTES: dict[int, list[ReadHandler | None]] = {}  # thread -> handlers (innermost last)
_SAVED: dict[tuple[type, str], Any] = {}  # (class, attribute) -> what it was
_ORIGINALS: dict[tuple[type, str], Any] = {}  # the functions routed reads fall back to
_USERS = [0]


def _active() -> ReadHandler | None:
    stack = _ROUTES.get(threading.get_ident())
    return stack[-1] if stack else None


@contextlib.contextmanager
def serving() -> Iterator[None]:
    """While a handler serves a read, what it calls itself (the table store's own SQL, e.g.
    registering the table it reads) goes to Spark unrouted."""
    stack = _ROUTES[threading.get_ident()]
    stack.append(None)
    try:
        yield
    finally:
        stack.pop()


def _install(session_cls: type, reader_cls: type) -> None:
    """Route the classes' reads to the calling thread's handler (others: unchanged)."""
    for cls, attr in (
        (session_cls, "table"),
        (session_cls, "sql"),
        (session_cls, "readStream"),
        (reader_cls, "table"),
    ):
        _SAVED[(cls, attr)] = cls.__dict__.get(attr)
    s_table, s_sql, r_table = session_cls.table, session_cls.sql, reader_cls.table  # type: ignore[attr-defined]
    s_stream = session_cls.__dict__.get("readStream")
    _ORIGINALS[(session_cls, "sql")] = s_sql
    _ORIGINALS[(reader_cls, "table")] = r_table

    def session_table(self: Any, name: str) -> DataFrame:
        handler = _active()
        if handler is None:
            return s_table(self, name)  # type: ignore[no-any-return]
        with serving():
            return handler.table(name, stream=False)

    def reader_table(self: Any, name: str) -> DataFrame:
        handler = _active()
        if handler is None:
            return r_table(self, name)  # type: ignore[no-any-return]
        with serving():
            return handler.table(name, stream=False)

    def sql(self: Any, query: str, args: Any = None, **kwargs: Any) -> DataFrame:
        handler = _active()
        if handler is None or args is not None or kwargs:
            return s_sql(self, query, args, **kwargs)  # type: ignore[no-any-return]
        with serving():
            return handler.sql(query)

    def read_stream(self: Any) -> Any:
        handler = _active()
        if handler is not None:
            return StreamReader(handler)
        return s_stream.__get__(self) if s_stream is not None else None

    setattr(session_cls, "table", session_table)  # noqa: B010
    setattr(session_cls, "sql", sql)  # noqa: B010
    setattr(session_cls, "readStream", property(read_stream))  # noqa: B010
    setattr(reader_cls, "table", reader_table)  # noqa: B010


def _uninstall() -> None:
    for (cls, attr), value in _SAVED.items():
        if value is None:
            with contextlib.suppress(AttributeError):
                delattr(cls, attr)
        else:
            setattr(cls, attr, value)
    _SAVED.clear()
    _ORIGINALS.clear()


@contextlib.contextmanager
def routed_reads(spark: SparkSession, handler: ReadHandler) -> Iterator[None]:
    """Route this thread's reads on ``spark``'s classes to ``handler`` for the block (other
    threads read as usual); the classes are restored when no block is open."""
    session_cls, reader_cls = type(spark), type(spark.read)
    me = threading.get_ident()
    with _LOCK:
        if (session_cls, "sql") not in _SAVED:
            _install(session_cls, reader_cls)
        _USERS[0] += 1
        _ROUTES.setdefault(me, []).append(handler)
    try:
        yield
    finally:
        with _LOCK:
            _ROUTES[me].pop()
            if not _ROUTES[me]:
                del _ROUTES[me]
            _USERS[0] -= 1
            if _USERS[0] == 0:
                _uninstall()


def _original(cls: type, attr: str) -> Any:
    return _ORIGINALS.get((cls, attr)) or getattr(cls, attr)


def original_sql(spark: SparkSession, text: str) -> DataFrame:
    """``spark.sql`` itself, even while reads are routed."""
    return _original(type(spark), "sql")(spark, text)  # type: ignore[no-any-return]


def original_table(reader: Any, name: str) -> DataFrame:
    """``spark.read.table`` itself, even while reads are routed."""
    return _original(type(reader), "table")(reader, name)  # type: ignore[no-any-return]


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
