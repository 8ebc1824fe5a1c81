"""The Databricks API Apache Spark's ``pyspark.pipelines`` lacks, provided while a pipeline's
files load and while its flows run: expectations (``expect``, ``expect_or_drop``,
``expect_or_fail``, ``expect_all*``), ``create_streaming_table`` with ``expect_all*``,
``append_flow(once=…)``, ``create_auto_cdc_flow`` with Databricks' signature (SCD 1 and 2),
``read`` / ``read_stream``, and ``import dlt`` as an alias; the module's attributes are
restored afterwards.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyspark.pipelines as dp_module
from pyspark.pipelines.flow import Flow as PysparkFlow
from pyspark.pipelines.graph_element_registry import graph_element_registration_context
from pyspark.pipelines.output import StreamingTable
from pyspark.pipelines.source_code_location import get_caller_source_code_location
from pyspark.sql import DataFrame

from lakehouse.pipelines.declarative.model import AutoCdc, Expectation, ExpectationAction
from lakehouse.pipelines.declarative.registry import (
    EXPECTATIONS_ATTR,
    LocalRegistry,
    PipelineLoadError,
    column_sql,
    source_location,
)


def _expectation_decorator(
    registry: LocalRegistry, expectations: list[Expectation]
) -> Callable[[Any], Any]:
    """A decorator adding ``expectations`` to the dataset it is stacked with: under
    ``@dp.table`` it marks the function; over it (the table decorator returned None) it
    applies to the dataset registered last."""

    def decorate(target: Any) -> Any:
        if callable(target):
            setattr(
                target, EXPECTATIONS_ATTR, [*expectations, *getattr(target, EXPECTATIONS_ATTR, [])]
            )
        elif registry.last_dataset is not None:
            registry.last_dataset.expectations.extend(expectations)
        return target

    return decorate


def _expect_all(
    action: ExpectationAction, registry: LocalRegistry
) -> Callable[[Mapping[str, str]], Any]:
    def expect_all(expectations: Mapping[str, str]) -> Callable[[Any], Any]:
        return _expectation_decorator(
            registry, [Expectation(str(n), str(c), action) for n, c in expectations.items()]
        )

    return expect_all


def _expect_one(action: ExpectationAction, registry: LocalRegistry) -> Callable[[str, str], Any]:
    def expect(name: str, condition: str) -> Callable[[Any], Any]:
        return _expectation_decorator(registry, [Expectation(str(name), str(condition), action)])

    return expect


def _as_expectations(
    warn: Mapping[str, str] | None, drop: Mapping[str, str] | None, fail: Mapping[str, str] | None
) -> list[Expectation]:
    out: list[Expectation] = []
    for action, given in (("warn", warn), ("drop", drop), ("fail", fail)):
        for n, c in (given or {}).items():
            out.append(Expectation(str(n), str(c), action))  # type: ignore[arg-type]
    return out


def _streaming_table_api(registry: LocalRegistry) -> Callable[..., None]:
    """``create_streaming_table`` with Databricks' ``expect_all*`` arguments."""

    def create_streaming_table(
        name: str,
        comment: str | None = None,
        spark_conf: dict[str, str] | None = None,
        table_properties: dict[str, str] | None = None,
        partition_cols: list[str] | None = None,
        cluster_by: list[str] | None = None,
        path: str | None = None,
        schema: Any = None,
        expect_all: Mapping[str, str] | None = None,
        expect_all_or_drop: Mapping[str, str] | None = None,
        expect_all_or_fail: Mapping[str, str] | None = None,
        row_filter: str | None = None,
        format: str | None = None,
    ) -> None:
        loc = get_caller_source_code_location(stacklevel=1)
        registry.register_output(
            StreamingTable(
                name=name,
                comment=comment,
                source_code_location=loc,
                table_properties=table_properties or {},
                partition_cols=partition_cols,
                cluster_by=cluster_by,
                schema=schema,
                format=format,
            )
        )
        ds = registry.last_dataset
        if ds is not None:
            ds.expectations.extend(
                _as_expectations(expect_all, expect_all_or_drop, expect_all_or_fail)
            )

    return create_streaming_table


def _append_flow_api(registry: LocalRegistry) -> Callable[..., Any]:
    """``append_flow`` with Databricks' ``once`` (a backfill that runs once)."""

    def append_flow(
        *,
        target: str,
        name: str | None = None,
        spark_conf: dict[str, str] | None = None,
        comment: str | None = None,
        once: bool = False,
    ) -> Callable[[Callable[[], DataFrame]], None]:
        loc = get_caller_source_code_location(stacklevel=1)

        def outer(func: Callable[[], DataFrame]) -> None:
            func.__lakehouse_once__ = once  # type: ignore[attr-defined]
            registry.register_flow(
                PysparkFlow(
                    name=name or func.__name__,
                    target=target,
                    spark_conf=spark_conf or {},
                    source_code_location=loc,
                    func=func,
                )
            )

        return outer

    return append_flow


