"""The serving API under hostile input: non-finite and huge numbers, big bodies, foreign hosts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakehouse.apps.http_guard import allowed_hosts
from lakehouse.apps.serving.app import MAX_BODY_BYTES, create_app
from lakehouse.apps.serving.predictions import PredictionLog
from lakehouse.apps.serving.schemas import MAX_ABS_NUMBER, MAX_RECORDS
from lakehouse.apps.serving.server import running_server
from lakehouse.core.errors import LakehouseError
from tests.apps.serving.conftest import CATEGORICAL, MODEL, Registry

# a number as raw JSON text: what the probe sent (JSON tokens, strings, huge values)
BAD_NUMBERS = {
    "1e308": "1e308",
    "1.7e308": "1.7e308",
    "-1e308": "-1e308",
    "1e16": "1e16",
    "1e400 (overflows to inf)": "1e400",
    "Infinity token": "Infinity",
    "-Infinity token": "-Infinity",
    "NaN token": "NaN",
    '"inf"': '"inf"',
    '"-inf"': '"-inf"',
    '"Infinity"': '"Infinity"',
    '"nan"': '"nan"',
}
REFUSED = {"finite_number", "greater_than_equal", "less_than_equal"}


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses the NaN / Infinity tokens (not JSON)."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def log_lines(directory: Path) -> list[dict[str, Any]]:
    return [
        strict_json(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def with_raw(body: dict[str, Any], raw: str) -> bytes:
    """``body`` as JSON with the placeholder string ``"__X__"`` replaced by ``raw``."""
    return json.dumps(body).replace('"__X__"', raw).encode()


@pytest.fixture(scope="module")
def served(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A serving API that writes each prediction to its log at once; its URL and log folder."""
    log_dir = tmp_path_factory.mktemp("hardening") / "predictions"
    app = create_app(registry.project, MODEL, log_dir=log_dir, flush_records=1)
    with running_server(app) as url:
        yield url, log_dir


def test_non_finite_and_huge_numbers_get_422_and_are_not_logged(
    registry: Registry, served: tuple[str, Path]
) -> None:
    url, log_dir = served
    good = registry.records()[0]
    numbers = [f for f in registry.features if f not in CATEGORICAL]
    outcomes: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for name, raw in BAD_NUMBERS.items():
            for feature in numbers:
                for shape, body in (
                    ("record", {"record": {**good, feature: "__X__"}}),
                    ("records", {"records": [good, {**good, feature: "__X__"}]}),
                ):
                    response = http.post(
                        "/predict",
                        content=with_raw(body, raw),
                        headers={"content-type": "application/json"},
                    )
                    outcomes[f"{name} {feature} {shape}"] = response.status_code
                    assert response.status_code == 422, (name, feature, response.text)
                    detail = response.json()["detail"]
                    where = ["body", "record", feature] if shape == "record" else [
                        "body", "records", 1, feature
                    ]  # fmt: skip
                    assert [(e["loc"], e["type"] in REFUSED) for e in detail] == [(where, True)]
                    assert "finite" in detail[0]["msg"] or "equal to" in detail[0]["msg"]
    assert set(outcomes.values()) == {422}
    assert len(outcomes) == len(BAD_NUMBERS) * len(numbers) * 2
    assert not log_dir.exists()  # nothing refused was logged


def test_the_largest_allowed_numbers_are_served_and_logged_as_strict_json(
    registry: Registry, tmp_path: Path
) -> None:
    good = registry.records()[0]
    numbers = [f for f in registry.features if f not in CATEGORICAL]
    log_dir = tmp_path / "predictions"
    app = create_app(registry.project, MODEL, log_dir=log_dir, challenger_share=0.5, seed=3)
    extremes = [{**good, **{f: sign * MAX_ABS_NUMBER for f in numbers}} for sign in (1, -1)]
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(4):  # both versions (a scaled linear model and a tree) answer
            response = http.post("/predict", json={"records": extremes})
            assert response.status_code == 200, response.text
            for p in response.json()["predictions"]:
                assert 0.0 <= p["probability"] <= 1.0
        # a NaN sent in a request never reaches the log
        nan = http.post(
            "/predict",
            content=with_raw({"record": {**good, numbers[0]: "__X__"}}, "NaN"),
            headers={"content-type": "application/json"},
        )
        assert nan.status_code == 422
    lines = log_lines(log_dir)  # strict: no NaN / Infinity tokens
    assert len(lines) == 8
    assert {line["alias"] for line in lines} == {"champion", "challenger"}
    assert lines[0]["features"][numbers[0]] == MAX_ABS_NUMBER


