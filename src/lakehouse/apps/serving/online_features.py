"""Features looked up by entity key at serving time: an online copy of each feature table.

A model of ``conf/models.yml`` is trained on features read by key from Gold feature tables
(``training_set.features``). Serving reads them the same way, as Databricks Feature Serving
does: a request record may carry only the entity keys of a lookup (its label-side names, for
churn ``customer_id``) and the server fills in that lookup's features from the feature table.

- **Which row.** The latest row per key (by the table's timestamp key), the row batch scoring
  scores (:func:`lakehouse.pipelines.ml.score.latest_rows`), shaped by the same
  :func:`lakehouse.pipelines.ml.train.model_input` as training and batch scoring: a key-only
  request gets the prediction batch scoring wrote for that key.
- **Overrides.** A feature value the record carries (not null) is used instead of the looked-up
  one; a record that gives every feature of a lookup looks nothing up there. A record without
  a lookup's keys must carry that lookup's required features itself (as before lookups).
- **Freshness.** Each table is held in memory at one Delta version (read with delta-rs), and
  :meth:`OnlineFeatures.refresh` reloads a table whose latest version moved, checked on the
  serving app's alias refresh (every ``refresh_seconds``) as the SQL endpoint's mirror does.
  A reload builds the new copy aside and swaps it in one assignment: a request sees the old
  copy or the new one. The version each prediction used is logged (``feature_versions``).
- **Unknown keys.** A record whose keys have no row answers 404, naming every such record
  (its index, keys and table); no record of that request is predicted.

The copy holds the latest row of every key in memory (numbers as float64 arrays), which suits
feature tables of up to a few million keys; larger ones would want a key-value store.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.apps.serving.schemas import InputColumn, utc_now
from lakehouse.config.project import ModelHandle
from lakehouse.core.errors import LakehouseError
from lakehouse.io.delta_arrow import delta_arrow, latest_commit
from lakehouse.pipelines.ml.train import model_input

log = logging.getLogger(__name__)

MAX_LISTED = 10  # records named in an error message


@dataclass(frozen=True)
class FeatureLookupSource:
    """One feature lookup of a model: the table, the request's key names for it (the label
    side), the table's key columns in the same order, its timestamp key and the features."""

    table: str  # catalog.schema.table
    location: str
    request_keys: tuple[str, ...]
    table_keys: tuple[str, ...]
    timestamp_key: str | None
    features: tuple[str, ...]


def lookup_sources(model: ModelHandle) -> tuple[FeatureLookupSource, ...]:
    """The feature lookups of ``model``'s training set, in its order."""
    return tuple(
        FeatureLookupSource(
            table=f.source.table.full_name,
            location=f.source.table.location,
            request_keys=tuple(f.label_keys),
            table_keys=tuple(f.source.keys),
            timestamp_key=f.source.timestamp_key,
            features=tuple(f.spec.features),
        )
        for f in model.features
    )


@dataclass(frozen=True)
class OnlineTable:
    """The latest row per key of one feature table at one Delta version, shaped as the model
    input: ``index`` maps the key values (as text) to a row of ``columns``."""

    version: int
    index: dict[tuple[str, ...], int]
    columns: dict[str, np.ndarray]
    loaded_at: str

    def row(self, key: tuple[str, ...], features: Sequence[str]) -> dict[str, Any] | None:
        """The features of ``key`` (missing values None), or None for an unknown key."""
        position = self.index.get(key)
        if position is None:
            return None
        return {name: _value(self.columns[name][position]) for name in features}


