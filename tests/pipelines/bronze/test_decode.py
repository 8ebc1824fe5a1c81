"""Per-file decoding (pure, no engine): content hash, encodings, BOMs, gzip, binary."""

from __future__ import annotations

import codecs
import gzip
import hashlib
from pathlib import Path

from lakehouse.pipelines.bronze.decode import CHUNK, decoded_text, inspect_file, text_lines


def _file(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    return str(path)


def test_plain_utf8_is_read_by_the_engine_and_hashed(tmp_path: Path) -> None:
    data = ("a" * (CHUNK - 1) + "é\n").encode()  # a character split across two chunks
    decoding = inspect_file(_file(tmp_path, data))
    assert decoding is not None
    assert (decoding.sha256, decoding.encoding, decoding.problem) == (
        hashlib.sha256(data).hexdigest(),
        None,
        None,
    )


def test_invalid_utf8_and_nul_bytes_are_problems_with_a_position(tmp_path: Path) -> None:
    latin = inspect_file(_file(tmp_path, b"a,b\nJos\xe9,1\n"))
    assert latin is not None and latin.problem == (
        "not valid UTF-8: byte 0xe9 at byte 7 (line 2); declare the source's `encoding`"
    )
    binary = inspect_file(_file(tmp_path, b"a,b\n\x00\x01"))
    assert binary is not None and str(binary.problem).startswith(
        "binary content: NUL byte at byte 4 (line 2)"
    )
    assert inspect_file(str(tmp_path / "gone.csv")) is None  # vanished


def test_boms_declared_encodings_and_gzip_are_decoded_by_the_driver(tmp_path: Path) -> None:
    text = "id\r\nZoë\rÜnal\n"
    cases = [
        (text.encode("utf-16"), "utf-8", "utf-16"),
        (text.encode("latin-1"), "latin-1", "iso8859-1"),
        (gzip.compress(text.encode()), "utf-8", "gzip+utf-8"),
    ]
    for data, declared, label in cases:
        path = _file(tmp_path, data)
        decoding = inspect_file(path, declared)
        assert decoding is not None and decoding.problem is None and decoding.label == label
        assert text_lines(decoded_text(path, decoding) or "") == ["id", "Zoë", "Ünal"]
    bom = inspect_file(_file(tmp_path, codecs.BOM_UTF8 + b"id\n"))
    assert bom is not None and (bom.bom, bom.encoding) == (True, None)
    broken = inspect_file(_file(tmp_path, gzip.compress(b"id\n")[:12]))
    assert broken is not None and broken.problem == "broken gzip stream: truncated"
