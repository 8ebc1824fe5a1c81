"""Micro-batching behind ``POST /predict``: real uvicorn, real registry, concurrent clients."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from lakehouse.apps.serving.app import ModelServer, create_app
from lakehouse.apps.serving.schemas import input_frame
from lakehouse.apps.serving.server import running_server
from tests.apps.serving.conftest import MODEL, Registry


def _unbatched(server: ModelServer, alias: str, records: list[dict[str, Any]]) -> list[Any]:
    """What each record gets when it is predicted alone, without a batcher."""
    batcher, server.batcher = server.batcher, None
    try:
        out = []
        for record in records:
            outputs = server.predict(server.served[alias], [record])
            assert outputs.probability is not None  # the demo models are binary
            out.append((int(outputs.prediction[0]), float(outputs.probability[0])))
        return out
    finally:
        server.batcher = batcher


def _same(answer: dict[str, Any], expected: tuple[int, float]) -> None:
    """The answer a record gets alone: the same class, the same probability up to the last
    bits a linear model's matrix product (BLAS) may round differently in a batch."""
    assert answer["prediction"] == expected[0]
    np.testing.assert_array_max_ulp(
        np.array([answer["probability"]]), np.array([expected[1]]), maxulp=4
    )


def _post_all(url: str, bodies: list[dict[str, Any]], threads: int = 16) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with (
        httpx.Client(base_url=url, limits=limits, timeout=60) as http,
        ThreadPoolExecutor(threads) as pool,
    ):
        return list(pool.map(lambda body: http.post("/predict", json=body), bodies))


def test_concurrent_requests_share_model_calls_and_get_their_unbatched_answers(
    registry: Registry, tmp_path: Path
) -> None:
    records = registry.records()
    app = create_app(
        registry.project, MODEL, log_dir=tmp_path / "predictions", challenger_share=0.5, seed=7
    )
    server = app.state.model_server
    assert set(server.served) == {"champion", "challenger"}
    expected = {alias: _unbatched(server, alias, records) for alias in server.served}
    # the two versions answer differently: a request routed to one alias but batched with
    # the other's would get the wrong probability
    assert [p for _, p in expected["champion"]] != [p for _, p in expected["challenger"]]
    order = [i % len(records) for i in range(4 * len(records))]
    with running_server(app) as url:
        responses = _post_all(url, [{"record": records[i]} for i in order])
        health = httpx.get(f"{url}/health").json()
    routed = {"champion": 0, "challenger": 0}
    for i, response in zip(order, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        answer = body["predictions"][0]
        routed[body["alias"]] += 1
        # the unbatched answer of the version that answered (JSON floats round-trip)
        _same(answer, expected[body["alias"]][i])
    assert min(routed.values()) > 0.3 * len(order)  # both aliases got traffic
    batching = health["batching"]
    assert batching["calls"] == len(order)
    assert batching["largest_batch"] > 1 and batching["batches"] < batching["calls"]


def test_a_failing_request_gets_a_clean_500_and_its_batch_mates_their_answers(
    registry: Registry, tmp_path: Path
) -> None:
    records = registry.records()[:30]
    app = create_app(
        registry.project, MODEL, log_dir=tmp_path / "predictions", refresh_seconds=60.0
    )
    server = app.state.model_server
    champion = server.served["champion"]
    expected = _unbatched(server, "champion", records)

    def refuse_poison(frame: pd.DataFrame) -> pd.DataFrame:
        if (frame["plan"] == "poison").any():
            raise ValueError("plan 'poison' is not servable")
        return frame

    # the served pipeline with a real first step that fails on one category
    check = FunctionTransformer(refuse_poison).fit(input_frame(records, server.columns))
    poisoned = Pipeline([("check", check), ("model", champion.model)])
    server.served = {"champion": dataclasses.replace(champion, model=poisoned)}
    bad = {3, 11, 20}
    bodies = [{"record": {**r, "plan": "poison"} if i in bad else r} for i, r in enumerate(records)]
    with running_server(app) as url:
        for _ in range(3):  # rounds, so poisoned requests share batches with good ones
            responses = _post_all(url, bodies)
            for i, response in enumerate(responses):
                if i in bad:
                    assert response.status_code == 500
                    body = response.json()
                    assert body["detail"] == (
                        "prediction failed: ValueError: plan 'poison' is not servable"
                    )
                    assert body["request_id"] == response.headers["X-Request-ID"]
                else:
                    assert response.status_code == 200, response.text
                    _same(response.json()["predictions"][0], expected[i])
        health = httpx.get(f"{url}/health").json()
    assert health["batching"]["split_after_error"] >= 1


def test_without_batching_each_request_calls_the_model(registry: Registry, tmp_path: Path) -> None:
    records = registry.records()[:20]
    app = create_app(registry.project, MODEL, log_dir=tmp_path / "predictions", max_batch=0)
    server = app.state.model_server
    assert server.batcher is None
    expected = _unbatched(server, "champion", records)
    with running_server(app) as url:
        responses = _post_all(url, [{"records": [r]} for r in records])
        health = httpx.get(f"{url}/health").json()
    got = [
        (r.json()["predictions"][0]["prediction"], r.json()["predictions"][0]["probability"])
        for r in responses
    ]
    assert got == expected
    assert health["batching"] is None


def test_a_batch_request_and_single_requests_agree(registry: Registry, tmp_path: Path) -> None:
    records = registry.records()
    app = create_app(registry.project, MODEL, log_dir=tmp_path / "predictions")
    server = app.state.model_server
    with running_server(app) as url, httpx.Client(base_url=url) as http:
        batch = http.post("/predict", json={"records": records}).json()["predictions"]
    singles = _unbatched(server, "champion", records)
    assert [p["prediction"] for p in batch] == [p for p, _ in singles]
    assert np.allclose(
        [p["probability"] for p in batch], [q for _, q in singles], rtol=0, atol=1e-12
    )
