"""Thin I/O for the UI: the registry, the serving API, and governed Delta table reads.

Table reads go through the governed store (:mod:`lakehouse.governance.store`, so access control, masks and
the audit apply to the UI's principal) and are serialized by one lock: a Spark session is
shared by all requests. DataFrame functions here only filter and project; the page content
is shaped by :mod:`lakehouse.apps.ui.views`.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from lakehouse.config.project import Project
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.core.errors import LakehouseError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from lakehouse.io.store import TableStore

MONITORING_COLUMNS = tuple(c.name for c in SystemTable.MODEL_MONITORING.spec.columns)
DQ_COLUMNS = tuple(c.name for c in SystemTable.DQ_RESULTS.spec.columns)


# ---------------------------------------------------------------- DataFrame functions


def model_monitoring(df: DataFrame, model_name: str) -> DataFrame:
    """The monitoring rows of one registered model, in the agreed column order."""
    from pyspark.sql import functions as F

    return df.where(F.col("model_name") == model_name).select(*MONITORING_COLUMNS)


def dq_columns(df: DataFrame) -> DataFrame:
    return df.select(*DQ_COLUMNS)


# ---------------------------------------------------------------- tables


@dataclass
class TableReader:
    """Governed reads of the bookkeeping tables the UI shows; one request at a time."""

    tables: TableStore

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def project(self) -> Project:
        return self.tables.project

    @contextmanager
    def _scope(self) -> Iterator[TableStore]:
        # one task scope per page: the access audit rows are written when the page is done
        with self._lock, self.tables.task_scope("ui"):
            yield self.tables

    def _defined(self, name: str) -> bool:
        return name in self.project.tables

    def dq_rows(self) -> list[dict[str, Any]] | None:
        """All data-quality result rows; None when the table does not exist yet."""
        name = system_table_name(self.project.catalog.name, SystemTable.DQ_RESULTS)
        with self._scope() as tables:
            if not self._defined(name) or not tables.exists(name):
                return None
            return [r.asDict() for r in dq_columns(tables.read(name)).collect()]

    def monitoring_rows(self, model_name: str) -> list[dict[str, Any]] | None:
        """The model's monitoring rows; None when the catalog has no monitoring table (yet)."""
        name = system_table_name(self.project.catalog.name, SystemTable.MODEL_MONITORING)
        with self._scope() as tables:
            if not self._defined(name) or not tables.exists(name):
                return None
            return [r.asDict() for r in model_monitoring(tables.read(name), model_name).collect()]

    def lineage_tables(self) -> list[str]:
        """Tables that appear in recorded lineage (inputs and outputs), sorted."""
        from lakehouse.governance.lineage.graph import load_edges

        with self._scope() as tables:
            edges = load_edges(tables)
        return sorted(
            {e.target for e in edges}
            | {e.source for e in edges if "." in e.source and ":" not in e.source}
        )

    def lineage_svg(self, table: str) -> str | None:
        """The lineage picture of ``table`` (up- and downstream) as SVG text; None if none."""
        from lakehouse.governance.lineage.graph import build_graph, load_edges, write_picture

        with self._scope() as tables:
            edges = load_edges(tables)
        if not any(table in (e.source, e.target) for e in edges):
            return None
        layers = {name: ref.spec.layer for name, ref in self.project.tables.items()}
        graph = build_graph(edges, table, "both", layers)
        with tempfile.TemporaryDirectory(prefix="lakehouse-ui-") as tmp:
            path = write_picture(graph, Path(tmp) / "lineage.svg")
            return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- serving API


@dataclass(frozen=True)
class ServingClient:
    """The serving API (``lakehouse serve``), called from the UI's server side."""

    base_url: str
    timeout_s: float = 10.0

    def model(self) -> dict[str, Any]:
        """``GET /model``: the served versions and the input schema."""
        response = self._request("GET", "/model")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def predict(self, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /predict`` one record: the HTTP status and the JSON body."""
        response = self._request("POST", "/predict", json={"record": record})
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        return response.status_code, body

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.base_url.rstrip("/") + path
        try:
            return httpx.request(method, url, timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as exc:
            raise LakehouseError(
                f"the serving API at {self.base_url} is not reachable ({type(exc).__name__}: "
                f"{exc}); start it with `lakehouse serve MODEL`"
            ) from exc
