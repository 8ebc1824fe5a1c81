"""MLflow's scoring protocol: ``lakehouse serve`` next to a real ``mlflow models serve``.

``mlflow models serve -m models:/churn_model/1 --env-manager local`` runs as a subprocess on a
free loopback port; the lakehouse app serves the same version (``@champion``). Both get the
same requests: every input format and content type, the bodies MLflow's own builders make,
MLflow's own client, and bad requests. Predictions, status codes and error codes must be
equal, except where the lakehouse server is deliberately stricter (``MLFLOW_ANSWERS``: the
input rules of ``/predict``), which this test also pins down.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow.models import Model
from mlflow.models.utils import convert_input_example_to_serving_input
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from mlflow.utils.proto_json_utils import dump_input_data

from lakehouse.apps.serving.app import create_app
from lakehouse.apps.serving.mlflow_protocol import ScoringError, ScoringParser
from lakehouse.apps.serving.schemas import MAX_RECORDS, InputColumn, record_model
from lakehouse.apps.serving.server import running_server
from lakehouse.pipelines.ml.registry import connect, tracking_uri
from lakehouse.pipelines.ml.train import model_input
from tests.apps.serving.conftest import CATEGORICAL, MODEL, NAME, Registry

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


@dataclass
class Servers:
    ours: str
    mlflow: str
    log_dir: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_models_serve(registry: Registry, version: str, log_path: Path) -> Iterator[str]:
    """``mlflow models serve`` of ``version`` on a free loopback port (own process group)."""
    port = free_port()
    bin_dir = Path(sys.executable).parent  # `mlflow models serve` runs `uvicorn` from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri(registry.project),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(bin_dir / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{NAME}/{version}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        try:  # MLflow's own client waits for /ping
            ScoringServerClient("127.0.0.1", port).wait_server_ready(180, process)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{log_path.read_text()[-3000:]}") from exc
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def servers(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Both servers on version 1; the lakehouse one writes each prediction to its log at once."""
    work = tmp_path_factory.mktemp("mlflow-protocol")
    log_dir = work / "predictions"
    app = create_app(registry.project, MODEL, log_dir=log_dir, flush_records=1)
    with (
        mlflow_models_serve(registry, "1", work / "mlflow-serve.log") as theirs,
        running_server(app) as ours,
    ):
        yield Servers(ours, theirs, log_dir)


def log_lines(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def post(url: str, body: bytes, content_type: str | None, **headers: str) -> httpx.Response:
    if content_type is not None:
        headers["content-type"] = content_type
    return httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=120)


def frame(registry: Registry) -> pd.DataFrame:
    """The sample rows as the model's input frame (what training and batch scoring feed it)."""
    return model_input(registry.rows, registry.features, CATEGORICAL)


def good_requests(registry: Registry) -> dict[str, tuple[bytes, str]]:
    """Every request shape MLflow's scoring server takes, for the same sample rows."""
    x = frame(registry)
    records = registry.records()
    features = registry.features
    columns = {c: [r[c] for r in records] for c in features}
    reordered = list(reversed(features))
    keyed = [
        {"customer_id": str(c), "note": "not an input", **r}
        for c, r in zip(registry.rows["customer_id"], records, strict=True)
    ]
    as_json: dict[str, Any] = {
        "dataframe_split": {"dataframe_split": x.to_dict(orient="split")},
        "dataframe_split without index": {
            "dataframe_split": {
                "columns": features,
                "data": [[r[c] for c in features] for r in records],
            }
        },
        "dataframe_split in another column order": {
            "dataframe_split": {
                "columns": reordered,
                "data": [[r[c] for c in reordered] for r in records],
            }
        },
        "dataframe_records": {"dataframe_records": records},
        "dataframe_records with other columns": {"dataframe_records": keyed},
        "instances as records": {"instances": records},
        "instances as columns": {"instances": columns},
        "inputs as records": {"inputs": records},
        "inputs as columns": {"inputs": columns},
        "with params": {"dataframe_records": records, "params": {"threshold": 0.3}},
        "with another top-level key": {"dataframe_records": records, "client": "x"},
    }
    out = {name: (json.dumps(body).encode(), JSON) for name, body in as_json.items()}
    split = json.dumps(as_json["dataframe_split"]).encode()
    out["json; charset=utf-8"] = (split, f"{JSON}; charset=utf-8")
    out["json;charset=UTF-8"] = (split, f"{JSON};charset=UTF-8")
    out["csv"] = (x.to_csv(index=False).encode(), CSV)
    out["csv with the index column"] = (x.to_csv().encode(), CSV)
    out["csv; charset=utf-8"] = (x.to_csv(index=False).encode(), f"{CSV}; charset=utf-8")
    out["parquet"] = (x.to_parquet(), PARQUET)
    # the bodies MLflow's own helpers build for a DataFrame
    out["mlflow convert_input_example_to_serving_input"] = (
        str(convert_input_example_to_serving_input(x)).encode(),
        JSON,
    )
    out["mlflow dump_input_data"] = (dump_input_data(x).encode(), JSON)
    out["mlflow dump_input_data with params"] = (
        dump_input_data(x, params={"threshold": 0.3}).encode(),
        JSON,
    )
    return out


