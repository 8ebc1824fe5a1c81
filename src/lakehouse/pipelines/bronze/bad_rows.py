"""The bad-rows policy of file sources: a file that is mostly bad is never a silent success.

Before a commit, one aggregation over the commit's files counts per file the rows that are
corrupt (``_corrupt``) and the rows that are *rescued only*: not corrupt, every declared
column NULL and values in ``_rescued_data``, which is what a file whose header is not its
first line gives when the junk line happens to have as many fields as the data. A file whose
bad fraction is above ``bad_rows.max_fraction`` either lands with a warning in the run
summary (``action: warn``, the default) or is kept aside whole and fails the ingest task
(``action: fail``). A header naming none of the declared columns is reported as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

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


def file_health(
    raws: list[tuple[str, DataFrame]], declared: list[tuple[str, str]]
) -> dict[str, tuple[int, int, int, str | None]]:
    """Per batch id: rows, corrupt rows, rescued-only rows and one corrupt reason."""
    if not raws:
        return {}
    tagged = [raw.select("*", F.lit(batch_id).alias("_batch_id")) for batch_id, raw in raws]
    typed = typed_records(reduce(DataFrame.unionByName, tagged), declared, "rescue")
    nulls = [F.col(quote(name)).isNull() for name, _ in declared]
    all_null = reduce(lambda a, b: a & b, nulls) if nulls else F.lit(False)
    rescued_only = F.col("_corrupt").isNull() & all_null & F.col("_rescued_data").isNotNull()
    found = (
        typed.groupBy("_batch_id")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("_corrupt").alias("corrupt"),
            F.count(F.when(rescued_only, F.lit(1))).alias("rescued"),
            F.min("_corrupt").alias("example"),
        )
        .collect()
    )
    return {
        str(r["_batch_id"]): (int(r["rows"]), int(r["corrupt"]), int(r["rescued"]), r["example"])
        for r in found
    }


def over_threshold(
    source: FileSource,
    files: list[tuple[str, str, DataFrame, str | None]],
    declared: list[tuple[str, str]],
) -> list[BadFile]:
    """The files (path, batch id, raw records, reader's note) whose bad rows are over the
    source's threshold: corrupt plus rescued-only rows above ``max_fraction`` of a file's
    (reported as the kind there is more of)."""
    health = file_health([(batch_id, raw) for _, batch_id, raw, _ in files], declared)
    limit = source.bad_rows.max_fraction
    bad: list[BadFile] = []
    for path, batch_id, _, note in files:
        rows, corrupt, rescued, example = health.get(batch_id, (0, 0, 0, None))
        if rows == 0:
            continue
        if (corrupt + rescued) / rows > limit:
            bad.append(BadFile(path, batch_id, rows, corrupt, rescued, example, note))
    return bad
