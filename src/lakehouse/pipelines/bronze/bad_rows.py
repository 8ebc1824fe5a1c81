"""The bad-rows policy of file sources: a file that is mostly bad is never a silent success.

One aggregation over a commit's files counts per file the rows that are corrupt
(``_corrupt``) and the rows that are *rescued only*: not corrupt, every declared column NULL
and values in ``_rescued_data``, which is what a file whose header is not its first line
gives when the junk line happens to have as many fields as the data. A file whose
bad fraction is above ``bad_rows.max_fraction`` either lands with a warning in the run
summary (``action: warn``, the default) or is kept aside whole and fails the ingest task
(``action: fail``). A header naming none of the declared columns is reported as well.

``warn`` costs nothing extra: the counts come from the query that already counts the rows
of a commit. ``fail`` must decide before the commit: one more pass over the commit's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import NamedTuple

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.config.sources import FileSource
from lakehouse.io.sql import quote
from lakehouse.transforms.parse import typed_records


@dataclass(frozen=True)
class BadFile:
    """A file over the bad-rows threshold."""

    path: str
    batch_id: str
    rows: int
    corrupt: int
    rescued: int  # not corrupt, every declared column NULL, values in _rescued_data
    example: str | None  # a corrupt record's reason
    note: str | None  # what the reader found (a header naming no declared column)

    @property
    def kind(self) -> str:
        """What most of the bad rows are: ``corrupt`` or ``rescued``."""
        return "corrupt" if self.corrupt >= self.rescued else "rescued"

    def message(self, source: FileSource) -> str:
        """One line: the file, the fraction, what is wrong and the likely fix."""
        found = []
        if self.corrupt:
            example = f", e.g. {self.example}" if self.example else ""
            found.append(f"{self.corrupt} corrupt{example}")
        if self.rescued:
            found.append(
                f"{self.rescued} rescued with every declared column NULL (values in _rescued_data)"
            )
        fraction = (self.corrupt + self.rescued) / self.rows
        parts = [
            f"{self.path}: {fraction:.0%} of {self.rows} rows bad ({'; '.join(found)}), "
            f"over bad_rows.max_fraction {source.bad_rows.max_fraction:g}",
            *([self.note] if self.note else []),
            *([fix] if (fix := likely_fix(source, self.kind)) else []),
        ]
        return "; ".join(parts)


def likely_fix(source: FileSource, kind: str) -> str:
    """What usually makes a file of this format mostly bad, as advice."""
    if source.format == "csv":
        fix = "first line is not the header? set csv.skip_rows"
        if kind == "corrupt":
            return f"{fix}; else check csv.delimiter ({source.csv.delimiter!r}) and csv.quote"
        return f"{fix}, or csv.header: false for a file without one"
    if source.format == "jsonl":
        return "not JSON lines? format: json reads one JSON document or array per file"
    return ""


class Health(NamedTuple):
    """What one batch's rows are like."""

    rows: int
    corrupt: int
    rescued: int  # rows with _rescued_data
    rescued_only: int  # not corrupt, every declared column NULL, values in _rescued_data
    example: str | None  # one corrupt record's reason


def file_health(typed: DataFrame, declared: list[str]) -> dict[str, Health]:
    """Per ``_batch_id`` of typed Bronze records (the table's or about to be appended):
    rows, corrupt rows, rescued rows, rescued-only rows and one corrupt reason."""
    nulls = [F.col(quote(name)).isNull() for name in declared]
    all_null = reduce(lambda a, b: a & b, nulls) if nulls else F.lit(False)
    rescued_only = F.col("_corrupt").isNull() & all_null & F.col("_rescued_data").isNotNull()
    found = (
        typed.groupBy("_batch_id")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("_corrupt").alias("corrupt"),
            F.count("_rescued_data").alias("rescued"),
            F.count(F.when(rescued_only, F.lit(1))).alias("rescued_only"),
            F.min("_corrupt").alias("example"),
        )
        .collect()
    )
    return {
        str(r["_batch_id"]): Health(
            int(r["rows"]),
            int(r["corrupt"]),
            int(r["rescued"]),
            int(r["rescued_only"]),
            r["example"],
        )
        for r in found
    }


def raw_health(
    raws: list[tuple[str, DataFrame]], declared: list[tuple[str, str]], *, csv: bool = False
) -> dict[str, Health]:
    """:func:`file_health` of batches not yet appended (``(batch id, raw records)``), typed
    as the ``rescue`` policy would type them (``csv``: an empty value is NULL)."""
    if not raws:
        return {}
    tagged = [raw.select("*", F.lit(batch_id).alias("_batch_id")) for batch_id, raw in raws]
    raw = reduce(DataFrame.unionByName, tagged)
    typed = typed_records(raw, declared, "rescue", blank_is_null=csv)
    return file_health(typed, [name for name, _ in declared])


def over_threshold(
    source: FileSource, files: list[tuple[str, str, str | None]], health: dict[str, Health]
) -> list[BadFile]:
    """The files (path, batch id, reader's note) whose bad rows are over the source's
    threshold: corrupt plus rescued-only rows above ``max_fraction`` of a file's."""
    limit = source.bad_rows.max_fraction
    bad: list[BadFile] = []
    for path, batch_id, note in files:
        h = health.get(batch_id)
        if h is None or h.rows == 0:
            continue
        if (h.corrupt + h.rescued_only) / h.rows > limit:
            bad.append(BadFile(path, batch_id, h.rows, h.corrupt, h.rescued_only, h.example, note))
    return bad
