"""DLT expectations on a flow's rows, with the project's rule evaluation
(:func:`lakehouse.transforms.quality.evaluate_rules`: one projection flags the failing
expectations per row, one aggregate counts them all).

``warn`` keeps failing rows and counts them, ``drop`` removes them (they go to the
dataset's ``<name>_quarantine`` table with the names they failed), ``fail`` stops the
update with one line naming the dataset, the expectation and a failing row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.config.rules import Rule
from lakehouse.config.system_tables import DqResultRow
from lakehouse.core.errors import LakehouseError
from lakehouse.pipelines.declarative.model import Expectation
from lakehouse.transforms.quality import VIOLATIONS, RuleResult, evaluate_rules

FAILED_COLUMN = "_expectations"
RUN_COLUMN = "_run_id"


class ExpectationFailedError(LakehouseError):
    """An ``expect_or_fail`` expectation failed: the update stops (``results``: the counts
    of all the dataset's expectations, for the DQ table)."""

    def __init__(self, message: str, results: list[RuleResult]) -> None:
        super().__init__(message)
        self.results = results


@dataclass(frozen=True)
class CheckedRows:
    """A flow's rows after its dataset's expectations."""

    kept: DataFrame
    quarantined: DataFrame | None  # the dropped rows, with _expectations (None: no drop rule)
    results: list[RuleResult]

    def failed(self, action: str) -> int:
        return sum(r.failed for r in self.results if r.action == action)


def as_rules(expectations: Sequence[Expectation]) -> list[Rule]:
    """Expectations as the project's SQL rules (names kept as written: DLT names may have
    spaces, so the models are built without the identifier check)."""
    return [
        Rule.model_construct(name=e.name, sql=e.condition, action=e.action, expectation=None)
        for e in expectations
    ]


def check_expectations(
    df: DataFrame, expectations: Sequence[Expectation], *, dataset: str
) -> CheckedRows:
    """Count every expectation in one pass; fail, drop or keep rows as they say."""
    if not expectations:
        return CheckedRows(df, None, [])
    rules = as_rules(expectations)
    flagged, results = evaluate_rules(df, rules)
    for e, r in zip(expectations, results, strict=True):
        if e.action == "fail" and r.failed:
            sample = flagged.filter(F.array_contains(VIOLATIONS, e.name)).drop(VIOLATIONS).limit(1)
            row = sample.collect()
            shown = row[0].asDict() if row else {}
            raise ExpectationFailedError(
                f"{dataset}: expectation {e.name!r} ({e.condition}) failed for {r.failed} of "
                f"{r.evaluated} rows, e.g. {shown}",
                results,
            )
    drop = [e.name for e in expectations if e.action == "drop"]
    if not drop:
        return CheckedRows(flagged.drop(VIOLATIONS), None, results)
    dropped = F.lit(False)
    for name in drop:
        dropped = dropped | F.array_contains(VIOLATIONS, name)
    kept = flagged.filter(~dropped).drop(VIOLATIONS)
    quarantined = flagged.filter(dropped).withColumnRenamed(VIOLATIONS, FAILED_COLUMN)
    return CheckedRows(kept, quarantined, results)


def outcome(result: RuleResult) -> str:
    """passed | warned | dropped | failed (as the YAML rules' results say it)."""
    if result.failed == 0:
        return "passed"
    return {"warn": "warned", "drop": "dropped", "fail": "failed"}[result.action]


def dq_rows(
    run_id: str, dataset: str, expectations: Sequence[Expectation], results: Sequence[RuleResult]
) -> list[DqResultRow]:
    """The data-quality rows of one flow's expectations (rule = expectation name)."""
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    return [
        DqResultRow(
            run_id,
            dataset,
            r.rule,
            e.condition,
            r.action,
            r.evaluated,
            r.failed,
            r.pass_rate,
            outcome(r),
            now,
        )
        for e, r in zip(expectations, results, strict=True)
    ]
