"""CSV text -> records in the raw Bronze shape: the one CSV parser, in plain Python.

Python's :mod:`csv` module reads the decoded lines of a file (``\\r\\n``, ``\\r`` and ``\\n``
kept), so a quoted field may span lines (``multiline``) and every record keeps its own text
for ``_raw`` when it is bad. The options are Spark's CSV reader options, snake_case:
``skip_rows`` lines are dropped first, then blank lines and ``comment`` lines (outside a
quoted field) are skipped everywhere; the first record is the header unless ``header`` is
false (then the columns are the declared ones, in order, or ``_c0, _c1 ...``).

A record is corrupt when its quoting is broken or its field count differs from the header.
A broken record that took several lines (an unclosed quote swallowing the lines after it)
is taken apart again: its first line is the corrupt record and parsing resumes on the next
line, so one stray quote costs one record, never the rest of the file. ``csv``'s field size
limit (128 KiB) bounds how far an unclosed quote can read.

The parser runs where the file's bytes are (the driver): on the embedded engine
``read.text(wholetext=True)`` splits large files, so no engine-side whole-file parse is used.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lakehouse.config.sources import CsvOptions

BROKEN_QUOTING = "malformed CSV: broken quoting"


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused: parsing allocates millions of small lists and
    tuples that have no cycles (reference counting frees them), and each collection would
    walk all of them; a third to a half of the parse time, measured on 100k records."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def unique_header(header: list[str]) -> list[str]:
    """Header names made unique: a repeated name's later columns become
    ``<name>__duplicate_<column number>``, undeclared fields whose values are rescued (or
    added, or refused, by the schema-drift policy) instead of silently replacing the first."""
    seen: set[str] = set()
    names = []
    for number, name in enumerate(header, start=1):
        names.append(f"{name}__duplicate_{number}" if name in seen else name)
        seen.add(name)
    return names


def _dialect(options: CsvOptions) -> dict[str, Any]:
    escape = options.escape if options.escape != options.quote else None
    return {
        "delimiter": options.delimiter,
        "quotechar": options.quote,
        "escapechar": escape,
        "doublequote": True,
        "strict": True,
    }


def _record_text(lines: list[str]) -> str:
    """The record's text: its lines without the last line break."""
    text = "".join(lines)
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\r")) else text


class _Lines:
    """Physical lines for :func:`csv.reader`: the ones a record took are in ``taken``;
    comment lines at a record's start are skipped; lines can be handed back."""

    def __init__(self, lines: Iterable[str], comment: str | None) -> None:
        self._lines = iter(lines)
        self._back: list[str] = []
        self._comment = comment
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back or self._comment is not None:
            return self._next_slow()
        line = next(self._lines)
        self.taken.append(line)
        return line

    def _next_slow(self) -> str:
        while True:
            line = self._back.pop() if self._back else next(self._lines)
            if self.taken or self._comment is None or not line.startswith(self._comment):
                self.taken.append(line)
                return line

    def take(self) -> list[str]:
        taken, self.taken = self.taken, []
        return taken

    def give_back(self, lines: list[str]) -> None:
        self._back.extend(reversed(lines))


Record = tuple[list[str] | None, list[str]]  # (fields or None: broken quoting, its lines)


def _blank(fields: list[str], lines: list[str]) -> bool:
    """Whether a record of at most one field is a blank line (whitespace only)."""
    return len(fields) <= 1 and not "".join(lines).strip()


def split_records(lines: Iterable[str], options: CsvOptions) -> Iterator[Record]:
    """``(fields, lines)`` per record after ``skip_rows`` (``fields`` None: broken quoting);
    blank and comment lines yield nothing."""
    source = _Lines(lines, options.comment)
    for _ in range(options.skip_rows):
        if next(source, None) is None:
            return iter(())
        source.take()
    return _multiline(source, options) if options.multiline else _by_line(source, options)


def _multiline(source: _Lines, options: CsvOptions) -> Iterator[Record]:
    dialect = _dialect(options)
    reader = csv.reader(source, **dialect)
    while True:
        try:
            fields: list[str] | None = next(reader)
        except StopIteration:
            return
        except csv.Error:
            fields = None
        taken, source.taken = source.taken, []
        if fields is None:
            if len(taken) > 1:  # its first line is corrupt, the rest is read again
                source.give_back(taken[1:])
                taken = taken[:1]
            reader = csv.reader(source, **dialect)
        elif len(fields) <= 1 and _blank(fields, taken):
            continue
        yield fields, taken


