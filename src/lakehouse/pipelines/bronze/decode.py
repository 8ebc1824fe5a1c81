"""Per-file decoding of landed text files: identity by content, and what it takes to read them.

One streaming pass over a new file's bytes (in the driver, before the engine reads it) gives
its SHA-256 and a :class:`Decoding`:

* plain UTF-8 (the default ``encoding``), with or without a BOM: the engine reads the file
  itself (the fast path; the pass only hashes and validates, ASCII chunks are not decoded);
* a UTF-16/UTF-32 BOM, a declared non-UTF-8 ``encoding`` or gzip content (magic bytes, not the
  name): the driver decodes the file into lines;
* anything else (invalid UTF-8, NUL bytes of a binary file, a broken gzip stream, text too
  large to decode in the driver): ``problem`` says why, and the file is quarantined whole.

A file that is gone when the pass opens it yields ``None``: it vanished and is not recorded.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

CHUNK = 1 << 20
MAX_DRIVER_DECODED = 256 << 20  # bytes of text the driver decodes for one file
_GZIP_MAGIC = b"\x1f\x8b"
_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the engine's text reader splits on all three
_UNICODE_BOMS = {codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE[:2]}


@dataclass(frozen=True)
class Decoding:
    """How one landed file is read, and its content identity."""

    sha256: str
    encoding: str | None = None  # None: the engine reads it as UTF-8; else the driver decodes
    bom: bool = False  # a UTF-8 BOM the engine's lines keep on the first line
    gzip: bool = False
    problem: str | None = None  # why it cannot be decoded: the file is quarantined whole

    @property
    def label(self) -> str:
        """How the file was read, for messages (``utf-16``, ``gzip+latin-1`` ...)."""
        codec = "utf-8" if self.encoding in (None, "utf-8-sig") else self.encoding
        return f"{'gzip+' if self.gzip else ''}{codec}"


def is_remote(location: str) -> bool:
    """Whether ``location`` is a URI of a non-local filesystem (``s3://``, ``gs://`` ...)."""
    return bool(_URI.match(location)) and not location.startswith("file://")


def filesystem_of(location: str) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, path inside it, prefix that turns such a path back into a URI) of a
    landing location or a landed file: a URI's filesystem, else the local one (resolved)."""
    if is_remote(location):
        fs, inner = pafs.FileSystem.from_uri(location)
        scheme = location.split("://", 1)[0]
        return fs, inner, f"{scheme}://"
    local = location.removeprefix("file://")
    return pafs.LocalFileSystem(), str(Path(local).resolve()), ""


def read_file_bytes(path: str) -> bytes | None:
    """The file's bytes, or None when it no longer exists."""
    fs, inner, _ = filesystem_of(path)
    try:
        with fs.open_input_stream(inner) as stream:
            return bytes(stream.read())
    except FileNotFoundError:
        return None


def codec_name(encoding: str) -> str:
    """The canonical name of a codec (``latin-1`` -> ``iso8859-1``); LookupError if unknown."""
    return codecs.lookup(encoding).name


def _utf8_problem(data: bytes) -> tuple[int, int, str] | None:
    """(bytes left incomplete at the end, offset, kind) of the first problem in a chunk of
    supposed UTF-8; kind ``""`` (only an incomplete character at the end), ``nul``, ``utf-8``."""
    nul = data.find(b"\x00")
    if nul >= 0:
        return 0, nul, "nul"
    if data.isascii():
        return None
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and len(data) - exc.start < 4:
            return len(data) - exc.start, exc.start, ""  # a character split across chunks
        return 0, exc.start, "utf-8"


def _scan_utf8(
    first: bytes, stream: pafs.NativeFile, update: Callable[[bytes], None]
) -> tuple[int, str] | None:
    """Hash the rest of ``stream`` and validate everything as UTF-8: the first problem's
    (offset, kind), kind ``nul``, ``utf-8`` or ``truncated``."""
    pending, offset, chunk = b"", 0, first
    problem: tuple[int, str] | None = None
    while chunk:
        if problem is None:
            data = pending + chunk
            found = _utf8_problem(data)
            pending = b""
            if found is not None:
                keep, at, kind = found
                if kind:
                    problem = (offset + at, kind)
                else:
                    pending = data[len(data) - keep :]
                    data = data[: len(data) - keep]
            offset += len(data)
        chunk = stream.read(CHUNK)
        update(chunk)
    if problem is None and pending:
        problem = (offset, "truncated")
    return problem


