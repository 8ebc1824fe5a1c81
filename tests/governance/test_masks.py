"""Keyed hash masks: the same HMAC-SHA256 in Spark, in DuckDB and in Python; the key's home."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import duckdb
import pytest
from pyspark.sql import SparkSession

from lakehouse.governance.masks import (
    ENV_MASK_KEY,
    MaskKey,
    MaskKeyError,
    duckdb_mask,
    key_file,
    load_mask_key,
    spark_mask,
)

VALUES = [
    "customer1@example.com",
    "",
    "héllo ✓ 日本",
    "a\\x41b'quote\"",  # backslash escapes and quotes stay bytes, not escapes
    "x" * 200,  # longer than the hash block
    None,
]
KEYS = [
    MaskKey(bytes(range(32)), "32 bytes"),
    MaskKey(bytes(range(64)), "one block"),
    MaskKey(bytes(range(100)), "longer than a block (hashed first, as RFC 2104 says)"),
]


def _python(key: MaskKey, value: str | None) -> str | None:
    return (
        None if value is None else hmac.new(key.secret, value.encode(), hashlib.sha256).hexdigest()
    )


@pytest.mark.transform
@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.source)
def test_spark_and_duckdb_hash_masks_equal_python_hmac(spark: SparkSession, key: MaskKey) -> None:
    df = spark.createDataFrame([(i, v) for i, v in enumerate(VALUES)], "i int, v string")
    spark_rows = dict(df.select("i", spark_mask("v", "hash", key).alias("h")).collect())
    db = duckdb.connect()
    db.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    db.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(VALUES)))
    masked = duckdb_mask('"v"', "hash", key)
    duck_rows = dict(db.execute(f"SELECT i, {masked} FROM t").fetchall())
    expected = {i: _python(key, v) for i, v in enumerate(VALUES)}
    assert spark_rows == expected
    assert duck_rows == expected
    assert expected[0] != hashlib.sha256(b"customer1@example.com").hexdigest()


def test_the_key_file_is_made_once_0600_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_MASK_KEY, raising=False)
    first = load_mask_key(tmp_path, "lakehouse")
    path = key_file(tmp_path, "lakehouse")
    assert first.source == str(path) and len(first.secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_mask_key(tmp_path, "lakehouse") == first
    assert load_mask_key(tmp_path, "other") != first  # one key per catalog
    assert first.secret.hex() not in repr(first)
    path.chmod(0o644)
    with pytest.raises(MaskKeyError, match="readable by others"):
        load_mask_key(tmp_path, "lakehouse")


def test_the_environment_key_wins_and_must_be_long_hex(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_MASK_KEY, "ab" * 32)
    key = load_mask_key(tmp_path, "lakehouse")
    assert key.secret == bytes([0xAB]) * 32 and key.source == f"${ENV_MASK_KEY}"
    assert not key_file(tmp_path, "lakehouse").exists()
    for bad, message in (("ab" * 16, "at least 32"), ("not hex!" * 10, "not hex")):
        monkeypatch.setenv(ENV_MASK_KEY, bad)
        with pytest.raises(MaskKeyError, match=message):
            load_mask_key(tmp_path, "lakehouse")


def test_duckdb_hash_mask_without_a_key_is_refused() -> None:
    with pytest.raises(MaskKeyError, match="unkeyed hash"):
        duckdb_mask('"email"', "hash", None)
