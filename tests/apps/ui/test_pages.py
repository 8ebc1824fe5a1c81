"""Each UI page over plain HTTP (no browser) against the real serving API, registry and tables."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import httpx
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.apps.ui.app import create_app
from lakehouse.apps.ui.server import running_ui
from lakehouse.apps.ui.views import PROMOTION_TAG
from lakehouse.config.system_tables import SystemTable, system_table_name
from tests.apps.serving.conftest import CATEGORICAL, MODEL, NAME
from tests.apps.ui.conftest import PSI, PSI_THRESHOLD, T0, UiStack


def get(stack: UiStack, path: str, base: str | None = None) -> str:
    response = httpx.get((base or stack.ui_url) + path, timeout=30)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def text(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    spaced = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    return re.sub(r" ([;,.)])", r"\1", spaced)


def element(page: str, pattern: str) -> str:
    """The text of the first ``<tag ...pattern...>…</tag>`` (no nesting of the same tag)."""
    found = re.search(rf"<(\w+)[^>]*{pattern}[^>]*>(.*?)</\1>", page, re.DOTALL)
    assert found, f"no element matching {pattern!r}"
    return text(found.group(2))


def api_predict(stack: UiStack, record: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{stack.serving_url}/predict", json={"record": record}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def submit(stack: UiStack, data: dict[str, str], base: str | None = None) -> httpx.Response:
    """Post ``data`` to the prediction form as a browser does: the form's token and cookie."""
    with httpx.Client(base_url=base or stack.ui_url, timeout=30) as browser:
        form = browser.get("/predict")
        token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', form.text)
        assert token, form.text[:2000]
        return browser.post("/predict", data={"csrf_token": token.group(1), **data})


def form_data(record: dict[str, Any]) -> dict[str, str]:
    return {
        k: "" if v is None else (v if isinstance(v, str) else repr(v)) for k, v in record.items()
    }


def test_every_page_has_the_navigation(ui_stack: UiStack) -> None:
    for path in ("/models", "/predict", "/quality", "/drift", "/lineage"):
        page = get(ui_stack, path)
        nav = re.search(r"<nav>(.*?)</nav>", page, re.DOTALL)
        assert nav is not None
        assert re.findall(r'href="([^"]+)"', nav.group(1)) == [
            "/models",
            "/predict",
            "/quality",
            "/drift",
            "/lineage",
        ]
        assert f'href="{path}" class="active"' in page
        # no external assets, no scripts
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
        assert "<script" not in page and "<link" not in page
    root = httpx.get(ui_stack.ui_url + "/", timeout=30, follow_redirects=True)
    assert root.status_code == 200 and root.url.path == "/models"


def test_models_page_lists_versions_aliases_metrics_and_reasons(ui_stack: UiStack) -> None:
    client = ui_stack.registry.client
    page = get(ui_stack, "/models")
    assert element(page, 'id="champion-version"') == "version 1"
    assert re.findall(r'<tr class="[^"]*" data-version="(\d+)">', page) == ["2", "1"]
    assert 'class="champion" data-version="1"' in page
    assert 'class="" data-version="2"' in page
    for number, alias in (("1", "@champion"), ("2", "@challenger")):
        row = element(page, f'data-version="{number}"')
        version = client.get_model_version(NAME, number)
        metrics = client.get_run(version.run_id).data.metrics
        expected = [f"v{number}", alias] + [
            f"{metrics[m]:.3f}" for m in ("roc_auc", "f1", "accuracy", "precision", "recall")
        ]
        cells = [
            text(c)
            for c in re.findall(
                r"<td[^>]*>(.*?)</td>",
                re.search(rf'data-version="{number}">(.*?)</tr>', page, re.DOTALL).group(1),  # type: ignore[union-attr]
                re.DOTALL,
            )
        ]
        assert [cells[0], cells[1], *cells[3:8]] == expected, row
        assert cells[8] == version.tags[PROMOTION_TAG] != ""
    assert "answers with @champion v1" in text(page)


def test_prediction_form_is_generated_from_the_served_schema(ui_stack: UiStack) -> None:
    page = get(ui_stack, "/predict")
    inputs = re.findall(r'<input id="f-([^"]+)" name="([^"]+)"[^>]*type="(\w+)"', page)
    assert [(i, n) for i, n, _ in inputs] == [(f, f) for f in ui_stack.registry.features]
    kinds = {name: kind for name, _, kind in inputs}
    assert kinds == {
        f: "text" if f in CATEGORICAL else "number" for f in ui_stack.registry.features
    }
    assert "@champion is v1" in text(page)


@pytest.mark.parametrize("index", [0, -1])  # a churner (last sample rows) and a non-churner
def test_submitting_the_form_shows_the_serving_api_answer(ui_stack: UiStack, index: int) -> None:
    registry = ui_stack.registry
    record = registry.records()[index]
    answer = api_predict(ui_stack, record)
    expected_class, expected_p = registry.expected("1", registry.rows.iloc[[index]])
    assert answer["predictions"][0]["prediction"] == expected_class[0]

    response = submit(ui_stack, form_data(record))
    assert response.status_code == 200, response.text[:2000]
    page = response.text
    assert element(page, 'id="prediction"') == str(expected_class[0])
    assert element(page, 'id="probability"') == f"{answer['predictions'][0]['probability']:.4f}"
    assert element(page, 'id="probability"') == f"{expected_p[0]:.4f}"
    assert element(page, 'id="model-version"') == "v1"
    assert element(page, 'id="alias"') == "@champion"
    # the form keeps what was submitted
    for name, value in form_data(record).items():
        assert f'name="{name}" value="{html.escape(value)}"' in page