def _value(value: Any) -> Any:
    """A stored value as a record value: numbers as floats, text as str, missing as None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return float(value) if isinstance(value, np.floating) else value


def online_table(
    arrow: pa.Table, source: FeatureLookupSource, categorical: Sequence[str], version: int
) -> OnlineTable:
    """The online copy of a feature table read as ``arrow``: its latest row per key.

    Keys are compared as text, cast by Arrow (an integer key ``7`` is ``"7"``, also in a
    column with NULLs); a row with a NULL key is never looked up.
    """
    valid = [pc.is_valid(arrow[k]) for k in source.table_keys]
    arrow = arrow.filter(functools.reduce(pc.and_, valid))
    frame = arrow.to_pandas()
    key_columns = [f"__key_{i}" for i in range(len(source.table_keys))]
    for name, key in zip(key_columns, source.table_keys, strict=True):
        frame[name] = arrow[key].cast(pa.string()).to_numpy(zero_copy_only=False)
    if source.timestamp_key is not None:  # stable: of equal timestamps the last read wins
        frame = frame.sort_values(source.timestamp_key, kind="stable", na_position="first")
    frame = frame.drop_duplicates(key_columns, keep="last").reset_index(drop=True)
    shaped = model_input(frame, list(source.features), list(categorical))
    keys = zip(*(frame[k] for k in key_columns), strict=True)
    return OnlineTable(
        version=version,
        index={tuple(k): i for i, k in enumerate(keys)},
        columns={c: shaped[c].to_numpy() for c in source.features},
        loaded_at=utc_now(),
    )


class UnknownKeysError(LakehouseError):
    """Records whose keys have no row in a feature table (answered 404)."""

    def __init__(self, unknown: list[dict[str, Any]]) -> None:
        self.unknown = unknown
        listed = "; ".join(
            f"record {u['record_index']}: "
            + ", ".join(f"{k}={v!r}" for k, v in u["keys"].items())
            + f" not in {u['table']}"
            for u in unknown[:MAX_LISTED]
        )
        more = f" ({len(unknown) - MAX_LISTED} more)" if len(unknown) > MAX_LISTED else ""
        super().__init__(f"no feature row for {len(unknown)} record(s): {listed}{more}")


class MissingFeaturesError(LakehouseError):
    """Records that carry neither a required feature nor the keys to look it up (answered
    as invalid input); ``problems`` has one entry per record and feature."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        listed = "; ".join(f"record {p['record_index']}: {p['msg']}" for p in problems[:MAX_LISTED])
        more = f" ({len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        super().__init__(listed + more)


class FeaturesUnavailableError(LakehouseError):
    """A feature table the request needs could not be loaded (answered 503)."""


@dataclass(frozen=True)
class CompletedRecords:
    """Records with their looked-up features filled in, and per record the Delta version of
    each feature table it read (``{}`` for a record that looked nothing up)."""

    rows: list[dict[str, Any]]
    versions: list[dict[str, int]]