def _utf8_message(path: str, offset: int, kind: str) -> str:
    """The problem at ``offset`` for people: the byte, its line (the prefix is re-read)."""
    fs, inner, _ = filesystem_of(path)
    line, read, last = 1, 0, b""
    with fs.open_input_stream(inner) as stream:
        while read <= offset and (chunk := stream.read(min(CHUNK, offset + 1 - read))):
            line += chunk.count(b"\n", 0, offset - read)
            read, last = read + len(chunk), chunk
    if kind == "nul":
        return (
            f"binary content: NUL byte at byte {offset} (line {line}); not UTF-8 text "
            "(declare the source's `encoding` if it is UTF-16 without a BOM)"
        )
    if kind == "truncated":
        return f"not valid UTF-8: truncated character at byte {offset} (end of file)"
    return (
        f"not valid UTF-8: byte 0x{last[-1]:02x} at byte {offset} (line {line}); "
        "declare the source's `encoding`"
    )


def _decoded_problem(content: bytes, encoding: str) -> str | None:
    if len(content) > MAX_DRIVER_DECODED:
        return (
            f"{len(content)} bytes of {encoding} text: more than the driver decodes "
            f"({MAX_DRIVER_DECODED} bytes); convert the file to UTF-8"
        )
    try:
        content.decode(encoding)
    except UnicodeDecodeError as exc:
        return f"not valid {encoding}: {exc.reason} at byte {exc.start}"
    return None


def _gunzip(raw: bytes) -> tuple[bytes | None, str | None]:
    inflate = zlib.decompressobj(wbits=31)
    try:
        content = inflate.decompress(raw, MAX_DRIVER_DECODED + 1)
    except zlib.error as exc:
        return None, f"broken gzip stream: {exc}"
    if len(content) > MAX_DRIVER_DECODED:
        return None, f"gzip content over {MAX_DRIVER_DECODED} bytes: too large to decode"
    if not inflate.eof:
        return None, "broken gzip stream: truncated"
    return content, None


def _classify(content: bytes, declared: str, digest: str, *, gz: bool) -> Decoding:
    """The decoding of in-memory content (a gzip member's text)."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            encoding = codec
            break
    else:
        encoding = declared
    if not encoding.startswith(("utf-16", "utf-32")) and b"\x00" in content:
        at = content.find(b"\x00")
        line = content.count(b"\n", 0, at) + 1
        binary = f"binary content: NUL byte at byte {at} (line {line}); not {encoding} text"
        return Decoding(digest, gzip=gz, problem=binary)
    return Decoding(digest, encoding, gzip=gz, problem=_decoded_problem(content, encoding))


def inspect_file(path: str, encoding: str = "utf-8", *, text: bool = True) -> Decoding | None:
    """Hash and classify one landed file (``encoding``: the source's declared codec;
    ``text=False``: a binary format, only hashed); None if the file vanished."""
    declared = codec_name(encoding)
    fs, inner, _ = filesystem_of(path)
    digest = hashlib.sha256()
    try:
        stream = fs.open_input_stream(inner)
    except FileNotFoundError:
        return None
    with stream:
        first = stream.read(CHUNK)
        digest.update(first)
        if not text:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
            return Decoding(digest.hexdigest())
        if first.startswith(_GZIP_MAGIC) or declared != "utf-8" or first[:2] in _UNICODE_BOMS:
            raw = first + stream.read(MAX_DRIVER_DECODED + 1 - len(first))
            digest.update(raw[len(first) :])
            if len(raw) <= MAX_DRIVER_DECODED:
                return _in_memory(raw, declared, digest.hexdigest())
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
            too_big = f"more than {MAX_DRIVER_DECODED} bytes to decode in the driver"
            return Decoding(digest.hexdigest(), problem=f"{too_big}; convert the file to UTF-8")
        found = _scan_utf8(first, stream, digest.update)
    problem = _utf8_message(path, *found) if found else None
    return Decoding(digest.hexdigest(), bom=first.startswith(codecs.BOM_UTF8), problem=problem)


def _in_memory(raw: bytes, declared: str, digest: str) -> Decoding:
    if raw.startswith(_GZIP_MAGIC):
        content, problem = _gunzip(raw)
        if content is None:
            return Decoding(digest, gzip=True, problem=problem)
        return _classify(content, declared, digest, gz=True)
    return _classify(raw, declared, digest, gz=False)


def decoded_text(path: str, decoding: Decoding) -> str | None:
    """The text of a file the driver decodes; None if it vanished since it was inspected."""
    raw = read_file_bytes(path)
    if raw is None:
        return None
    content = _gunzip(raw)[0] if decoding.gzip else raw
    if content is None:
        return None
    codec = decoding.encoding or "utf-8"
    return content.decode("utf-8-sig" if codec == "utf-8" else codec)


def text_lines(text: str) -> list[str]:
    """Lines as the engine's text reader makes them (``\\r\\n``, ``\\r`` and ``\\n`` end a line)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines
