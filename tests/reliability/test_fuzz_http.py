"""Generated requests (schemathesis) against the real serving API and the UI's forms.

The serving API's own OpenAPI document drives ``POST /predict`` and MLflow's ``POST
/invocations`` (JSON in its four shapes, CSV, Parquet): valid records (positive mode, numbers
inside the advertised bounds) must be answered 200 and logged, invalid ones (negative mode:
wrong types, missing and unknown fields, out-of-range numbers) 4xx. The served model looks its
features up by ``customer_id``, so a record may carry the key alone: most generated keys are
swapped for keys the feature table has (:func:`known_keys`), the rest answer 404. CSV bodies for
``/invocations`` come from a Hypothesis strategy of their own (valid tables, any cells, cut
bodies), since the document can only call CSV a string. The UI's
forms are described by a small OpenAPI document built here from the served input schema
(the UI reads its form body itself, so its own document has none): ``POST /predict`` (the
prediction form, sent with the session's CSRF token) and ``GET /lineage?table=`` (the table
picker). Every answer must be below 500, and the prediction log must hold exactly one strict
JSON line (no ``NaN`` / ``Infinity`` tokens) per record answered 200.

Bounded and deterministic: ``derandomize=True``, no example database, ``MAX_EXAMPLES`` per
mode and operation (900 cases, about a minute once the model is trained). The counts per
status are printed (``-s``).
"""

from __future__ import annotations

import json
import re
import string
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from schemathesis import GenerationMode

from lakehouse.apps.serving.app import create_app as create_serving_app
from lakehouse.apps.serving.schemas import MAX_ABS_NUMBER
from lakehouse.apps.serving.server import running_server
from lakehouse.apps.ui.app import create_app as create_ui_app
from lakehouse.apps.ui.server import running_ui
from lakehouse.io.delta import DeltaStore
from tests.apps.serving.conftest import CATEGORICAL, MODEL, Registry, registry  # noqa: F401
from tests.pipelines.ml.conftest import churn_project  # noqa: F401  (fixture)
from tests.support import session_engine

MAX_EXAMPLES = 100
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Stack:
    serving_url: str
    ui_url: str
    log_dir: Path
    flush_log: Callable[[], object]
    features: list[str]
    keys: list[str]  # customer ids with a row in the feature table


@dataclass
class Tally:
    """Answers per status class for one operation and generation mode."""

    statuses: Counter[int] = field(default_factory=Counter)
    records_answered: int = 0
    seconds: float = 0.0

    def row(self) -> dict[str, int]:
        return {
            "cases": sum(self.statuses.values()),
            "2xx": sum(n for s, n in self.statuses.items() if s < 300),
            "4xx": sum(n for s, n in self.statuses.items() if 400 <= s < 500),
            "5xx": sum(n for s, n in self.statuses.items() if s >= 500),
            "ms_per_case": round(1000 * self.seconds / max(1, sum(self.statuses.values()))),
            **{str(s): n for s, n in self.statuses.items()},
        }


