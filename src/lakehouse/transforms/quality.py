"""Check DataFrames against data-quality rules: compiled Spark SQL, then great-expectations.

``flag_violations`` and ``evaluate_rules`` identify and count failing rows with the rules
compiled to Spark SQL (one projection, one aggregate; Sail, Spark Connect and JVM Spark).
``validate_with_gx`` runs great-expectations 1.x on the same DataFrame for its results and
Data Docs, and ``cross_check`` fails when the two disagree.

Why both: GX cannot identify failing rows portably (its ``unexpected_index_query`` is not
valid SQL on Spark Connect, and it runs one query per metric), so rows are flagged by the
compiled SQL (``config.rules.row_condition``); GX validates the same data for its results
and Data Docs, and the cross-check (``QualityCrossCheckError``) keeps the compiled SQL from
drifting from GX's semantics unnoticed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse.config.rules import (
    SQL,
    TABLE_LEVEL,
    Rule,
    evaluated_condition,
    referenced_columns,
    row_condition,
    row_count_passes,
    to_gx_expectation,
)
from lakehouse.core.errors import LakehouseError

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.data_context.store.store import DataDocsSiteConfigTypedDict
    from great_expectations.datasource.fluent import SparkDatasource

VIOLATIONS = "_violations"
DATA_DOCS_SITE = "lakehouse"
GX_PROJECT_DIR = ".gx"
_GX_DATASOURCE = "lakehouse_spark"
_GX_BATCH = "whole_dataframe"
# UnexpectedRowsExpectation registers the batch under this temp view name (GX 1.24).
_GX_TEMP_VIEW = "tmp_view"


class QualityError(LakehouseError):
    """Rules cannot be evaluated on a DataFrame (unknown column, duplicate name, GX error)."""


class QualityCrossCheckError(QualityError):
    """The compiled Spark SQL and great-expectations counted a rule differently."""


@dataclass(frozen=True)
class RuleResult:
    """Outcome of one rule on one DataFrame.

    Row-level rules: ``evaluated`` = rows the rule applies to (GX: element count minus the
    rows it skips as missing, e.g. NULLs for ``between``), ``failed`` = failing rows,
    ``pass_rate`` = 1 - failed / evaluated (1.0 when nothing was evaluated), ``success``
    = no failing row. Table-level rules (row count): ``evaluated`` = the row count,
    ``failed`` = 1 when the check fails else 0, ``pass_rate`` = 1.0 or 0.0.
    """

    rule: str
    action: str
    expectation: str
    evaluated: int
    failed: int
    pass_rate: float
    success: bool

    @classmethod
    def of(cls, rule: Rule, *, evaluated: int, failed: int) -> RuleResult:
        """A result for ``rule``; ``failed`` is 0/1 for table-level rules."""
        if rule.table_level:
            rate = 1.0 - failed
        else:
            rate = 1.0 if evaluated == 0 else 1.0 - failed / evaluated
        return cls(
            rule=rule.name,
            action=rule.action,
            expectation=rule.expectation_type,
            evaluated=evaluated,
            failed=failed,
            pass_rate=rate,
            success=failed == 0,
        )


def _check_rules(columns: Sequence[str], rules: Sequence[Rule]) -> None:
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise QualityError(f"duplicate rule name: {', '.join(dupes)}")
    known = {c.lower() for c in columns}
    for rule in rules:
        missing = [c for c in referenced_columns(rule) if c.lower() not in known]
        if missing:
            raise QualityError(
                f"rule {rule.name!r}: column {', '.join(map(repr, missing))} is not in the data"
                f" (columns: {', '.join(columns)})"
            )


def violations_column(rules: Sequence[Rule]) -> Column:
    """``array<string>`` of the names of the row-level ``rules`` a row fails, in rule order."""
    flags = [
        F.when(~F.expr(cond), F.lit(rule.name))
        for rule in rules
        if (cond := row_condition(rule)) is not None
    ]
    if not flags:
        return F.array().cast("array<string>")
    return F.array_compact(F.array(*flags)).cast("array<string>")


def flag_violations(df: DataFrame, rules: Sequence[Rule]) -> DataFrame:
    """``df`` plus ``_violations``: the row-level rules each row fails (empty array if none).

    One projection; table-level rules (row count) are not flagged on rows.
    """
    if VIOLATIONS in df.columns:
        raise QualityError(f"the data already has a column {VIOLATIONS!r}")
    _check_rules(df.columns, rules)
    return df.select("*", violations_column(rules).alias(VIOLATIONS))


def evaluate_rules(df: DataFrame, rules: Sequence[Rule]) -> tuple[DataFrame, list[RuleResult]]:
    """Flag ``df`` (see ``flag_violations``) and count every rule with one aggregate query."""
    flagged = flag_violations(df, rules)
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, rule in enumerate(rules):
        applies = evaluated_condition(rule)
        if applies is None:
            continue
        aggregates.append(F.count(F.when(F.expr(applies), 1)).alias(f"evaluated_{i}"))
        aggregates.append(
            F.count(F.when(F.array_contains(VIOLATIONS, rule.name), 1)).alias(f"failed_{i}")
        )
    counts = flagged.agg(*aggregates).collect()[0].asDict()
    rows = int(counts["rows"])
    results = []
    for i, rule in enumerate(rules):
        if rule.table_level:
            results.append(
                RuleResult.of(rule, evaluated=rows, failed=int(not row_count_passes(rule, rows)))
            )
        else:
            results.append(
                RuleResult.of(
                    rule, evaluated=int(counts[f"evaluated_{i}"]), failed=int(counts[f"failed_{i}"])
                )
            )
    return flagged, results


def cross_check(sql_results: Sequence[RuleResult], gx_results: Sequence[RuleResult]) -> None:
    """Raise ``QualityCrossCheckError`` unless both paths counted every rule the same.

    Rules that only one side evaluated are compared too: a rule missing from either side is
    a mismatch.
    """
    sql = {r.rule: r for r in sql_results}
    gx = {r.rule: r for r in gx_results}
    problems = []
    for name in sorted(set(sql) | set(gx)):
        a, b = sql.get(name), gx.get(name)
        if a is None or b is None:
            problems.append(f"{name}: only in the {'GX' if a is None else 'SQL'} results")
        elif (a.evaluated, a.failed, a.success) != (b.evaluated, b.failed, b.success):
            problems.append(
                f"{name} ({a.expectation}): SQL evaluated {a.evaluated} failed {a.failed},"
                f" GX evaluated {b.evaluated} failed {b.failed}"
            )
    if problems:
        raise QualityCrossCheckError(
            "data-quality counts differ between Spark SQL and great-expectations: "
            + "; ".join(problems)
        )


# ------------------------------------------------------------ great-expectations


@contextlib.contextmanager
def _quiet_gx() -> Iterator[None]:
    """Silence GX's warnings and INFO/WARNING logging for the duration."""
    gx_logger = logging.getLogger("great_expectations")
    level = gx_logger.level
    gx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        gx_logger.setLevel(level)


def _gx_context(project_dir: Path | None, docs_dir: Path | None) -> AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context: AbstractDataContext
    if project_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    if docs_dir is not None:
        site: DataDocsSiteConfigTypedDict = {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
        }
        if DATA_DOCS_SITE in context.get_site_names():
            context.update_data_docs_site(DATA_DOCS_SITE, site)
        else:
            context.add_data_docs_site(DATA_DOCS_SITE, site)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def duplicate_keys(df: DataFrame, keys: list[str]) -> list[dict[str, object]]:
    """Up to five key values that occur more than once (one pass: a grouped count)."""
    dupes = df.groupBy(*keys).count().where(F.col("count") > 1).limit(5).collect()
    return [{k: row[k] for k in keys} for row in dupes]


def _gx_result(rule: Rule, result: Any, rows: int | None) -> RuleResult:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        raise QualityError(
            f"rule {rule.name!r}: great-expectations could not evaluate it: "
            f"{info.get('exception_message')}"
        )
    values = result.result
    if rule.table_level:
        return RuleResult.of(
            rule, evaluated=int(values["observed_value"]), failed=int(not result.success)
        )
    if rule.expectation_type == SQL:
        assert rows is not None
        return RuleResult.of(rule, evaluated=rows, failed=int(values["observed_value"] or 0))
    # An empty batch (say, a run that refines only deletes) has no counts: None, not 0.
    evaluated = int(values.get("element_count") or 0) - int(values.get("missing_count") or 0)
    return RuleResult.of(rule, evaluated=evaluated, failed=int(values.get("unexpected_count") or 0))


def _batch_rows(results: Sequence[Any], df: DataFrame) -> int:
    """The batch's row count as GX saw it (or counted, if no GX result carries it)."""
    for result in results:
        values = result.result or {}
        if "element_count" in values:
            return int(values["element_count"])
        if result.expectation_config.type in TABLE_LEVEL and "observed_value" in values:
            return int(values["observed_value"])
    return df.count()