def test_every_input_format_gets_the_same_predictions_as_mlflow_models_serve(
    registry: Registry, servers: Servers
) -> None:
    expected, _ = registry.expected("1")
    n = len(expected)
    logged_before = len(log_lines(servers.log_dir))
    requests = good_requests(registry)
    for name, (body, content_type) in requests.items():
        ours = post(servers.ours, body, content_type, **{"X-Request-ID": f"fmt-{name}"})
        theirs = post(servers.mlflow, body, content_type)
        assert theirs.status_code == 200, (name, theirs.text[:2000])
        assert ours.status_code == 200, (name, ours.text[:2000])
        assert ours.headers["content-type"] == JSON
        assert ours.json() == theirs.json() == {"predictions": expected}, name
        assert ours.headers["X-Request-ID"] == f"fmt-{name}"
    assert len(set(expected)) == 2  # both classes are exercised
    # one row, as an object of scalars
    one = json.dumps({"inputs": registry.records()[7]}).encode()
    assert post(servers.ours, one, JSON).json() == post(servers.mlflow, one, JSON).json()
    assert post(servers.ours, one, JSON).json() == {"predictions": [expected[7]]}
    # the example MLflow stored with the model (serving_input_example.json)
    connect(registry.project)  # the mlflow module on this registry
    local = mlflow.artifacts.download_artifacts(f"models:/{NAME}/1")
    example = Model.load(local).get_serving_input(local)
    assert example, "the model was logged without a serving input example"
    example_ours = post(servers.ours, example.encode(), JSON)
    assert example_ours.status_code == 200, example_ours.text
    assert example_ours.json() == post(servers.mlflow, example.encode(), JSON).json()
    # every answered row was logged once, with the request id of its request
    lines = log_lines(servers.log_dir)[logged_before:]
    assert len(lines) == n * len(requests) + 2 + len(example_ours.json()["predictions"])
    by_request = {line["request_id"] for line in lines}
    assert {f"fmt-{name}" for name in requests} <= by_request


def test_mlflow_clients_work_against_both_servers(registry: Registry, servers: Servers) -> None:
    expected, _ = registry.expected("1")
    x = frame(registry)
    answers = {}
    for name, url in (("ours", servers.ours), ("mlflow", servers.mlflow)):
        parts = urlsplit(url)
        client = ScoringServerClient(parts.hostname, parts.port)
        client.ping()
        answers[name] = (
            client.get_version(),
            client.invoke(x).get_predictions(predictions_format="ndarray").tolist(),
            client.invoke(x, params={"threshold": 0.3})["predictions"],
        )
    assert answers["ours"] == answers["mlflow"]
    assert answers["ours"][0] == mlflow.__version__
    assert answers["ours"][1] == answers["ours"][2] == expected
    for path in ("/ping", "/version"):
        ours, theirs = httpx.get(servers.ours + path), httpx.get(servers.mlflow + path)
        assert (ours.status_code, ours.text) == (theirs.status_code, theirs.text), path
    assert httpx.get(servers.ours + "/health").json()["status"] == "ok"  # unchanged


@dataclass(frozen=True)
class Bad:
    body: bytes
    content_type: str | None = JSON


def bad_requests(registry: Registry) -> dict[str, Bad]:
    """Requests MLflow's scoring server refuses (or that this server refuses, see below)."""
    records = registry.records()
    good = records[0]
    features = registry.features
    without = [{k: v for k, v in r.items() if k != "tenure_days"} for r in records[:3]]
    x = frame(registry).head(3)

    def js(body: Any) -> bytes:
        return json.dumps(body).encode()

    def raw(good_body: dict[str, Any], text: str) -> bytes:  # "__X__" replaced by raw JSON
        return js(good_body).replace(b'"__X__"', text.encode())

    rows_as_lists = [[r[c] for c in features] for r in records[:3]]
    ragged_columns = {c: [good[c]] * (2 if i == 0 else 1) for i, c in enumerate(features)}
    missing_value = x.copy().astype(object)
    missing_value.loc[1, "tenure_days"] = None
    return {
        "malformed JSON": Bad(b"{not json"),
        "invalid UTF-8": Bad(b'{"dataframe_records": [{"region": "\xff"}]}'),
        "a JSON list": Bad(js([good])),
        "a JSON number": Bad(js(3)),
        "no format key": Bad(js({})),
        "an unknown format key": Bad(js({"rows": [good]})),
        "two format keys": Bad(js({"dataframe_records": [good], "instances": [good]})),
        "the pre-2.0 split shape": Bad(js({"columns": features, "data": rows_as_lists})),
        "dataframe_split not an object": Bad(js({"dataframe_split": [good]})),
        "dataframe_split without data": Bad(js({"dataframe_split": {"columns": features}})),
        "dataframe_split with another key": Bad(
            js({"dataframe_split": {"columns": features, "data": rows_as_lists, "dtypes": {}}})
        ),
        "dataframe_split rows of the wrong length": Bad(
            js(
                {
                    "dataframe_split": {
                        "columns": features,
                        "data": [row[:3] for row in rows_as_lists],
                    }
                }
            )
        ),
        "dataframe_records not a list": Bad(js({"dataframe_records": good})),
        "a required column missing": Bad(js({"dataframe_records": without})),
        "rows as lists (dataframe_records)": Bad(js({"dataframe_records": rows_as_lists})),
        "rows as lists (instances)": Bad(js({"instances": rows_as_lists})),
        "rows as lists (inputs)": Bad(js({"inputs": rows_as_lists})),
        "inputs a scalar": Bad(js({"inputs": 3})),
        "no rows (dataframe_records)": Bad(js({"dataframe_records": []})),
        "instances columns of different lengths": Bad(js({"instances": ragged_columns})),
        "inputs columns of different lengths": Bad(js({"inputs": ragged_columns})),
        "text in a number column": Bad(
            js({"dataframe_records": [good, {**good, "tenure_days": "many"}]})
        ),
        "an LLM chat request": Bad(js({"messages": [{"role": "user", "content": "hi"}]})),
        "format=pandas-split": Bad(
            js({"dataframe_records": [good]}), f"{JSON}; format=pandas-split"
        ),
        "charset=latin-1": Bad(js({"dataframe_records": [good]}), f"{JSON}; charset=latin-1"),
        "text/plain": Bad(js({"dataframe_records": [good]}), "text/plain"),
        "CSV without a required column": Bad(x.drop(columns="tenure_days").to_csv().encode(), CSV),
        "CSV with text in a number column": Bad(
            x.astype(object).assign(tenure_days="many").to_csv().encode(), CSV
        ),
        "CSV with ragged rows": Bad(b"a,b\n1,2,3,4\n", CSV),
        "an empty CSV": Bad(b"", CSV),
        "CSV that is not UTF-8": Bad(b"region\n\xff\n", CSV),
        "not Parquet": Bad(b"PAR1 not really", PARQUET),
        # stricter than MLflow: the input rules of /predict (MLFLOW_ANSWERS)
        "no content type": Bad(js({"dataframe_records": [good]}), None),
        "a NaN token": Bad(raw({"dataframe_records": [{**good, "tenure_days": "__X__"}]}, "NaN")),
        "an Infinity token": Bad(
            raw({"dataframe_records": [{**good, "total_spend": "__X__"}]}, "Infinity")
        ),
        "1e308": Bad(raw({"dataframe_records": [{**good, "total_spend": "__X__"}]}, "1e308")),
        'the string "inf"': Bad(js({"dataframe_records": [{**good, "total_spend": "inf"}]})),
        "null in a required column": Bad(
            js({"dataframe_records": [{**good, "tenure_days": None}]})
        ),
        "a number for a text column": Bad(js({"dataframe_records": [{**good, "region": 3}]})),
        "CSV with inf": Bad(x.assign(total_spend=float("inf")).to_csv().encode(), CSV),
        "CSV with a missing value in a required column": Bad(missing_value.to_csv().encode(), CSV),
        "more rows than MAX_RECORDS": Bad(js({"dataframe_records": [good] * (MAX_RECORDS + 1)})),
    }


