"""Column masks: one rule per kind, rendered for Spark reads and for the SQL endpoint's DuckDB.

``hash`` is a keyed hash, HMAC-SHA256 (RFC 2104) under the catalog's mask key, as lowercase
hex. An unkeyed SHA-256 would let anyone who can guess candidate values (emails, phone
numbers, customer ids) hash them and join: a dictionary of 1,000 guessed emails recovered
every demo email that way. With a secret key the guesses hash to other values. Equal inputs
still hash equally under one key, so joins on a hashed column keep working.

Neither Spark SQL (Sail or JVM) nor DuckDB has an HMAC function, so the mask is built from
their SHA-256 over binary input with RFC 2104's construction: with the key padded to the
64-byte SHA-256 block, ``HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m))``. The two padded
keys are computed here and enter the expression as hex literals; both engines hash the
value's UTF-8 bytes. There is no unkeyed hash mask: without a key a ``hash`` mask is
refused (:class:`MaskKeyError`), never weakened to a plain digest.

The key lives outside the YAML, per catalog:

* ``LAKEHOUSE_MASK_KEY`` (environment): 64 or more hex digits (32+ bytes), for deployments
  where several machines must produce the same hashes; else
* ``<data_root>/_secrets/<catalog>.mask_key``: hex, mode 0600 in a 0700 directory, generated
  (32 random bytes) on first use. A key file readable by group or others is refused.

Changing the key changes every hashed value (joins across the change stop matching).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakehouse.core.errors import LakehouseError

ENV_MASK_KEY = "LAKEHOUSE_MASK_KEY"
MIN_KEY_BYTES = 32
BLOCK_BYTES = 64  # SHA-256's block size
_HEX = re.compile(r"^[0-9a-fA-F]+$")


class MaskKeyError(LakehouseError):
    """The catalog's mask key is missing, too short, malformed or readable by others."""


@dataclass(frozen=True)
class MaskKey:
    """The secret behind ``hash`` masks; ``source`` says where it came from (no secret)."""

    secret: bytes = field(repr=False)
    source: str

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise MaskKeyError(
                f"mask key from {self.source} has {len(self.secret)} bytes; "
                f"at least {MIN_KEY_BYTES} are needed"
            )

    def pads(self) -> tuple[str, str]:
        """The key XOR ipad and XOR opad, as hex (RFC 2104 with SHA-256)."""
        key = self.secret
        if len(key) > BLOCK_BYTES:
            key = hashlib.sha256(key).digest()
        key = key.ljust(BLOCK_BYTES, b"\x00")
        inner = bytes(b ^ 0x36 for b in key).hex()
        outer = bytes(b ^ 0x5C for b in key).hex()
        return inner, outer


def _parse_hex(text: str, source: str) -> bytes:
    value = text.strip()
    if not _HEX.match(value) or len(value) % 2:
        raise MaskKeyError(f"mask key from {source} is not hex (e.g. `openssl rand -hex 32`)")
    return bytes.fromhex(value)


def key_file(data_root: Path, catalog: str) -> Path:
    """Where a catalog's generated mask key lives: ``<data_root>/_secrets/<catalog>.mask_key``."""
    return data_root / "_secrets" / f"{catalog}.mask_key"


def load_mask_key(data_root: Path, catalog: str) -> MaskKey:
    """The catalog's mask key: ``$LAKEHOUSE_MASK_KEY``, else its key file (made if absent)."""
    env = os.environ.get(ENV_MASK_KEY)
    if env is not None:
        return MaskKey(_parse_hex(env, f"${ENV_MASK_KEY}"), f"${ENV_MASK_KEY}")
    path = key_file(data_root, catalog)
    if not path.exists():
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MaskKeyError(
            f"{path}: mask key file is readable by others (mode {mode:o}; chmod 600)"
        )
    return MaskKey(_parse_hex(path.read_text(), str(path)), str(path))


def _create_key_file(path: Path) -> None:
    """Write 32 random bytes as hex, mode 0600; a concurrent creator's key wins if first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------ renderings


def spark_mask(column: str, kind: str, key: MaskKey | None) -> Column:
    """The Spark expression for one masked column (NULL stays NULL)."""
    col = F.col(column)
    if kind == "hash":
        inner, outer = _require(key).pads()
        digest = F.sha2(F.concat(F.unhex(F.lit(inner)), col.cast("string").cast("binary")), 256)
        keyed = F.sha2(F.concat(F.unhex(F.lit(outer)), F.unhex(digest)), 256)
        return F.when(col.isNull(), F.lit(None)).otherwise(keyed)
    if kind == "redact":
        return F.when(col.isNull(), F.lit(None)).otherwise(F.lit("***"))
    return F.lit(None)


def duckdb_mask(quoted_column: str, kind: str, key: MaskKey | None) -> str:
    """The DuckDB SQL expression for one masked column (NULL stays NULL), before any cast."""
    col = quoted_column
    if kind == "hash":
        inner, outer = _require(key).pads()
        digest = f"sha256(unhex('{inner}') || encode(CAST({col} AS VARCHAR)))"
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE sha256(unhex('{outer}') || unhex({digest})) END"
    if kind == "redact":
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE '***' END"
    return "NULL"


def _require(key: MaskKey | None) -> MaskKey:
    if key is None:
        raise MaskKeyError(
            "a hash mask needs the catalog's mask key (an unkeyed hash would be reversible "
            f"by guessing); set ${ENV_MASK_KEY} or give the policy the data root's key file"
        )
    return key
