"""The UI app: server-rendered HTML pages for one registered model.

Pages (linked from a navigation bar on every page):

- ``/models``: registered versions with aliases, holdout metrics and promotion reasons, and
  which versions the serving API has loaded.
- ``/predict``: a form generated from the serving API's input schema (``GET /model``);
  submitting it posts the record to the serving API's ``POST /predict`` from the server
  side and shows the prediction, the probability and the answering version.
- ``/quality``: the latest data-quality run per table (pass rate per rule).
- ``/drift``: PSI per feature over time from the monitoring table, alerts in red, and the
  latest monitoring run's results.
- ``/lineage``: the lineage picture of a table (default: the model's feature table).

HTML comes from Jinja2 templates in ``lakehouse/apps/ui/templates`` (autoescaped); charts are
SVG drawn on the server (:mod:`lakehouse.apps.ui.charts`); no JavaScript, no external assets.

Every form carries a CSRF token and every POST is checked (:mod:`lakehouse.apps.ui.csrf`);
a body over ``max_body_bytes`` (default 64 KiB) answers 413 and a ``Host`` other than loopback
and the configured hosts 400 (:mod:`lakehouse.apps.http_guard`).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from lakehouse.apps.http_guard import allowed_hosts, check_body_limit, guard_hosts
from lakehouse.apps.ui import charts, views
from lakehouse.apps.ui.csrf import CsrfTokens, require_csrf_token
from lakehouse.apps.ui.sources import ServingClient, TableReader
from lakehouse.config.project import Project
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.core.errors import LakehouseError
from lakehouse.io.store import TableStore
from lakehouse.pipelines.ml.registry import CHAMPION, connect, list_versions

NAV = (
    ("/models", "Models"),
    ("/predict", "Predict"),
    ("/quality", "Data quality"),
    ("/drift", "Drift"),
    ("/lineage", "Lineage"),
)
MAX_BODY_BYTES = 64 * 1024  # a prediction form is a few hundred bytes


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("lakehouse.apps.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


@dataclass(frozen=True)
class _Ui:
    """What every page needs: the project, the model, the serving API, the table reader."""

    project: Project
    registered: str
    serving_url: str
    serving: ServingClient
    reader: TableReader
    client: Any  # the MLflow client
    env: Environment
    default_lineage: str | None
    csrf: CsrfTokens

    def page(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """A page rendered from ``template`` with the navigation bar and its forms' CSRF token."""
        token, new_session = self.csrf.for_page(request)
        html = self.env.get_template(template).render(
            nav=NAV,
            path=request.url.path,
            model_name=self.registered,
            serving_url=self.serving_url,
            project_name=self.project.name,
            csrf_token=token,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        if new_session is not None:
            self.csrf.set_cookie(response, new_session)
        return response

    def served_model(self) -> tuple[dict[str, Any] | None, str | None]:
        """The serving API's ``GET /model`` answer, or why there is none."""
        try:
            return self.serving.model(), None
        except LakehouseError as exc:
            return None, str(exc)
        except Exception as exc:  # an HTTP error status from the API
            return None, f"the serving API at {self.serving_url} answered {exc}"

    def predict_page(
        self,
        request: Request,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        result: views.PredictionView | None = None,
        api_errors: list[str] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        """The prediction form (with the values, errors and result of a submission)."""
        served, error = self.served_model()
        inputs = (served or {}).get("inputs") or []
        champion = ((served or {}).get("versions") or {}).get(CHAMPION) or {}
        return self.page(
            request,
            "predict.html",
            status_code=status_code,
            title="Predict",
            fields=views.form_fields(inputs, values, errors),
            champion_version=champion.get("version"),
            result=result,
            api_errors=api_errors or [],
            serving_error=error,
        )

    def predict(self, request: Request, form: dict[str, str]) -> HTMLResponse:
        """Post a submitted form to the serving API; the form page with its answer."""
        served, _ = self.served_model()
        if served is None:
            return self.predict_page(request, form, status_code=502)
        record, errors = views.parse_record(served.get("inputs") or [], form)
        if errors:
            return self.predict_page(request, form, errors, status_code=422)
        try:
            status, answer = self.serving.predict(record)
        except LakehouseError as exc:
            return self.predict_page(request, form, api_errors=[str(exc)], status_code=502)
        if status != 200:
            return self.predict_page(
                request,
                form,
                api_errors=views.api_errors(answer.get("detail", answer)),
                status_code=422 if status == 422 else 502,
            )
        return self.predict_page(request, form, result=views.prediction_view(answer))


def create_app(
    project: Project,
    model_name: str,
    *,
    serving_url: str,
    tables: TableStore,
    timeout_s: float = 10.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    hosts: list[str] | None = None,
) -> FastAPI:
    """The UI for ``model_name`` (a key of ``project.models`` or a registered name).

    ``serving_url`` is the base URL of ``lakehouse serve``; ``tables`` the (governed) table
    adapter the DQ, drift and lineage pages read through. ``hosts``: the ``Host`` names
    answered (default: loopback only).
    """
    spec = project.models.get(model_name)
    ui = _Ui(
        project=project,
        registered=spec.registered_name if spec is not None else model_name,
        serving_url=serving_url,
        client=connect(project),
        serving=ServingClient(serving_url, timeout_s),
        reader=TableReader(tables),
        env=_environment(),
        default_lineage=spec.training_set.features[0].table if spec is not None else None,
        csrf=CsrfTokens(),
    )
    app = FastAPI(
        title=f"{ui.registered} · lakehouse UI",
        docs_url=None,
        redoc_url=None,
        max_body_size=check_body_limit(max_body_bytes),
        dependencies=[Depends(require_csrf_token)],
    )
    guard_hosts(app, allowed_hosts() if hosts is None else hosts)
    app.state.serving = ui.serving
    app.state.csrf = ui.csrf
    _add_index_routes(app, ui)
    _add_model_routes(app, ui)
    _add_predict_routes(app, ui)
    _add_monitoring_routes(app, ui)
    return app


def _add_index_routes(app: FastAPI, ui: _Ui) -> None:
    """``/`` (a redirect to ``/models``) and ``/health``."""

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/models", status_code=302)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "model_name": ui.registered}


def _add_model_routes(app: FastAPI, ui: _Ui) -> None:
    """``/models``: registered versions and what the serving API has loaded."""

    @app.get("/models", response_class=HTMLResponse)
    def models_page(request: Request) -> HTMLResponse:
        rows = views.version_rows(list_versions(ui.client, ui.registered))
        served, error = ui.served_model()
        served_versions = {
            alias: str(v["version"]) for alias, v in ((served or {}).get("versions") or {}).items()
        }
        return ui.page(
            request,
            "models.html",
            title="Registered versions",
            rows=rows,
            champion=views.champion_of(rows),
            metric_names=[m for m, _ in rows[0].metrics] if rows else [],
            served_versions=served_versions,
            serving_error=error,
        )


def _add_predict_routes(app: FastAPI, ui: _Ui) -> None:
    """``GET /predict`` (the form) and ``POST /predict`` (a submission)."""

    @app.get("/predict", response_class=HTMLResponse)
    def predict_form(request: Request) -> HTMLResponse:
        return ui.predict_page(request)

    @app.post("/predict", response_class=HTMLResponse)
    async def predict_submit(request: Request) -> HTMLResponse:
        body = (await request.body()).decode("utf-8", errors="replace")
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        return await asyncio.to_thread(ui.predict, request, form)


def _add_monitoring_routes(app: FastAPI, ui: _Ui) -> None:
    """``/quality``, ``/drift`` and ``/lineage``: pages read from tables."""

    @app.get("/quality", response_class=HTMLResponse)
    def quality_page(request: Request) -> HTMLResponse:
        rows = ui.reader.dq_rows()
        return ui.page(
            request,
            "quality.html",
            title="Data quality",
            tables=views.dq_tables(rows or []),
            source=system_table_name(ui.project.catalog.name, SystemTable.DQ_RESULTS),
        )

    @app.get("/drift", response_class=HTMLResponse)
    def drift_page(request: Request) -> HTMLResponse:
        rows = ui.reader.monitoring_rows(ui.registered)
        series = views.drift_series(rows or [])
        return ui.page(
            request,
            "drift.html",
            title="Drift",
            has_table=rows is not None,
            charts=[(s, Markup(charts.drift_chart_svg(s))) for s in series],
            latest=views.latest_monitor_run(rows or []),
            source=system_table_name(ui.project.catalog.name, SystemTable.MODEL_MONITORING),
        )

    @app.get("/lineage", response_class=HTMLResponse)
    def lineage_page(request: Request, table: str | None = None) -> HTMLResponse:
        known = ui.reader.lineage_tables()
        default = ui.default_lineage
        chosen = table or (default if default in known else None)
        chosen = chosen or (known[0] if known else None)
        svg = ui.reader.lineage_svg(chosen) if chosen else None
        return ui.page(
            request,
            "lineage.html",
            title="Lineage",
            known=known,
            chosen=chosen,
            picture=Markup(charts.inline_svg(svg)) if svg else None,
        )