# What MLflow answers where this server is stricter (every other case: the same as ours).
# MLflow passes these values to the model: the pipeline imputes a NaN or null, scales 1e308,
# one-hot encodes 3 as an unknown region, and predicts any number of rows. An Infinity token,
# "inf" and a CSV inf also reach the model there, which fails on them: 400, as here.
# Without a content type MLflow fails with AttributeError (None.split): 500.
OK = (200, None)
MLFLOW_ANSWERS: dict[str, tuple[int, str | None]] = {
    "no content type": (500, None),
    "a NaN token": OK,
    "1e308": OK,
    "null in a required column": OK,
    "a number for a text column": OK,
    "CSV with a missing value in a required column": OK,
    "more rows than MAX_RECORDS": OK,
}

BAD, INVALID = (400, "BAD_REQUEST"), (400, "INVALID_PARAMETER_VALUE")
UNSUPPORTED = (415, None)  # a plain-text body
# What this server answers: (status, error_code)
OURS: dict[str, tuple[int, str | None]] = {
    "malformed JSON": BAD,
    "invalid UTF-8": BAD,
    "a JSON list": BAD,
    "a JSON number": BAD,
    "no format key": BAD,
    "an unknown format key": BAD,
    "two format keys": BAD,
    "the pre-2.0 split shape": BAD,
    "dataframe_split not an object": BAD,
    "dataframe_split without data": BAD,
    "dataframe_split with another key": BAD,
    "dataframe_split rows of the wrong length": BAD,
    "dataframe_records not a list": BAD,
    "a required column missing": INVALID,
    "rows as lists (dataframe_records)": INVALID,
    "rows as lists (instances)": INVALID,
    "rows as lists (inputs)": INVALID,
    "inputs a scalar": INVALID,
    "no rows (dataframe_records)": INVALID,
    "instances columns of different lengths": BAD,
    "inputs columns of different lengths": INVALID,
    "text in a number column": BAD,
    "an LLM chat request": INVALID,
    "format=pandas-split": UNSUPPORTED,
    "charset=latin-1": UNSUPPORTED,
    "text/plain": UNSUPPORTED,
    "CSV without a required column": INVALID,
    "CSV with text in a number column": BAD,
    "CSV with ragged rows": INVALID,
    "an empty CSV": BAD,
    "CSV that is not UTF-8": BAD,
    "not Parquet": BAD,
    "no content type": UNSUPPORTED,
    "a NaN token": BAD,
    "an Infinity token": BAD,
    "1e308": BAD,
    'the string "inf"': BAD,
    "null in a required column": BAD,
    "a number for a text column": BAD,
    "CSV with inf": BAD,
    "CSV with a missing value in a required column": BAD,
    "more rows than MAX_RECORDS": BAD,
}


def error_code(response: httpx.Response) -> str | None:
    """The ``error_code`` of an MLflow error body (None for an answer without one)."""
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(JSON):
        return str(response.json()["error_code"])
    return None


def test_bad_requests_get_the_same_status_and_error_code_as_mlflow(
    registry: Registry, servers: Servers
) -> None:
    logged_before = len(log_lines(servers.log_dir))
    answers = {}
    for name, bad in bad_requests(registry).items():
        ours = post(servers.ours, bad.body, bad.content_type)
        theirs = post(servers.mlflow, bad.body, bad.content_type)
        answers[name] = (
            (ours.status_code, error_code(ours)),
            (theirs.status_code, error_code(theirs)),
        )
        assert ours.status_code < 500, (name, ours.text[:2000])
        if ours.status_code == 415:
            assert ours.headers["content-type"].startswith("text/plain"), name
        else:
            assert ours.status_code == 400, (name, ours.text[:2000])
            body = ours.json()
            assert set(body) <= {"error_code", "message", "error_class"}, name
            assert body["message"], name
    print("\n" + "\n".join(f"{n}: ours {a[0]}, mlflow {a[1]}" for n, a in answers.items()))
    assert {n: a[0] for n, a in answers.items()} == {n: OURS[n] for n in answers}
    mlflow_expected = {n: MLFLOW_ANSWERS.get(n, OURS[n]) for n in answers}
    assert {n: a[1] for n, a in answers.items()} == mlflow_expected
    # nothing refused was logged
    assert len(log_lines(servers.log_dir)) == logged_before


