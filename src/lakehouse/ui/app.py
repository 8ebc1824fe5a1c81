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

HTML comes from Jinja2 templates in ``lakehouse/ui/templates`` (autoescaped); charts are
SVG drawn on the server (:mod:`lakehouse.ui.charts`); no JavaScript, no external assets.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from lakehouse.config.loader import Project, dq_results_table_name, model_monitoring_table_name
from lakehouse.core.errors import LakehouseError
from lakehouse.ml.registry import CHAMPION, connect, list_versions
from lakehouse.tables import DeltaTables
from lakehouse.ui import charts, views
from lakehouse.ui.sources import ServingClient, TableReader

NAV = (
    ("/models", "Models"),
    ("/predict", "Predict"),
    ("/quality", "Data quality"),
    ("/drift", "Drift"),
    ("/lineage", "Lineage"),
)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("lakehouse.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def create_app(
    project: Project,
    model_name: str,
    *,
    serving_url: str,
    tables: DeltaTables,
    timeout_s: float = 10.0,
) -> FastAPI:
    """The UI for ``model_name`` (a key of ``project.models`` or a registered name).

    ``serving_url`` is the base URL of ``lakehouse serve``; ``tables`` the (governed) table
    adapter the DQ, drift and lineage pages read through.
    """
    spec = project.models.get(model_name)
    registered = spec.registered_name if spec is not None else model_name
    default_lineage = spec.training_set.features[0].table if spec is not None else None
    client = connect(project)
    serving = ServingClient(serving_url, timeout_s)
    reader = TableReader(tables)
    env = _environment()

    app = FastAPI(title=f"{registered} · lakehouse UI", docs_url=None, redoc_url=None)
    app.state.serving = serving

    def page(
        request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = env.get_template(template).render(
            nav=NAV,
            path=request.url.path,
            model_name=registered,
            serving_url=serving_url,
            project_name=project.name,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def served_model() -> tuple[dict[str, Any] | None, str | None]:
        try:
            return serving.model(), None
        except LakehouseError as exc:
            return None, str(exc)
        except Exception as exc:  # an HTTP error status from the API
            return None, f"the serving API at {serving_url} answered {exc}"

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/models", status_code=302)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "model_name": registered}

    @app.get("/models", response_class=HTMLResponse)
    def models_page(request: Request) -> HTMLResponse:
        rows = views.version_rows(list_versions(client, registered))
        served, error = served_model()
        served_versions = {
            alias: str(v["version"]) for alias, v in ((served or {}).get("versions") or {}).items()
        }
        return page(
            request,
            "models.html",
            title="Registered versions",
            rows=rows,
            champion=views.champion_of(rows),
            metric_names=[m for m, _ in rows[0].metrics] if rows else [],
            served_versions=served_versions,
            serving_error=error,
        )

    def predict_page(
        request: Request,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        result: views.PredictionView | None = None,
        api_errors: list[str] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        served, error = served_model()
        inputs = (served or {}).get("inputs") or []
        champion = ((served or {}).get("versions") or {}).get(CHAMPION) or {}
        return page(
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

    @app.get("/predict", response_class=HTMLResponse)
    def predict_form(request: Request) -> HTMLResponse:
        return predict_page(request)

    @app.post("/predict", response_class=HTMLResponse)
    async def predict_submit(request: Request) -> HTMLResponse:
        body = (await request.body()).decode("utf-8", errors="replace")
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        return await asyncio.to_thread(_predict, request, form)

    def _predict(request: Request, form: dict[str, str]) -> HTMLResponse:
        served, _ = served_model()
        if served is None:
            return predict_page(request, form, status_code=502)
        record, errors = views.parse_record(served.get("inputs") or [], form)
        if errors:
            return predict_page(request, form, errors, status_code=422)
        try:
            status, answer = serving.predict(record)
        except LakehouseError as exc:
            return predict_page(request, form, api_errors=[str(exc)], status_code=502)
        if status != 200:
            return predict_page(
                request,
                form,
                api_errors=views.api_errors(answer.get("detail", answer)),
                status_code=422 if status == 422 else 502,
            )
        return predict_page(request, form, result=views.prediction_view(answer))

    @app.get("/quality", response_class=HTMLResponse)
    def quality_page(request: Request) -> HTMLResponse:
        rows = reader.dq_rows()
        return page(
            request,
            "quality.html",
            title="Data quality",
            tables=views.dq_tables(rows or []),
            source=dq_results_table_name(project.catalog.name),
        )

    @app.get("/drift", response_class=HTMLResponse)
    def drift_page(request: Request) -> HTMLResponse:
        rows = reader.monitoring_rows(registered)
        series = views.drift_series(rows or [])
        return page(
            request,
            "drift.html",
            title="Drift",
            has_table=rows is not None,
            charts=[(s, Markup(charts.drift_chart_svg(s))) for s in series],
            latest=views.latest_monitor_run(rows or []),
            source=model_monitoring_table_name(project.catalog.name),
        )

    @app.get("/lineage", response_class=HTMLResponse)
    def lineage_page(request: Request, table: str | None = None) -> HTMLResponse:
        known = reader.lineage_tables()
        chosen = table or (default_lineage if default_lineage in known else None)
        chosen = chosen or (known[0] if known else None)
        svg = reader.lineage_svg(chosen) if chosen else None
        return page(
            request,
            "lineage.html",
            title="Lineage",
            known=known,
            chosen=chosen,
            picture=Markup(charts.inline_svg(svg)) if svg else None,
        )

    return app