def _by_line(source: _Lines, options: CsvOptions) -> Iterator[Record]:
    dialect = _dialect(options)
    for line in source:
        taken = source.take()
        try:
            fields: list[str] | None = next(csv.reader([line], **dialect), [])
        except csv.Error:
            fields = None
        if fields is None or not _blank(fields, taken):
            yield fields, taken


@dataclass
class CsvRows:
    """A chunk of a CSV file's records: the good ones as the reader split them (``fields``
    of ``names``), the bad ones as ``(good records before it, reason, text)``; plus what was
    found about the header."""

    declared: list[str]
    names: list[str] = field(default_factory=list)  # the good records' fields
    good: list[list[str]] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)
    header: list[str] | None = None
    header_note: str | None = None  # why the header is probably not the file's header

    def __len__(self) -> int:
        return len(self.good) + len(self.bad)

    def add_bad(self, reason: str, lines: list[str]) -> None:
        self.bad.append((len(self.good), reason, _record_text(lines)))

    @property
    def undeclared(self) -> list[str]:
        """The good records' fields that are not declared, in file order."""
        known = set(self.declared)
        return [n for n in self.names if n not in known]

    @property
    def records(self) -> list[tuple[object, ...]]:
        """Every record in file order in the raw shape: declared values..., extra, corrupt,
        raw (for tests and small files; the engine gets columns, see ``csv_frame``)."""
        at = {name: i for i, name in enumerate(self.names)}
        extra = [(at[n], n) for n in self.undeclared]
        out: list[tuple[object, ...]] = []
        bad = iter(self.bad)
        pending = next(bad, None)
        for number, fields in enumerate([*self.good, None]):
            while pending is not None and pending[0] == number:
                out.append((*([None] * len(self.declared)), None, pending[1], pending[2]))
                pending = next(bad, None)
            if fields is not None:
                values = [fields[at[d]] if d in at else None for d in self.declared]
                out.append((*values, {n: fields[i] for i, n in extra} or None, None, None))
        return out

    def drain(self) -> CsvRows:
        """The rows so far, moved into a new object (this one keeps the header)."""
        out = CsvRows(self.declared, self.names, self.good, self.bad, self.header, self.header_note)
        self.good, self.bad = [], []
        return out


def header_note(header: list[str], declared: list[str]) -> str | None:
    """Why ``header`` is probably not the file's header (it names no declared column), or None."""
    if not declared or set(header) & set(declared):
        return None
    shown = ", ".join(repr(h) for h in header[:6]) + (", ..." if len(header) > 6 else "")
    return (
        f"the header ({shown}) matches none of the declared columns "
        f"({', '.join(declared[:6])}{', ...' if len(declared) > 6 else ''})"
    )


def parse_csv(
    lines: Iterable[str], options: CsvOptions, declared: list[str], chunk: int = 100_000
) -> Iterator[CsvRows]:
    """The file's records for the ``declared`` fields, ``chunk`` at a time (at least one,
    possibly empty, :class:`CsvRows`; the header findings are on each)."""
    rows = CsvRows(declared)
    raw_header: list[str] | None = None
    width = -1  # fields of a good record; -1: not known yet
    if not options.header and declared:
        rows.names, width = list(declared), len(declared)
    records = split_records(lines, options)
    if options.header:
        for fields, taken in records:
            raw_header = fields or []
            rows.names = rows.header = unique_header(raw_header)
            width = len(rows.names)
            rows.header_note = (
                f"the header line does not parse as CSV: {_record_text(taken)[:80]!r}"
                if fields is None
                else header_note(rows.names, declared)
            )
            break
    append = rows.good.append
    for fields, taken in records:
        if fields is None:
            rows.add_bad(BROKEN_QUOTING, taken)
        elif len(fields) == width:
            if fields != raw_header:  # else the header again (concatenated exports)
                append(fields)
        elif width < 0:  # no header, nothing declared: _c0, _c1 ...
            rows.names = rows.header = [f"_c{i}" for i in range(len(fields))]
            width = len(fields)
            append(fields)
        else:
            rows.add_bad(f"malformed CSV: expected {width} fields, got {len(fields)}", taken)
        if len(rows.good) >= chunk:
            yield rows.drain()
            append = rows.good.append
    yield rows