def test_invocations_are_routed_logged_and_guarded_like_predict(
    registry: Registry, tmp_path: Path
) -> None:
    records = registry.records()
    ids = [str(c) for c in registry.rows["customer_id"]]
    expected = {v: registry.expected(v)[0] for v in ("1", "2")}
    log_dir = tmp_path / "predictions"
    app = create_app(
        registry.project, MODEL, log_dir=log_dir, challenger_share=0.5, seed=5, flush_records=1
    )
    with running_server(app) as url:
        for i in range(12):
            body = json.dumps(
                {
                    "dataframe_records": [
                        {"customer_id": ids[j], **records[j]} for j in range(i, i + 3)
                    ]
                }
            ).encode()
            response = post(url, body, JSON, **{"X-Request-ID": f"ab-{i}"})
            assert response.status_code == 200, response.text
            assert response.headers["X-Request-ID"] == f"ab-{i}"
            lines = [line for line in log_lines(log_dir) if line["request_id"] == f"ab-{i}"]
            # one version answered the whole request, and the log says which
            assert len({(line["alias"], line["model_version"]) for line in lines}) == 1
            version = lines[0]["model_version"]
            assert response.json()["predictions"] == expected[version][i : i + 3]
            assert [line["prediction"] for line in lines] == expected[version][i : i + 3]
            assert [line["keys"] for line in lines] == [
                {"customer_id": ids[j]} for j in range(i, i + 3)
            ]
            assert [line["features"] for line in lines] == records[i : i + 3]
            assert [line["record_index"] for line in lines] == [0, 1, 2]
        assert {line["alias"] for line in log_lines(log_dir)} == {"champion", "challenger"}
        # a foreign Host header is refused before the route runs
        body = json.dumps({"dataframe_records": records[:1]}).encode()
        foreign = post(url, body, JSON, Host="evil.example")
        assert (foreign.status_code, foreign.text) == (400, "Invalid host header")
        assert httpx.get(url + "/ping", headers={"Host": "evil.example"}).status_code == 400

    small = create_app(registry.project, MODEL, log_predictions=False, max_body_bytes=4096)
    big = json.dumps({"dataframe_records": records * 3}).encode()
    assert len(big) > 4096
    with running_server(small) as url:
        assert (
            post(url, json.dumps({"dataframe_records": records[:2]}).encode(), JSON).status_code
            == 200
        )
        assert post(url, big, JSON).status_code == 413
        assert post(url, frame(registry).to_csv().encode() * 3, CSV).status_code == 413