def _auto_cdc_api(registry: LocalRegistry) -> Callable[..., None]:
    """``create_auto_cdc_flow`` with Databricks' signature, recorded as :class:`AutoCdc`."""

    def create_auto_cdc_flow(
        target: str,
        source: str,
        keys: list[Any],
        sequence_by: Any,
        ignore_null_updates: bool = False,
        apply_as_deletes: Any = None,
        apply_as_truncates: Any = None,
        column_list: list[Any] | None = None,
        except_column_list: list[Any] | None = None,
        stored_as_scd_type: int | str = 1,
        track_history_column_list: list[Any] | None = None,
        track_history_except_column_list: list[Any] | None = None,
        name: str | None = None,
        once: bool = False,
    ) -> None:
        scd = int(stored_as_scd_type)
        if scd not in (1, 2):
            raise PipelineLoadError(
                f"{target}: stored_as_scd_type must be 1 or 2, got {stored_as_scd_type!r}"
            )

        def cols(given: list[Any] | None) -> tuple[str, ...] | None:
            return tuple(column_sql(c) for c in given) if given else None

        spec = AutoCdc(
            target=target,
            source=source,
            keys=tuple(column_sql(k) for k in keys),
            sequence_by=column_sql(sequence_by),
            stored_as_scd_type=scd,  # type: ignore[arg-type]
            apply_as_deletes=column_sql(apply_as_deletes) if apply_as_deletes is not None else None,
            apply_as_truncates=column_sql(apply_as_truncates)
            if apply_as_truncates is not None
            else None,
            column_list=cols(column_list),
            except_column_list=cols(except_column_list),
            track_history_column_list=cols(track_history_column_list),
            track_history_except_column_list=cols(track_history_except_column_list),
            ignore_null_updates=ignore_null_updates,
            name=name,
        )
        registry.add_auto_cdc(
            spec, source_location(get_caller_source_code_location(stacklevel=1)), once=once
        )

    return create_auto_cdc_flow


def databricks_api(
    registry: LocalRegistry, reader: Callable[[str, bool], DataFrame]
) -> dict[str, Any]:
    """The functions ``pyspark.pipelines`` (and ``dlt``) gain while a pipeline loads/runs."""
    create_streaming_table = _streaming_table_api(registry)
    create_auto_cdc_flow = _auto_cdc_api(registry)
    return {
        "expect": _expect_one("warn", registry),
        "expect_or_drop": _expect_one("drop", registry),
        "expect_or_fail": _expect_one("fail", registry),
        "expect_all": _expect_all("warn", registry),
        "expect_all_or_drop": _expect_all("drop", registry),
        "expect_all_or_fail": _expect_all("fail", registry),
        "create_streaming_table": create_streaming_table,
        "create_target_table": create_streaming_table,
        "append_flow": _append_flow_api(registry),
        "create_auto_cdc_flow": create_auto_cdc_flow,
        "apply_changes": create_auto_cdc_flow,
        "read": lambda name: reader(name, False),
        "read_stream": lambda name: reader(name, True),
    }


# Databricks-only dataset arguments: accepted, without effect locally
DATABRICKS_ONLY_ARGS = ("private", "temporary", "path", "row_filter", "cluster_by_auto")


def _lenient(original: Callable[..., Any], registry: LocalRegistry) -> Callable[..., Any]:
    """``original`` (``table``, ``materialized_view``, ``temporary_view``) accepting
    Databricks' extra arguments; definitions keep the user's ``file:line``."""

    def decorator(query_function: Any = None, **kwargs: Any) -> Any:
        for key in DATABRICKS_ONLY_ARGS:
            kwargs.pop(key, None)
        where = source_location(get_caller_source_code_location(stacklevel=1))

        def apply(func: Any) -> Any:
            with registry.located(where):
                return original(**kwargs)(func) if kwargs else original(func)

        return apply(query_function) if query_function is not None else apply

    return decorator


@contextlib.contextmanager
def pipeline_api(
    registry: LocalRegistry, reader: Callable[[str, bool], DataFrame]
) -> Iterator[None]:
    """``pyspark.pipelines`` with the Databricks API, ``import dlt`` as its alias, and the
    registry active; everything restored when the block ends."""
    extra = databricks_api(registry, reader)
    for name in ("table", "materialized_view", "temporary_view"):
        extra[name] = _lenient(getattr(dp_module, name), registry)
    missing = object()
    saved = {name: getattr(dp_module, name, missing) for name in extra}
    dlt = types.ModuleType("dlt", "Delta Live Tables names for pyspark.pipelines (lakehouse)")
    dlt.create_sink = dp_module.create_sink  # type: ignore[attr-defined]
    dlt.view = extra["temporary_view"]  # type: ignore[attr-defined]
    for name, value in extra.items():
        setattr(dlt, name, value)
        setattr(dp_module, name, value)
    saved_dlt = sys.modules.get("dlt")
    sys.modules["dlt"] = dlt
    try:
        with graph_element_registration_context(registry):
            yield
    finally:
        for name, value in saved.items():
            if value is missing:
                delattr(dp_module, name)
            else:
                setattr(dp_module, name, value)
        if saved_dlt is None:
            sys.modules.pop("dlt", None)
        else:
            sys.modules["dlt"] = saved_dlt