@pytest.fixture(scope="module")
def stack(
    spark: SparkSession,
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("fuzz") / "predictions"
    serving = create_serving_app(
        registry.project, MODEL, log_dir=log_dir, challenger_share=0.5, seed=11
    )
    tables = DeltaStore(spark, registry.project, session_engine(spark))
    with running_server(serving) as serving_url:
        ui = create_ui_app(registry.project, MODEL, serving_url=serving_url, tables=tables)
        with running_ui(ui) as ui_url:
            yield Stack(
                serving_url,
                ui_url,
                log_dir,
                serving.state.prediction_log.flush,
                registry.features,
                sorted({str(c) for c in registry.rows["customer_id"]}),
            )


def strict_lines(directory: Path) -> list[dict[str, Any]]:
    """Every prediction log line, parsed as strict JSON (NaN / Infinity tokens refused)."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"the prediction log holds the non-JSON token {token}")

    return [
        json.loads(line, parse_constant=refuse)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def known_keys(keys: list[str]) -> Callable[[Any], Any]:
    """A case with most generated ``customer_id`` values swapped for ones the feature table
    has (chosen by a checksum of the generated value: deterministic), so key lookups are
    answered too; the others stay unknown (404)."""

    def known(value: Any) -> Any:
        digest = zlib.crc32(repr(value).encode())
        if value is not None and digest % 4:
            return keys[digest % len(keys)]
        return value

    def swap(body: Any) -> Any:
        if isinstance(body, list):
            return [swap(item) for item in body]
        if not isinstance(body, dict):
            return body
        out = {k: known(v) if k == "customer_id" else swap(v) for k, v in body.items()}
        columns, data = body.get("columns"), body.get("data")  # dataframe_split
        if isinstance(columns, list) and "customer_id" in columns and isinstance(data, list):
            at = columns.index("customer_id")
            out["data"] = [
                [known(v) if i == at else v for i, v in enumerate(row)]
                if isinstance(row, list)
                else row
                for row in data
            ]
        return out

    def case_with_known_keys(case: Any) -> Any:
        case.body = swap(case.body)
        return case

    return case_with_known_keys


def fuzz(
    operation: Any,
    mode: GenerationMode,
    call: Callable[[Any], httpx.Response | Any],
    prepare: Callable[[Any], Any] = lambda case: case,
) -> Tally:
    """Run ``MAX_EXAMPLES`` generated cases of ``operation`` (``prepare``-d) through ``call``;
    no 5xx allowed."""
    tally = Tally()

    @SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode).map(prepare))
    def one(case: Any) -> None:
        response = call(case)
        tally.statuses[response.status_code] += 1
        tally.seconds += float(response.elapsed)  # seconds
        assert response.status_code < 500, (case.body, case.headers, response.text[:1000])
        if response.status_code == 200 and "predictions" in (response.text or ""):
            tally.records_answered += len(response.json()["predictions"])

    one()
    return tally


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_generated_scoring_requests_never_get_5xx_and_the_log_stays_json(
    stack: Stack, path: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.serving_url}/openapi.json")
    operation = schema[path]["POST"]
    stack.flush_log()
    logged_before = len(strict_lines(stack.log_dir))
    results = {
        mode.value: fuzz(
            operation,
            mode,
            lambda case: case.call(base_url=stack.serving_url, timeout=60),
            known_keys(stack.keys),
        )
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    }
    print(f"\n{path}", {mode: tally.row() for mode, tally in results.items()})
    positive, negative = results["positive"].row(), results["negative"].row()
    assert positive["cases"] >= MAX_EXAMPLES // 2 and negative["cases"] >= MAX_EXAMPLES // 2
    assert positive["5xx"] == negative["5xx"] == 0
    assert positive["2xx"] > 0 and negative["4xx"] > 0
    stack.flush_log()
    lines = strict_lines(stack.log_dir)
    # one line per record answered: nothing refused was logged, nothing answered was lost
    assert len(lines) - logged_before == sum(t.records_answered for t in results.values())


# any cell: numbers of every size, text, pandas' missing markers, non-finite spellings
ANY_CELL = st.one_of(
    st.none(),
    st.floats(),
    st.integers(),
    st.text(max_size=8),
    st.sampled_from(["inf", "-Infinity", "nan", "NA", "1e308", "north", "basic", ""]),
)


@st.composite
def csv_bodies(draw: st.DrawFn, features: list[str]) -> bytes:
    """A CSV body: a valid table of the model's inputs, or any cells under any columns, and
    now and then cut short (a ragged or truncated body)."""
    rows = draw(st.integers(min_value=1, max_value=5))
    if draw(st.booleans()):
        columns = features
        text = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10)
        number = st.floats(min_value=-1e6, max_value=1e6)
        table = [
            {c: draw(text if c in CATEGORICAL else number) for c in columns} for _ in range(rows)
        ]
    else:
        names = st.sampled_from([*features, "customer_id", "other"])
        columns = draw(st.lists(names, unique=True, max_size=len(features) + 2))
        table = [{c: draw(ANY_CELL) for c in columns} for _ in range(rows)]
    body = pd.DataFrame(table, columns=columns).to_csv(index=False)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        body = body[: draw(st.integers(min_value=0, max_value=len(body)))]
    return body.encode()


def test_generated_csv_invocations_never_get_5xx(stack: Stack) -> None:
    stack.flush_log()
    logged_before = len(strict_lines(stack.log_dir))
    tally = Tally()

    @SETTINGS
    @given(body=csv_bodies(stack.features))
    def one(body: bytes) -> None:
        response = httpx.post(
            f"{stack.serving_url}/invocations",
            content=body,
            headers={"content-type": "text/csv"},
            timeout=60,
        )
        tally.statuses[response.status_code] += 1
        tally.seconds += response.elapsed.total_seconds()
        assert response.status_code < 500, (body[:1000], response.text[:1000])
        if response.status_code == 200:
            tally.records_answered += len(response.json()["predictions"])

    one()
    row = tally.row()
    print("\n/invocations text/csv", row)
    assert row["cases"] >= MAX_EXAMPLES // 2 and row["5xx"] == 0
    assert row["2xx"] > 0 and row["4xx"] > 0
    stack.flush_log()
    assert len(strict_lines(stack.log_dir)) - logged_before == tally.records_answered


def ui_form_schema(stack: Stack) -> dict[str, Any]:
    """An OpenAPI document of the UI's two forms, from the served input schema."""
    bound = MAX_ABS_NUMBER
    text = {"type": "string", "minLength": 1, "maxLength": 40, "pattern": r"\S"}
    number = {"type": "number", "minimum": -bound, "maximum": bound}
    fields = {name: text if name in CATEGORICAL else number for name in stack.features}
    return {
        "openapi": "3.0.3",
        "info": {"title": "lakehouse UI forms", "version": "1"},
        "paths": {
            "/predict": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": fields,
                                    "required": list(fields),
                                }
                            }
                        },
                    },
                    "responses": {"200": {"description": "the form with its answer"}},
                }
            },
            "/lineage": {
                "get": {
                    "parameters": [{"name": "table", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "the lineage page"}},
                }
            },
        },
    }


def test_generated_ui_form_posts_never_get_5xx(stack: Stack) -> None:
    schema = schemathesis.openapi.from_dict(ui_form_schema(stack))
    with httpx.Client(base_url=stack.ui_url, timeout=60) as browser:
        page = browser.get("/predict")
        found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert found, page.text[:2000]
        session = dict(browser.cookies)

    def with_token(case: Any) -> Any:
        if isinstance(case.body, dict):  # past the CSRF check, into the form handling
            case.body = {**case.body, "csrf_token": found.group(1)}
        return case.call(base_url=stack.ui_url, cookies=session, timeout=60)

    results = {
        f"{path} {mode.value}": fuzz(schema[path][method], mode, with_token)
        for path, method in (("/predict", "POST"), ("/lineage", "GET"))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    }
    print("\nUI forms", {name: tally.row() for name, tally in results.items()})
    assert all(t.row()["5xx"] == 0 for t in results.values())
    assert results["/predict positive"].row()["2xx"] > 0  # valid forms reach the model
    assert results["/predict negative"].row()["4xx"] > 0
    stack.flush_log()
    assert strict_lines(stack.log_dir)  # what the UI sent on was logged as strict JSON