def test_the_openapi_document_describes_invocations(registry: Registry, servers: Servers) -> None:
    spec = httpx.get(servers.ours + "/openapi.json").json()
    operation = spec["paths"]["/invocations"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {JSON, CSV, PARQUET}
    shapes = content[JSON]["schema"]["oneOf"]
    assert [next(k for k in s["required"]) for s in shapes] == [
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs",
    ]
    row = shapes[1]["properties"]["dataframe_records"]["items"]
    assert list(row["properties"]) == registry.features
    assert "additionalProperties" not in row  # other columns are ignored, as MLflow does
    assert {"/ping", "/version", "/predict"} <= set(spec["paths"])


def test_databricks_clients_reach_the_serving_endpoints_path(
    registry: Registry, servers: Servers
) -> None:
    from databricks.sdk import WorkspaceClient

    expected, _ = registry.expected("1")
    records = registry.records()
    # the Databricks SDK posts to /serving-endpoints/{name}/invocations; no token is checked
    client = WorkspaceClient(host=servers.ours, token="not-checked", auth_type="pat")
    for name in (NAME, MODEL):
        answer = client.serving_endpoints.query(name, dataframe_records=records)
        assert answer.predictions == expected, name
    split = frame(registry).to_dict(orient="split")
    body = json.dumps({"dataframe_split": split, "client_request_id": "r-1"}).encode()
    response = httpx.post(
        f"{servers.ours}/serving-endpoints/{NAME}/invocations",
        content=body,
        headers={"content-type": JSON},
    )
    assert response.json() == {"predictions": expected}
    unknown = httpx.post(
        f"{servers.ours}/serving-endpoints/other/invocations",
        content=body,
        headers={"content-type": JSON},
    )
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


COLUMNS = (
    InputColumn("region", "string", True),
    InputColumn("plan", "string", False),
    InputColumn("tenure_days", "number", True),
)


def test_the_parser_reads_every_shape_into_the_same_validated_records() -> None:
    parser = ScoringParser(COLUMNS, ("customer_id",), record_model("m", COLUMNS), max_records=3)
    want = [
        {"region": "west", "plan": None, "tenure_days": 3.0},
        {"region": "east", "plan": "pro", "tenure_days": 4.5},
    ]
    records = [
        {"customer_id": "C1", "region": "west", "tenure_days": 3, "other": [1]},
        {"customer_id": 7, "region": "east", "plan": "pro", "tenure_days": "4.5"},
    ]
    columns = {"region": ["west", "east"], "plan": [None, "pro"], "tenure_days": [3, 4.5]}
    bodies: dict[str, Any] = {
        "split": {
            "dataframe_split": {
                "columns": ["tenure_days", "region", "plan"],
                "data": [[3, "west", None], [4.5, "east", "pro"]],
                "index": [10, 11],
            }
        },
        "records": {"dataframe_records": records, "params": {"k": 1}},
        "instances as records": {"instances": records},
        "instances as columns": {"instances": columns},
        "inputs as columns": {"inputs": columns},
    }
    for name, body in bodies.items():
        parsed = parser.parse(json.dumps(body).encode(), "application/json")
        assert parsed.rows == want, name
    keyed = parser.parse(json.dumps(bodies["records"]).encode(), "Application/JSON; Charset=UTF-8")
    assert keyed.keys == [{"customer_id": "C1"}, {"customer_id": "7"}]
    assert keyed.params == {"k": 1}
    one = parser.parse(
        json.dumps({"inputs": {"region": "west", "tenure_days": 3}}).encode(), "application/json;"
    )
    assert one.rows == want[:1]
    csv = b"region,plan,tenure_days,customer_id\nwest,,3,C1\neast,pro,4.5,\n"
    parsed = parser.parse(csv, "text/csv")
    assert parsed.rows == want
    assert parsed.keys == [{"customer_id": "C1"}, {}]
    parquet = pd.DataFrame(columns).to_parquet()
    assert parser.parse(parquet, PARQUET).rows == want

    def refused(body: bytes, content_type: str | None = JSON) -> tuple[int, str, str]:
        with pytest.raises(ScoringError) as caught:
            parser.parse(body, content_type)
        return caught.value.status, caught.value.error_code, caught.value.message

    assert refused(b"{")[:2] == (400, "BAD_REQUEST")
    nan = refused(b'{"inputs": {"region": "west", "tenure_days": NaN}}')
    assert nan[:2] == (400, "BAD_REQUEST") and "NaN is not a JSON number" in nan[2]
    huge = refused(b'{"inputs": {"region": "west", "tenure_days": 1e16}}')
    assert "row 0, column 'tenure_days'" in huge[2] and "less than or equal" in huge[2]
    missing = refused(b'{"inputs": [{"plan": "pro", "tenure_days": 1}]}')
    assert missing[:2] == (400, "INVALID_PARAMETER_VALUE") and "['region']" in missing[2]
    lists = refused(b'{"inputs": [["west", null, 3]]}')
    assert lists[:2] == (400, "INVALID_PARAMETER_VALUE") and "no column names" in lists[2]
    assert "at most 3" in refused(json.dumps({"inputs": records * 2}).encode())[2]
    assert (
        refused(b"region,tenure_days\n", CSV)[2]
        == "Invalid input. The request holds no rows to predict."
    )
    assert refused(b"{}", "text/plain")[0] == 415
    assert refused(b"{}", None)[0] == 415
    assert refused(b"{}", "application/json; format=pandas-split")[0] == 415