def validate_with_gx(
    df: DataFrame,
    rules: Sequence[Rule],
    *,
    docs_dir: Path | None = None,
    suite_name: str = "lakehouse",
    run_name: str | None = None,
    project_dir: Path | None = None,
) -> list[RuleResult]:
    """Validate ``df`` with great-expectations 1.x; one result per rule, in rule order.

    The suite holds ``to_gx_expectation(rule)`` for every rule; the DataFrame is a Spark
    data source dataframe asset validated as one whole-dataframe batch (no
    ``unexpected_index_query``: it is not valid SQL on Spark Connect). With ``docs_dir``,
    the run is also rendered as GX Data Docs HTML under ``docs_dir`` (``index.html``).

    ``project_dir`` is the file-mode GX project whose suites and validation results the
    Data Docs are built from; GX rebuilds ``index.html`` from it and deletes pages it does
    not hold. It defaults to ``docs_dir/.gx``, so the index lists every run and suite ever
    validated into ``docs_dir`` (one process at a time). Without ``docs_dir`` and
    ``project_dir`` an in-memory (ephemeral) context is used and nothing is written.

    SQL rules run as ``UnexpectedRowsExpectation``, which registers the batch as the temp
    view ``tmp_view`` in the DataFrame's session; the view is dropped afterwards. GX runs
    its queries in the session ``SparkSession.builder.getOrCreate()`` returns, which must
    be ``df``'s session (one session per process, as ``lakehouse.engine`` builds it).

    Cost: GX computes one Spark query per metric (several per expectation) and imports in
    seconds on first use, so it is several times slower than ``evaluate_rules``, which
    needs one projection and one aggregate (measured on Sail and JVM Spark with 100k rows
    and 10 rules).
    """
    _check_rules(df.columns, rules)
    if not rules:
        return []
    if docs_dir is not None and project_dir is None:
        project_dir = docs_dir / GX_PROJECT_DIR
    with _quiet_gx():
        results = _run_gx(df, rules, docs_dir, suite_name, run_name, project_dir)
    by_name = {r.expectation_config.meta.get("rule"): r for r in results}
    # GX keeps one of several equal expectations: a repeated check shares that one's result.
    by_check = {_check_key(r): by_name[r.name] for r in rules if r.name in by_name}
    matched = {r.name: by_name.get(r.name) or by_check.get(_check_key(r)) for r in rules}
    missing = [name for name, result in matched.items() if result is None]
    if missing:
        raise QualityError(
            f"great-expectations returned no result for rule(s): {', '.join(missing)}"
        )
    rows = _batch_rows(results, df) if any(r.sql is not None for r in rules) else None
    return [_gx_result(rule, matched[rule.name], rows) for rule in rules]


def _check_key(rule: Rule) -> str:
    """What GX compares to call two expectations equal: the type and its kwargs."""
    kwargs = rule.expectation.kwargs if rule.expectation is not None else {"sql": rule.sql}
    return json.dumps([rule.expectation_type, kwargs], sort_keys=True, default=str)


def _run_gx(
    df: DataFrame,
    rules: Sequence[Rule],
    docs_dir: Path | None,
    suite_name: str,
    run_name: str | None,
    project_dir: Path | None,
) -> list[Any]:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction, ValidationAction
    from great_expectations.core.run_identifier import RunIdentifier

    context = _gx_context(project_dir, docs_dir)
    source: SparkDatasource
    if _GX_DATASOURCE in context.data_sources.all():
        source = cast("SparkDatasource", context.data_sources.get(_GX_DATASOURCE))
    else:
        source = context.data_sources.add_spark(name=_GX_DATASOURCE)
    if suite_name in source.get_asset_names():
        asset = source.get_asset(suite_name)
    else:
        asset = source.add_dataframe_asset(name=suite_name)
    try:
        batch = asset.get_batch_definition(_GX_BATCH)
    except KeyError:
        batch = asset.add_batch_definition_whole_dataframe(_GX_BATCH)
    suite = gx.ExpectationSuite(name=suite_name)
    for rule in rules:
        suite.add_expectation(to_gx_expectation(rule))
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )
    actions: list[ValidationAction] = []
    if docs_dir is not None:
        actions.append(UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE]))
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite_name,
            validation_definitions=[validation],
            actions=actions,
            result_format={"result_format": "SUMMARY" if docs_dir is not None else "BASIC"},
        )
    )
    was_cached = bool(df.is_cached)
    has_sql = any(r.sql is not None for r in rules)
    now = datetime.now(tz=UTC)
    try:
        outcome = checkpoint.run(
            batch_parameters={"dataframe": df},
            run_id=RunIdentifier(
                run_name=run_name or f"{suite_name}-{now:%Y%m%dT%H%M%S}", run_time=now
            ),
        )
    finally:
        if not was_cached:
            with contextlib.suppress(Exception):
                df.unpersist()
        if has_sql:
            with contextlib.suppress(Exception):
                df.sparkSession.catalog.dropTempView(_GX_TEMP_VIEW)
    return [r for run in outcome.run_results.values() for r in run.results]