@dataclass
class OnlineFeatures:
    """The online copies of one served model's feature tables (see the module docstring).

    ``columns``: the model's input columns (their kinds say which features are categorical).
    """

    sources: tuple[FeatureLookupSource, ...]
    columns: tuple[InputColumn, ...]
    tables: dict[str, OnlineTable] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        inputs = {c.name for c in self.columns}
        self.sources = tuple(
            replace(s, features=tuple(f for f in s.features if f in inputs)) for s in self.sources
        )

    @property
    def keys(self) -> tuple[str, ...]:
        """Every request key name a lookup uses, without repeats."""
        return tuple(dict.fromkeys(k for s in self.sources for k in s.request_keys))

    def refresh(self) -> list[str]:
        """Reload every feature table whose latest Delta version differs from the loaded one;
        the names of the tables reloaded. A table that cannot be read keeps its loaded copy
        (the error is reported by :meth:`status`)."""
        from deltalake import DeltaTable

        changed = []
        with self._lock:
            tables = dict(self.tables)
            for source in self.sources:
                loaded = tables.get(source.table)
                if loaded is not None and latest_commit(source.location) == loaded.version:
                    continue
                try:
                    delta = DeltaTable(source.location)
                    version = int(delta.version())
                    if loaded is not None and loaded.version == version:
                        continue
                    tables[source.table] = self._load(source, delta, version)
                except Exception as exc:  # keep serving the loaded copy; report it
                    self.errors[source.table] = f"{type(exc).__name__}: {exc}"
                    log.warning("feature table %s not loaded: %s", source.table, exc)
                    continue
                self.errors.pop(source.table, None)
                changed.append(source.table)
            self.tables = tables  # one assignment: requests see the old or the new copies
        if changed:
            log.info("features: %s", ", ".join(f"{n}@{tables[n].version}" for n in changed))
        return changed

    def _load(self, source: FeatureLookupSource, delta: Any, version: int) -> OnlineTable:
        ts = [source.timestamp_key] if source.timestamp_key else []
        names = list(dict.fromkeys([*source.table_keys, *ts, *source.features]))
        arrow = delta_arrow(delta)
        table = (
            arrow.select(names) if isinstance(arrow, pa.Table) else arrow.to_table(columns=names)
        )
        categorical = [c.name for c in self.columns if c.kind == "string"]
        return online_table(table, source, categorical, version)

    def complete(
        self, rows: list[dict[str, Any]], row_keys: list[dict[str, str]]
    ) -> CompletedRecords:
        """``rows`` with each lookup's features filled in where the record carries that
        lookup's keys (a value the record gives wins); raises :class:`UnknownKeysError`,
        :class:`MissingFeaturesError` or :class:`FeaturesUnavailableError`."""
        tables = self.tables
        out: list[dict[str, Any]] = []
        versions: list[dict[str, int]] = []
        unknown: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        for i, (row, carried) in enumerate(zip(rows, row_keys, strict=True)):
            filled, used = dict(row), {}
            for source in self.sources:
                if all(row.get(f) is not None for f in source.features):
                    continue  # nothing to look up: the record gives every feature
                if not all(k in carried for k in source.request_keys):
                    problems.extend(self._missing(i, row, source))
                    continue
                table = self._loaded(tables, source)
                keys = {k: carried[k] for k in source.request_keys}
                found = table.row(tuple(keys.values()), source.features)
                if found is None:
                    unknown.append({"record_index": i, "keys": keys, "table": source.table})
                    continue
                filled.update({n: v for n, v in found.items() if filled.get(n) is None})
                used[source.table] = table.version
            out.append(filled)
            versions.append(used)
        if unknown:
            raise UnknownKeysError(unknown)
        if problems:
            raise MissingFeaturesError(problems)
        return CompletedRecords(out, versions)

    def _missing(
        self, index: int, row: dict[str, Any], source: FeatureLookupSource
    ) -> list[dict[str, Any]]:
        """The required features of ``source`` a record without its keys leaves out."""
        required = {c.name for c in self.columns if c.required}
        keys = ", ".join(source.request_keys)
        return [
            {
                "record_index": index,
                "feature": f,
                "msg": f"{f!r} is required: give it, or {keys} to look it up in {source.table}",
            }
            for f in source.features
            if f in required and row.get(f) is None
        ]

    def _loaded(self, tables: dict[str, OnlineTable], source: FeatureLookupSource) -> OnlineTable:
        """The loaded copy of ``source``'s table, or :class:`FeaturesUnavailableError`."""
        table = tables.get(source.table)
        if table is None:
            why = self.errors.get(source.table, "not loaded yet")
            raise FeaturesUnavailableError(f"feature table {source.table} is not available: {why}")
        return table

    def status(self) -> dict[str, Any]:
        """Per feature table: the loaded version, key count and load time, or the error."""
        tables = self.tables
        return {
            s.table: {
                "keys": list(s.request_keys),
                "features": list(s.features),
                "version": tables[s.table].version if s.table in tables else None,
                "rows": len(tables[s.table].index) if s.table in tables else 0,
                "loaded_at": tables[s.table].loaded_at if s.table in tables else None,
                "error": self.errors.get(s.table),
            }
            for s in self.sources
        }