def test_invalid_form_input_is_shown_per_field(ui_stack: UiStack) -> None:
    record = form_data(ui_stack.registry.records()[0])
    record["tenure_days"] = "abc"
    record["region"] = ""
    response = submit(ui_stack, record)
    assert response.status_code == 422
    page = response.text
    assert 'id="result"' not in page
    assert re.search(r'id="f-tenure_days"[^>]*class="invalid"', page, re.DOTALL)
    errors = [text(e) for e in re.findall(r'<div class="err">(.*?)</div>', page)]
    assert errors == ["required", "'abc' is not a number"]  # region comes before tenure_days


def test_unreachable_serving_api_is_reported(ui_stack: UiStack) -> None:
    app = create_app(
        ui_stack.project, MODEL, serving_url="http://127.0.0.1:9", tables=ui_stack.tables
    )
    with running_ui(app) as url:
        page = get(ui_stack, "/predict", base=url)
        assert "the serving API at http://127.0.0.1:9 is not reachable" in text(page)
        assert "<form" not in page
        models = get(ui_stack, "/models", base=url)
        assert element(models, 'id="champion-version"') == "version 1"  # the registry still works


def test_quality_page_shows_the_latest_run_per_table(
    ui_stack: UiStack, spark: SparkSession
) -> None:
    name = system_table_name(ui_stack.project.catalog.name, SystemTable.DQ_RESULTS)
    df = ui_stack.tables.read(name)
    latest = df.groupBy("table").agg(F.max("evaluated_at").alias("evaluated_at"))
    rows = df.join(latest, ["table", "evaluated_at"]).orderBy("table", "rule").collect()
    assert rows
    page = get(ui_stack, "/quality")
    tables = re.findall(r'<h2 id="dq-([^"]+)">', page)
    assert tables == sorted({r["table"] for r in rows})
    shown = [
        text(r) for r in re.findall(r"<tr(?: class=\"alert\")?>\s*(<td>.*?)</tr>", page, re.DOTALL)
    ]
    assert shown == [
        f"{r['rule']} {r['expectation']} {r['action']} {r['evaluated']:,} {r['failed']:,} "
        f"{r['pass_rate']:.2%} {r['outcome']}"
        for r in rows
    ]


def test_drift_page_charts_psi_per_feature_with_alerts(ui_stack: UiStack) -> None:
    page = get(ui_stack, "/drift")
    charts = re.findall(
        r'<div class="chart( alert)?" data-feature="([^"]+)">(.*?)</div>', page, re.DOTALL
    )
    # the feature alerting in the latest run comes first
    assert [(bool(a), f) for a, f, _ in charts] == [(True, "tenure_days"), (False, "total_spend")]
    tenure, spend = charts[0][2], charts[1][2]
    assert tenure.startswith("<svg") and spend.startswith("<svg")
    assert ">tenure_days<" in tenure and f"threshold {PSI_THRESHOLD:g}" in tenure
    assert "#c62828" in tenure and "#c62828" not in spend  # alert points in red
    last = T0 + dt.timedelta(days=2)
    latest = re.search(r"<h2>Latest monitoring run(.*?)</h2>", page, re.DOTALL)
    assert latest is not None and text(latest.group(1)) == f"mon-2 · {last:%Y-%m-%d %H:%M} 1 alert"
    results = re.findall(r"<tr( class=\"alert\")?>\s*<td>(.*?)</tr>", page, re.DOTALL)
    assert [(bool(a), text("<td>" + r).split()[:4]) for a, r in results] == [
        (True, ["drift", "tenure_days", "psi", f"{PSI['tenure_days'][2]:.4g}"]),
        (False, ["drift", "total_spend", "psi", f"{PSI['total_spend'][2]:.4g}"]),
        (False, ["quality", "customers_valid_email", "pass_rate", "0.97"]),
    ]


def test_drift_page_without_a_monitoring_table(ui_stack: UiStack) -> None:
    page = get(ui_stack, "/drift", base=ui_stack.bare_ui_url)
    assert element(page, 'id="no-monitoring"') == (
        f"No monitoring results yet for {NAME} (no table "
        f"{ui_stack.project.catalog.name}.meta.model_monitoring; run the monitoring job)."
    )
    assert "<svg" not in page


def test_lineage_page_shows_the_picture(ui_stack: UiStack) -> None:
    page = get(ui_stack, "/lineage")
    options = re.findall(r'<option value="([^"]+)"( selected)?>', page)
    assert ("lakehouse.gold.customer_features", " selected") in options
    assert {"lakehouse.silver.customers", "lakehouse.silver.orders"} <= {o for o, _ in options}
    picture = re.search(r'<div class="picture" id="lineage-picture">(.*?)</div>', page, re.DOTALL)
    assert picture is not None and picture.group(1).startswith("<svg")
    for node in (
        "lakehouse.silver.customers",
        "lakehouse.silver.orders",
        "lakehouse.gold.customer_features",
    ):
        assert f"<title>{node}</title>" in picture.group(1)
    orders = get(ui_stack, "/lineage?table=lakehouse.silver.orders")
    assert "<title>lakehouse.gold.daily_sales</title>" in orders
    missing = get(ui_stack, "/lineage?table=lakehouse.gold.nope")
    assert element(missing, 'id="no-lineage"').startswith(
        "No lineage recorded for lakehouse.gold.nope"
    )
