"""Describe existing data files as ``files`` sources: format, CSV dialect and column names.

Used by ``lakehouse init --from PATH``. Fast and engine-free: the standard library's
:class:`csv.Sniffer` for the dialect and header, pyarrow for the column names of JSON and
Parquet files. Column types are not guessed here: the first ingest infers them
(:mod:`lakehouse.pipelines.bronze.infer`, the one inference).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lakehouse.core.errors import LakehouseError

# extension -> (source format, fixed delimiter)
FORMATS: dict[str, tuple[str, str | None]] = {
    ".csv": ("csv", None),
    ".tsv": ("csv", "\t"),
    ".jsonl": ("jsonl", None),
    ".ndjson": ("jsonl", None),
    ".json": ("json", None),
    ".parquet": ("parquet", None),
}
SAMPLE_BYTES = 64 * 1024
SAMPLE_ROWS = 1000
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SniffError(LakehouseError):
    """The files cannot be described as a source (the message says which and why)."""


@dataclass(frozen=True)
class SniffedSource:
    """One kind of file in one directory: what a ``files`` source and its Bronze table need."""

    name: str
    directory: Path
    glob: str
    format: str
    delimiter: str | None
    columns: tuple[str, ...]  # names, in file order
    files: tuple[Path, ...]


def identifier(text: str, fallback: str = "data") -> str:
    """``text`` as a lower-case identifier (``My Orders-2024`` -> ``my_orders_2024``)."""
    name = re.sub(r"[^0-9a-z_]+", "_", text.lower()).strip("_")
    if not name:
        return fallback
    return f"_{name}" if name[0].isdigit() else name


def sniff_sources(path: Path) -> list[SniffedSource]:
    """The sources for ``path``: a file (its directory's files of that kind), or a directory
    (its files, one source per extension, and each subdirectory's likewise)."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise SniffError(f"{path}: no such file or directory")
    if path.is_file():
        ext = path.suffix.lower()
        if ext not in FORMATS:
            raise SniffError(f"{path}: unknown file type {ext or '(none)'}; {_known()}")
        groups = {(path.parent, ext): _data_files(path.parent, ext)}
    else:
        groups = _groups(path)
        if not groups:
            raise SniffError(f"{path}: no data files ({_known()})")
    sources = [_sniff_group(directory, ext, files) for (directory, ext), files in groups.items()]
    return _unique_names(sources)


def _known() -> str:
    return "expected " + ", ".join(sorted(FORMATS))


def _data_files(directory: Path, ext: str) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() == ext and not p.name.startswith(".")
    )


def _groups(root: Path) -> dict[tuple[Path, str], list[Path]]:
    """(directory, extension) -> files, for ``root`` and its direct subdirectories."""
    groups: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for directory in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if directory.name.startswith(".") and directory != root:
            continue
        for file in sorted(directory.iterdir()):
            ext = file.suffix.lower()
            if file.is_file() and ext in FORMATS and not file.name.startswith("."):
                groups[(directory, ext)].append(file)
    return dict(groups)


def _unique_names(sources: list[SniffedSource]) -> list[SniffedSource]:
    """Source names from the directories; the extension (then a number) is appended where a
    name repeats."""
    counts = Counter(source.name for source in sources)
    taken: set[str] = set()
    out = []
    for source in sources:
        name = source.name
        if counts[name] > 1:
            name = identifier(f"{name}_{source.glob.removeprefix('*.')}")
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        out.append(replace(source, name=name))
    return out


def _sniff_group(directory: Path, ext: str, files: list[Path]) -> SniffedSource:
    fmt, fixed_delimiter = FORMATS[ext]
    delimiter: str | None = None
    if fmt == "csv":
        shapes = {file: _csv_shape(file, fixed_delimiter) for file in files}
        distinct = {shape for shape in shapes.values()}
        if len(distinct) > 1:
            names = ", ".join(f.name for f in files[:4])
            raise SniffError(
                f"{directory}: the {ext} files ({names}) differ in delimiter or header; "
                "put each kind of file in a directory of its own"
            )
        delimiter, header = distinct.pop()
        columns = list(header)
    else:
        fmt, columns = _arrow_columns(files[0], fmt)
    _check_names(files[0], columns)
    return SniffedSource(
        name=identifier(directory.name),
        directory=directory,
        glob=f"*{ext}",
        format=fmt,
        delimiter=delimiter,
        columns=tuple(columns),
        files=tuple(files),
    )


def _check_names(file: Path, names: list[str]) -> None:
    bad = [n for n in names if not _IDENTIFIER.match(n)]
    if bad:
        raise SniffError(
            f"{file}: column name {bad[0]!r} is not an identifier (letters, digits, _); "
            "rename it in the files"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SniffError(f"{file}: column {dupes[0]!r} appears twice")


def _head_text(file: Path) -> str:
    """The file's first bytes as text (UTF-8, BOM dropped; Latin-1 when not UTF-8)."""
    with file.open("rb") as f:
        data = f.read(SAMPLE_BYTES)
    if b"\n" in data[:-1] and len(data) == SAMPLE_BYTES:
        data = data[: data.rindex(b"\n") + 1]  # whole lines only
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _csv_shape(file: Path, fixed_delimiter: str | None) -> tuple[str, tuple[str, ...]]:
    """(delimiter, header names) of a CSV file; refused without a header line."""
    text = _head_text(file)
    if not text.strip():
        raise SniffError(f"{file}: empty file")
    sniffer = csv.Sniffer()
    delimiter = fixed_delimiter
    if delimiter is None:
        try:
            delimiter = sniffer.sniff(text, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    first = [cell.strip() for cell in rows[0]] if rows else []
    if not _looks_like_header(sniffer, text, delimiter, first):
        raise SniffError(
            f"{file}: the first line does not look like a header; Bronze ingestion needs "
            "one (column names, delimited like the data)"
        )
    return delimiter, tuple(first)


def _looks_like_header(sniffer: csv.Sniffer, text: str, delimiter: str, first: list[str]) -> bool:
    if not first or any(not cell for cell in first) or len(set(first)) != len(first):
        return False
    try:
        if sniffer.has_header(text):
            return True
    except csv.Error:
        pass
    # all-text files fool has_header: names that are no numbers and no dates still pass
    return all(_IDENTIFIER.match(cell) for cell in first)


def _arrow_columns(file: Path, fmt: str) -> tuple[str, list[str]]:
    """(format, column names) of a JSON or Parquet file; a ``.json`` file of JSON lines is jsonl."""
    try:
        schema = _arrow_schema(file, fmt)
    except SniffError:
        raise
    except Exception as exc:
        if fmt == "json":
            try:
                return _arrow_columns(file, "jsonl")
            except SniffError:
                pass
        raise SniffError(f"{file}: cannot read it as {fmt}: {exc}".splitlines()[0]) from None
    return fmt, list(schema.names)


def _arrow_schema(file: Path, fmt: str) -> Any:
    import pyarrow as pa

    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(file)
    if fmt == "jsonl":
        import pyarrow.json as pj

        return pj.read_json(io.BytesIO(_head_text(file).encode("utf-8"))).schema
    document: Any = json.loads(file.read_text(encoding="utf-8-sig"))
    items = document if isinstance(document, list) else [document]
    records = [item for item in items[:SAMPLE_ROWS] if isinstance(item, dict)]
    if not records:
        raise SniffError(f"{file}: no JSON objects to take columns from")
    return pa.Table.from_pylist(records).schema
