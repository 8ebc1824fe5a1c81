"""The fast path for CSV: a *plain* file read by the engine's own CSV reader.

The driver's text parse (:mod:`lakehouse.transforms.csv_text`) is the definition of what a
CSV file lands as. A file the engine would split the same way is read by the engine instead
(several times faster), after one cheap pass over its bytes in the driver proves it is plain:

* no quote character (so no quoted delimiters, no fields spanning lines) and no escape
  character anywhere;
* every line ends in ``\\n`` or ``\\r\\n`` (no lone ``\\r``), no line starts with the
  ``comment`` character, no line repeats the header line (the text parse drops those);
* every line, the last one included, has exactly the header's number of delimiters — so no
  blank line, no ragged record, nothing for any reader to pad, drop or fail on;
* no line is longer than Python's csv field limit (the text parse makes such a field a
  corrupt record);
* at least two columns, at least one data line, unique column names; no ``skip_rows``; the
  file is UTF-8 read by the engine (no driver decoding), a BOM only before a header line;
  its path has no characters a reader would take as a glob.

Every other file takes the text path, with the reason logged. A plain file is read with an
all-string schema (positional, the header line skipped, ``FAILFAST``) and put into the raw
shape exactly as the text parse would: an empty field is ``""`` (readers make it NULL; in a
plain file nothing else can be NULL), undeclared fields in ``_extra`` in header order,
``_corrupt``/``_raw`` NULL. Typing and rescue stay in
:func:`~lakehouse.transforms.parse.typed_records`, for both paths. Measured on pysail 0.7.2
and JVM Spark 4.0: both keep whitespace and ``null``/``NaN``/``\\N`` text as it is, skip
the header line by position, honour ``quote``/``sep``, and fail the whole read on a ragged
line in FAILFAST mode, at the first action (which is why the driver checks field counts: a
failure there would surface in the commit, not per file).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse.config.sources import CsvOptions
from lakehouse.pipelines.bronze.decode import CHUNK, filesystem_of
from lakehouse.transforms.csv_text import header_note, unique_header
from lakehouse.transforms.parse import EXTRA

BLOCK = 16 * CHUNK  # bytes scanned at once
_ENGINE_SAFE_PATH = re.compile(r"[A-Za-z0-9_./=@-]+")  # nothing a reader takes as a glob
_MAX_COLUMNS = 20_000  # below JVM Spark's CSV maxColumns (20480)


@dataclass(frozen=True)
class PlainCsv:
    """A file the engine reads as the text parse would: its columns and header findings."""

    names: list[str]  # the file's columns, in order (the header's, or the declared ones)
    header_note: str | None = None
    lines: int = 0  # data lines


def _blocks(path: str) -> Iterator[bytes]:
    fs, inner, _ = filesystem_of(path)
    with fs.open_input_stream(inner) as stream:
        while block := stream.read(BLOCK):
            yield bytes(block)


def _has_line(block: bytes, line: bytes) -> bool:
    """Whether ``block`` (whole lines) has a line equal to ``line`` (ending ``\\n``/``\\r\\n``)."""
    for end in (b"\n", b"\r\n"):
        needle = line + end
        at = block.find(needle)
        while at >= 0:
            if at == 0 or block[at - 1] == 10:
                return True
            at = block.find(needle, at + 1)
    return False


class _Scan:
    """The per-block checks of a plain file (blocks of whole lines, in file order)."""

    def __init__(self, options: CsvOptions, names: list[str], header: bytes | None) -> None:
        self.delimiter = ord(options.delimiter)
        self.forbidden = [options.quote.encode()]
        if options.escape is not None and options.escape != options.quote:
            self.forbidden.append(options.escape.encode())
        self.comment = options.comment.encode() if options.comment else None
        self.names = names
        self.width = len(names)
        self.header = header
        self.limit = csv.field_size_limit()
        self.lines = 0

    def problem(self, block: bytes) -> str | None:
        """Why ``block`` is not plain, else None (``block`` ends with a line break or is the
        file's last line)."""
        for char in self.forbidden:
            if char in block:
                return f"has the character {char.decode()!r} (quote or escape)"
        if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
            return "has a carriage return that does not end a line"
        if self.comment is not None and (
            block.startswith(self.comment) or b"\n" + self.comment in block
        ):
            return "has comment lines"
        if self.header is not None and _has_line(block, self.header):
            return "repeats its header line"
        if not block.endswith(b"\n"):  # the file's last line
            block += b"\n"
        # Separators (delimiters and line feeds) in groups of the header's width, each group
        # ending in a line feed, and no other line feed: every line has width - 1 delimiters.
        data = np.frombuffer(block, np.uint8)
        line_feeds = data == 10
        separators = np.flatnonzero(line_feeds | (data == self.delimiter))
        ends = separators[self.width - 1 :: self.width]
        if (
            len(separators) % self.width
            or not bool(line_feeds[ends].all())
            or int(np.count_nonzero(line_feeds)) != len(ends)
        ):
            return "has blank lines or lines with a different number of fields"
        if int(np.diff(ends, prepend=-1).max()) - 1 > self.limit:
            return f"has a line over {self.limit} bytes"
        self.lines += len(ends)
        return None


def _header(first: bytes, options: CsvOptions, declared: list[str]) -> tuple[list[str], bytes]:
    """The file's columns and the rest of the first block after the header line (if any)."""
    if not options.header:
        return list(declared), first
    line, _, rest = first.partition(b"\n")
    text = line.decode("utf-8-sig").removesuffix("\r")
    dialect = {"delimiter": options.delimiter, "quotechar": options.quote, "strict": True}
    fields = next(csv.reader([text], **dialect), [])  # type: ignore[arg-type]
    return unique_header(fields), rest


def _options_problem(options: CsvOptions, declared: list[str], *, bom: bool) -> str | None:
    """Why no file read with these options is plain, else None."""
    if options.skip_rows:
        return "skip_rows is set"
    if not options.header and (bom or not declared):
        return "no header, and a BOM or no declared columns"
    chars = (options.delimiter, options.quote, options.escape or "", options.comment or "")
    if not "".join(chars).isascii() or options.delimiter in "\r\n":
        return "a non-ASCII (or line break) delimiter, quote, escape or comment character"
    return None


def plain_csv(
    blocks: Iterable[bytes], options: CsvOptions, declared: list[str], *, bom: bool
) -> PlainCsv | str:
    """The file's layout if it is plain (see the module docstring), else why it is not.

    ``blocks``: the file's bytes in order; ``bom``: it starts with a UTF-8 BOM.
    """
    if problem := _options_problem(options, declared, bom=bom):
        return problem
    pending = b""
    scan: _Scan | None = None
    for block in blocks:
        data = pending + block
        if scan is None:
            if b"\n" not in data and len(data) < BLOCK:
                pending = data
                continue
            found = _first_scan(data, options, declared, bom=bom)
            if isinstance(found, str):
                return found
            scan, data = found
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if len(pending) > scan.limit:
            return f"has a line over {scan.limit} bytes"
        if cut and (problem := scan.problem(data[:cut])):
            return problem
    if scan is None:
        return "a single line, or none"
    return _last_line(scan, pending, options, declared)


def _last_line(
    scan: _Scan, pending: bytes, options: CsvOptions, declared: list[str]
) -> PlainCsv | str:
    """The layout once the file's last line (``pending``, without a line break) is checked."""
    if pending and (problem := scan.problem(pending)):
        return problem
    if not scan.lines:
        return "no data lines"
    names = scan.names
    return PlainCsv(names, header_note(names, declared) if options.header else None, scan.lines)


def _first_scan(
    first: bytes, options: CsvOptions, declared: list[str], *, bom: bool
) -> tuple[_Scan, bytes] | str:
    """The scan set up from the file's first bytes (its header line checked like the data),
    and the bytes after the header line; or why the file is not plain."""
    if options.header and b"\n" not in first:
        return "a header line longer than a block"
    try:
        names, rest = _header(first, options, declared)
    except csv.Error:
        return "a header line that does not parse"
    if len(names) < 2 or len(names) > _MAX_COLUMNS or len(set(names)) < len(names):
        return "fewer than two columns, too many, or repeated names"
    if not options.header:
        return _Scan(options, names, None), first
    line = first[: len(first) - len(rest)]
    if bom:
        line = line.removeprefix(b"\xef\xbb\xbf")
    scan = _Scan(options, names, None)
    if problem := scan.problem(line):
        return f"header line: {problem}"
    scan.lines = 0
    scan.header = line.removesuffix(b"\n").removesuffix(b"\r")
    return scan, rest


def engine_readable(path: str) -> bool:
    """Whether the engine reads ``path`` as this one file (no glob or URI characters)."""
    bare = path.split("://", 1)[1] if "://" in path else path
    return bool(_ENGINE_SAFE_PATH.fullmatch(bare))


def plain_csv_file(
    path: str, options: CsvOptions, declared: list[str], *, bom: bool
) -> PlainCsv | str:
    """:func:`plain_csv` of a landed file (read in blocks); why not if it vanished."""
    if not engine_readable(path):
        return "a path the engine would read as a pattern"
    try:
        return plain_csv(_blocks(path), options, declared, bom=bom)
    except FileNotFoundError:
        return "vanished"


def native_csv_frame(
    spark: SparkSession, path: str, options: CsvOptions, plain: PlainCsv, declared: list[str]
) -> DataFrame:
    """A plain CSV file read by the engine, in the raw Bronze shape of the text parse."""
    schema = T.StructType(
        [T.StructField(f"_c{i}", T.StringType()) for i in range(len(plain.names))]
    )
    rows = (
        spark.read.schema(schema)
        .options(
            header=options.header,
            sep=options.delimiter,
            quote=options.quote,
            escape=options.quote,
            mode="FAILFAST",
        )
        .csv(path)
    )
    at = {name: F.coalesce(F.col(f"_c{i}"), F.lit("")) for i, name in enumerate(plain.names)}
    values = [at[d].alias(d) if d in at else F.lit(None).cast("string").alias(d) for d in declared]
    known = set(declared)
    undeclared = [n for n in plain.names if n not in known]
    extra = (
        F.create_map(*[item for n in undeclared for item in (F.lit(n), at[n])])
        if undeclared
        else F.lit(None).cast("map<string,string>")
    )
    nothing = F.lit(None).cast("string")
    return rows.select(
        *values, extra.alias(EXTRA), nothing.alias("_corrupt"), nothing.alias("_raw")
    )