def test_the_prediction_log_refuses_non_finite_numbers(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "out", flush_records=100)
    log.append([{"n": 1.5}])
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="JSON compliant"):
            log.append([{"n": 2.0}, {"features": {"x": bad}}])
    assert log.buffered == 1  # nothing of a refused batch was buffered
    path = log.flush()
    assert path is not None and [strict_json(x) for x in path.read_text().splitlines()] == [
        {"n": 1.5}
    ]


def test_a_body_over_the_limit_gets_413(registry: Registry, tmp_path: Path) -> None:
    record = registry.records()[0]
    app = create_app(registry.project, MODEL, log_dir=tmp_path / "p", max_body_bytes=4096)
    big = json.dumps({"records": [record] * 40}).encode()
    assert len(big) > 4096

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the bytes read
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/predict", json={"record": record}).status_code == 200
        too_big = http.post("/predict", content=big, headers={"content-type": "application/json"})
        assert too_big.status_code == 413, too_big.text
        chunked = http.post(
            "/predict", content=chunks(), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413, chunked.text
        assert http.get("/health").status_code == 200  # the server keeps serving
    with pytest.raises(LakehouseError, match="at least 1 byte"):
        create_app(registry.project, MODEL, log_predictions=False, max_body_bytes=0)


def test_the_default_body_limit_admits_the_largest_batch(registry: Registry) -> None:
    record = {"customer_id": "C" + "9" * 12, **registry.records()[0]}
    batch = json.dumps({"records": [record] * MAX_RECORDS}, indent=2).encode()
    assert len(batch) < MAX_BODY_BYTES, len(batch)
    app = create_app(registry.project, MODEL, log_predictions=False)
    with running_server(app) as url:
        response = httpx.post(
            f"{url}/predict",
            content=batch,
            headers={"content-type": "application/json"},
            timeout=120,
        )
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["predictions"]) == MAX_RECORDS


def test_only_loopback_and_configured_hosts_are_answered(registry: Registry) -> None:
    record = registry.records()[0]
    default = create_app(registry.project, MODEL, log_predictions=False)
    configured = create_app(
        registry.project,
        MODEL,
        log_predictions=False,
        hosts=allowed_hosts(["serving.internal", "*.corp.example"]),
    )
    with running_server(default) as url, running_server(configured) as other:
        port = url.rsplit(":", 1)[1]
        for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            response = httpx.post(f"{url}/predict", json={"record": record}, headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
        for host in ("evil.example", f"evil.example:{port}", "serving.internal", "127.0.0.2"):
            for method, path in (("GET", "/health"), ("POST", "/predict"), ("GET", "/docs")):
                response = httpx.request(
                    method, f"{url}{path}", json={"record": record}, headers={"Host": host}
                )
                assert response.status_code == 400, (host, path, response.text)
                assert response.text == "Invalid host header"
        for host in ("serving.internal", "a.corp.example:80", "localhost"):
            response = httpx.get(f"{other}/health", headers={"Host": host})
            assert response.status_code == 200, host
        assert httpx.get(f"{other}/health", headers={"Host": "corp.example"}).status_code == 400


def test_allowed_hosts_add_the_bind_address_and_refuse_ports() -> None:
    loopback = ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts() == loopback
    assert allowed_hosts(bind_host="0.0.0.0") == loopback
    assert allowed_hosts(bind_host="::") == loopback
    assert allowed_hosts(bind_host="10.0.0.5") == [*loopback, "10.0.0.5"]
    assert allowed_hosts(["fe80::1", "Serving.Internal"]) == [
        *loopback,
        "[fe80::1]",
        "serving.internal",
    ]
    for bad in ("serving.internal:8000", "http://serving.internal", "a.*.example", "*example"):
        with pytest.raises(LakehouseError, match="allowed host"):
            allowed_hosts([bad])
