"""The serving API over real HTTP (uvicorn on 127.0.0.1) against a real MLflow registry."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, DataType, Schema
from pydantic import ValidationError
from pyspark.sql import SparkSession

from lakehouse.apps.serving.app import create_app, entity_keys
from lakehouse.apps.serving.predictions import PredictionLog
from lakehouse.apps.serving.schemas import input_frame, record_model, signature_columns
from lakehouse.apps.serving.server import running_server
from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import load_project
from lakehouse.core.errors import LakehouseError
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_file_source
from lakehouse.pipelines.ml.score import score_model
from lakehouse.pipelines.ml.train import model_input
from tests.apps.serving.conftest import MODEL, NAME, Registry
from tests.support import session_engine


def _app(registry: Registry, tmp_path: Path, **kwargs: Any) -> Any:
    return create_app(registry.project, MODEL, log_dir=tmp_path / "predictions", **kwargs)


def _log_lines(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_single_and_batch_predictions_match_the_registered_champion(
    registry: Registry, tmp_path: Path
) -> None:
    records = registry.records()
    predicted, probability = registry.expected("champion")
    with running_server(_app(registry, tmp_path)) as url, httpx.Client(base_url=url) as http:
        one = http.post("/predict", json={"record": records[3]}, headers={"X-Request-ID": "abc-1"})
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["request_id"] == "abc-1" and one.headers["X-Request-ID"] == "abc-1"
        assert (body["model_name"], body["model_version"], body["alias"]) == (
            NAME,
            "1",
            "champion",
        )
        assert body["predictions"][0]["prediction"] == predicted[3]
        # a binary model's answer keeps its layout: these fields, in this order, and no more
        assert list(body) == ["predictions", "model_name", "model_version", "alias", "request_id"]
        assert list(body["predictions"][0]) == ["prediction", "probability", "keys"]
        assert one.text.startswith(f'{{"predictions":[{{"prediction":{predicted[3]},"probability":')
        assert np.isclose(body["predictions"][0]["probability"], probability[3])

        for shape in ("records", "dataframe_records"):
            batch = http.post("/predict", json={shape: records})
            assert batch.status_code == 200, batch.text
            got = batch.json()["predictions"]
            assert [p["prediction"] for p in got] == predicted
            assert np.allclose([p["probability"] for p in got], probability, rtol=0, atol=1e-12)
            # a fresh UUID per request when the client sends none
            assert len(batch.json()["request_id"]) == 36
    assert len(set(predicted)) == 2  # the sample exercises both classes


def test_the_record_schema_follows_the_signature_and_nulls_are_imputed(
    registry: Registry,
) -> None:
    # the demo training set has no missing values, so every column is required there;
    # a signature with optional columns gives nullable fields that may be left out
    signature = ModelSignature(
        inputs=Schema(
            [
                ColSpec(DataType.string, "region", required=True),
                ColSpec(DataType.string, "plan", required=False),
                ColSpec(DataType.double, "tenure_days", required=True),
                ColSpec(DataType.long, "orders_count", required=False),
            ]
        )
    )
    columns = signature_columns(signature)
    record = record_model("churn_model", columns)
    assert record.model_validate({"region": "west", "tenure_days": 3}).model_dump() == {
        "region": "west",
        "plan": None,
        "tenure_days": 3.0,
        "orders_count": None,
    }
    with pytest.raises(ValidationError) as missing:
        record.model_validate({"plan": "basic", "tenure_days": None})
    assert {(e["loc"], e["type"]) for e in missing.value.errors()} == {
        (("region",), "missing"),
        (("tenure_days",), "float_type"),
    }

    # missing values reach the pipeline as NaN and are imputed, as in batch scoring
    app = create_app(registry.project, MODEL, log_predictions=False)
    server = app.state.model_server
    rows = registry.rows.head(4).copy()
    rows.loc[[0, 2], "days_since_last_order"] = None
    rows.loc[[1, 2], "plan"] = None
    records = registry.records(rows)
    assert records[2]["plan"] is None and records[0]["days_since_last_order"] is None
    # the serving input frame is exactly what training and batch scoring feed the model
    pd.testing.assert_frame_equal(
        input_frame(records, server.columns),
        model_input(rows, registry.features, ["region", "plan"]),
    )
    outputs = server.predict(server.served["champion"], records)
    expected_predicted, expected_probability = registry.expected("champion", rows)
    assert (outputs.kind, outputs.probabilities()) == ("binary", None)
    assert outputs.prediction.tolist() == expected_predicted
    assert np.allclose(outputs.probability, expected_probability, rtol=0, atol=1e-12)


def test_invalid_payloads_get_422_with_the_failing_fields(
    registry: Registry, tmp_path: Path
) -> None:
    good = registry.records()[0]
    with running_server(_app(registry, tmp_path)) as url, httpx.Client(base_url=url) as http:
        required = [i["name"] for i in http.get("/model").json()["inputs"] if i["required"]]
        assert "tenure_days" in required

        def errors(payload: Any) -> list[dict[str, Any]]:
            response = http.post("/predict", json=payload)
            assert response.status_code == 422, response.text
            return list(response.json()["detail"])

        wrong_type = errors({"records": [good, {**good, "tenure_days": "many"}]})
        assert [e["loc"] for e in wrong_type] == [["body", "records", 1, "tenure_days"]]
        assert wrong_type[0]["type"] == "float_parsing"

        not_a_string = errors({"record": {**good, "region": 3}})
        assert [e["loc"] for e in not_a_string] == [["body", "record", "region"]]

        missing = errors({"record": {k: v for k, v in good.items() if k != "tenure_days"}})
        assert [(e["loc"], e["type"]) for e in missing] == [
            (["body", "record", "tenure_days"], "missing")
        ]

        unknown = errors({"record": {**good, "favourite_colour": "blue"}})
        assert [(e["loc"], e["type"]) for e in unknown] == [
            (["body", "record", "favourite_colour"], "extra_forbidden")
        ]

        null_required = errors({"dataframe_records": [{**good, "tenure_days": None}]})
        assert null_required[0]["loc"] == ["body", "dataframe_records", 0, "tenure_days"]

        assert "exactly one" in errors({"record": good, "records": [good]})[0]["msg"]
        assert "exactly one" in errors({})[0]["msg"]
        assert errors({"records": []})[0]["type"] == "too_short"
        assert errors({"rows": [good]})[0]["type"] == "extra_forbidden"
        bad_json = http.post(
            "/predict", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 422
        # nothing invalid was logged
    assert not (tmp_path / "predictions").exists()


def test_health_model_and_openapi_describe_the_served_model(
    registry: Registry, tmp_path: Path
) -> None:
    with (
        running_server(_app(registry, tmp_path, challenger_share=0.2)) as url,
        httpx.Client(base_url=url) as http,
    ):
        health = http.get("/health").json()
        assert health["status"] == "ok"
        assert health["versions"] == {"champion": "1", "challenger": "2"}
        assert health["refresh_error"] is None

        info = http.get("/model").json()
        assert info["name"] == NAME and info["challenger_share"] == 0.2
        champion = info["versions"]["champion"]
        assert champion["version"] == "1" and champion["run_id"]
        assert {"roc_auc", "f1", "accuracy"} <= set(champion["metrics"])
        run = registry.client.get_run(champion["run_id"])
        assert champion["metrics"]["roc_auc"] == pytest.approx(run.data.metrics["roc_auc"])
        assert info["versions"]["challenger"]["version"] == "2"
        assert [i["name"] for i in info["inputs"]] == registry.features
        assert info["keys"] == ["customer_id"]
        kinds = {i["name"]: i["type"] for i in info["inputs"]}
        assert kinds["region"] == "string" and kinds["tenure_days"] == "number"

        spec = http.get("/openapi.json").json()
        schemas = spec["components"]["schemas"]
        record = schemas["ChurnModelRecord"]
        # the entity key first (an optional string), then the features
        assert list(record["properties"]) == ["customer_id", *registry.features]
        assert record["properties"]["customer_id"]["anyOf"] == [
            {"type": "string"},
            {"type": "integer"},
            {"type": "null"},
        ]
        assert "keys" in schemas["Prediction"]["properties"]
        assert record["additionalProperties"] is False
        # the key may stand for the features (looked up in gold.customer_features): the
        # schema asks for the required features or the key
        assert "required" not in record
        [alternatives] = record["allOf"]
        features, key = alternatives["anyOf"]
        assert key == {
            "required": ["customer_id"],
            "properties": {"customer_id": {"type": ["string", "integer"]}},
        }
        assert "tenure_days" in features["required"]
        assert features["properties"]["tenure_days"] == {"not": {"type": "null"}}
        assert set(schemas["ChurnModelRequest"]["properties"]) == {
            "record",
            "records",
            "dataframe_records",
        }
        assert "/predict" in spec["paths"] and "/model" in spec["paths"]
        assert http.get("/docs").status_code == 200


def test_a_moved_champion_alias_is_served_without_a_restart(
    registry: Registry, tmp_path: Path
) -> None:
    records = registry.records()
    v2_predicted, v2_probability = registry.expected("2")
    _, v1_probability = registry.expected("1")
    assert not np.allclose(v1_probability, v2_probability)
    app = _app(registry, tmp_path, refresh_seconds=0.2)
    try:
        with running_server(app) as url, httpx.Client(base_url=url) as http:
            assert http.post("/predict", json={"records": records}).json()["model_version"] == "1"
            registry.set_champion("2")
            moved = time.monotonic()
            while http.get("/health").json()["versions"]["champion"] != "2":
                assert time.monotonic() - moved < 5, "the alias move was not picked up"
                time.sleep(0.05)
            body = http.post("/predict", json={"records": records}).json()
            assert (body["model_version"], body["alias"]) == ("2", "champion")
            assert [p["prediction"] for p in body["predictions"]] == v2_predicted
            assert np.allclose([p["probability"] for p in body["predictions"]], v2_probability)
            assert http.get("/model").json()["versions"]["champion"]["version"] == "2"

            registry.set_champion("1")
            while http.get("/health").json()["versions"]["champion"] != "1":
                assert time.monotonic() - moved < 10, "the alias move back was not picked up"
                time.sleep(0.05)
            body = http.post("/predict", json={"records": records}).json()
            assert np.allclose([p["probability"] for p in body["predictions"]], v1_probability)
    finally:
        registry.set_champion("1")


def test_ab_split_routes_the_configured_share_to_the_challenger(
    registry: Registry, tmp_path: Path
) -> None:
    record = registry.records()[5]
    share, n = 0.3, 2000
    app = _app(registry, tmp_path, challenger_share=share, seed=7, flush_records=500)
    with running_server(app) as url, httpx.Client(base_url=url) as http:

        def call(i: int) -> tuple[str, str]:
            body = http.post(
                "/predict", json={"record": record}, headers={"X-Request-ID": f"ab-{i}"}
            ).json()
            return body["alias"], body["model_version"]

        # concurrent clients: routing and logging are shared between the server's threads
        with ThreadPoolExecutor(max_workers=4) as pool:
            served = list(pool.map(call, range(n)))
    assert set(served) == {("champion", "1"), ("challenger", "2")}
    to_challenger = sum(alias == "challenger" for alias, _ in served) / n
    assert abs(to_challenger - share) <= 0.05, to_challenger
    # every prediction was logged once with its version, alias and request id
    lines = _log_lines(tmp_path / "predictions")
    assert len(lines) == n
    assert {line["request_id"] for line in lines} == {f"ab-{i}" for i in range(n)}
    logged = {line["request_id"]: (line["alias"], line["model_version"]) for line in lines}
    assert [logged[f"ab-{i}"] for i in range(n)] == served


def test_without_a_challenger_share_the_champion_answers_everything(
    registry: Registry, tmp_path: Path
) -> None:
    with running_server(_app(registry, tmp_path)) as url, httpx.Client(base_url=url) as http:
        assert http.get("/health").json()["versions"] == {"champion": "1"}
        aliases = {
            http.post("/predict", json={"record": registry.records()[0]}).json()["alias"]
            for _ in range(50)
        }
    assert aliases == {"champion"}


def test_predictions_are_logged_as_complete_json_line_files(
    registry: Registry, tmp_path: Path
) -> None:
    records = registry.records()
    log_dir = tmp_path / "predictions"
    app = _app(registry, tmp_path, flush_records=10_000, flush_seconds=0.2)
    with running_server(app) as url, httpx.Client(base_url=url) as http:
        first = http.post("/predict", json={"records": records[:3]}).json()
        started = time.monotonic()
        while not list(log_dir.glob("*.jsonl")):  # flushed by time, not by count
            assert time.monotonic() - started < 5, "the time-based flush did not happen"
            time.sleep(0.05)
        second = http.post(
            "/predict", json={"record": records[4]}, headers={"X-Request-ID": "last"}
        ).json()
    # the shutdown flushed the rest; no partial files remain
    assert not list(log_dir.glob("*.tmp"))
    files = sorted(log_dir.glob("predictions-*.jsonl"))
    assert len(files) == 2
    lines = _log_lines(log_dir)
    assert [line["request_id"] for line in lines] == [first["request_id"]] * 3 + ["last"]
    assert [line["record_index"] for line in lines] == [0, 1, 2, 0]
    assert {line["model_version"] for line in lines} == {"1"}
    assert {line["model_name"] for line in lines} == {NAME}
    assert lines[0]["features"] == records[0]
    assert lines[3]["features"] == records[4]
    assert [line["prediction"] for line in lines] == [
        p["prediction"] for p in first["predictions"] + second["predictions"]
    ]
    assert lines[0]["probability"] == first["predictions"][0]["probability"]
    assert lines[0]["ts"].endswith("Z")


def test_a_model_without_a_champion_is_refused_at_start(registry: Registry) -> None:
    with pytest.raises(LakehouseError, match="no @champion"):
        create_app(registry.project, "no_such_model", log_predictions=False)
    with pytest.raises(LakehouseError, match="between 0 and 1"):
        create_app(registry.project, MODEL, challenger_share=1.5)


def test_the_prediction_log_writes_whole_files_by_count_and_on_flush(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "out", flush_records=3, flush_seconds=3600)
    log.append([{"n": 1}, {"n": 2}])
    assert log.buffered == 2 and not (tmp_path / "out").exists()
    log.append([{"n": 3}])  # the third line fills the buffer
    assert log.buffered == 0 and log.files_written == 1
    log.append([{"n": 4}])
    log.flush_if_due()  # not due yet
    assert log.buffered == 1
    assert log.flush() is not None and log.flush() is None  # nothing left: no empty file
    files = sorted((tmp_path / "out").iterdir())
    assert [f.suffix for f in files] == [".jsonl", ".jsonl"]
    assert files[0].name.startswith("predictions-") and files[0].name.endswith("-000001.jsonl")
    assert [json.loads(x)["n"] for f in files for x in f.read_text().splitlines()] == [1, 2, 3, 4]
    assert log.lines_written == 4


def test_entity_keys_are_echoed_logged_and_ingested_into_bronze(
    registry: Registry, spark: SparkSession, tmp_path: Path
) -> None:
    assert entity_keys(registry.project, MODEL) == ("customer_id",)
    assert entity_keys(registry.project, "not_in_conf") == ()
    records = registry.records()
    ids = [str(c) for c in registry.rows["customer_id"]]
    predicted, _ = registry.expected("champion")
    data = tmp_path / "data"
    log_dir = data / "landing" / "predictions"
    app = create_app(registry.project, MODEL, log_dir=log_dir, flush_records=10_000)
    with running_server(app) as url, httpx.Client(base_url=url) as http:
        keyed = http.post(
            "/predict",
            json={"records": [{"customer_id": ids[0], **records[0]}, records[1]]},
            headers={"X-Request-ID": "keyed"},
        )
        assert keyed.status_code == 200, keyed.text
        got = keyed.json()["predictions"]
        assert [p["keys"] for p in got] == [{"customer_id": ids[0]}, {}]
        assert [p["prediction"] for p in got] == predicted[:2]  # keys do not reach the model
        one = http.post(
            "/predict",
            json={"record": {**records[2], "customer_id": ids[2]}},
            headers={"X-Request-ID": "one"},
        ).json()
        assert one["predictions"][0]["keys"] == {"customer_id": ids[2]}
        # an explicit null is the same as leaving the key out
        null_key = http.post("/predict", json={"record": {**records[3], "customer_id": None}})
        assert null_key.json()["predictions"][0]["keys"] == {}

        # an integer key is a key (compared as text); a record giving every feature looks
        # nothing up, so a key the feature table lacks is only echoed
        number = http.post("/predict", json={"record": {**records[4], "customer_id": 17}})
        assert number.json()["predictions"][0]["keys"] == {"customer_id": "17"}
        wrong = http.post("/predict", json={"record": {**records[0], "customer_id": [17]}})
        assert wrong.status_code == 422, wrong.text
        assert {tuple(e["loc"][:3]) for e in wrong.json()["detail"]} == {
            ("body", "record", "customer_id")
        }
    lines = _log_lines(log_dir)
    assert [(line["request_id"], line["keys"]) for line in lines] == [
        ("keyed", {"customer_id": ids[0]}),
        ("keyed", {}),
        ("one", {"customer_id": ids[2]}),
        (lines[3]["request_id"], {}),
        (lines[4]["request_id"], {"customer_id": "17"}),
    ]
    # the key is not a feature: the logged features are exactly the model's inputs
    assert lines[0]["features"] == records[0] and lines[2]["features"] == records[2]

    # the Bronze file source ingests the log with the keys as JSON text
    project = load_project(registry.project.root, var_overrides={"data_root": str(data)})
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="test", run_id="r-keys", target="local", engine=session_engine(spark))
    ctx = TaskContext(spark, project, tables, report, task_key="ingest")
    summary = ingest_file_source(ctx, "predictions_log")
    assert (summary.units, summary.rows, summary.corrupt_rows) == (1, 5, 0)
    bronze = tables.read("lakehouse.bronze.predictions").orderBy("request_id", "record_index")
    rows = [r.asDict() for r in bronze.collect()]
    assert {r["_rescued_data"] for r in rows} == {None}
    assert [(r["request_id"], r["record_index"], json.loads(r["keys"])) for r in rows] == sorted(
        [(line["request_id"], str(line["record_index"]), line["keys"]) for line in lines]
    )
    assert json.loads(rows[0]["features"]) == next(
        line["features"] for line in lines if line["request_id"] == rows[0]["request_id"]
    )


FEATURES_TABLE = "lakehouse.gold.customer_features"


def test_key_only_requests_equal_batch_scoring_and_log_the_feature_version(
    registry: Registry, tmp_path: Path
) -> None:
    """Features looked up by key: the prediction batch scoring wrote for each key, on both
    routes; the log names the feature table's version and has the features used."""
    ctx = registry.context
    score_model(ctx, MODEL)  # the champion (v1) over the latest row per customer
    batch = ctx.tables.read("lakehouse.gold.churn_predictions").toPandas()
    batch = batch.sort_values("customer_id").reset_index(drop=True)
    ids = [str(c) for c in batch["customer_id"]]
    assert len(ids) > 100 and batch["prediction"].nunique() == 2
    version = ctx.tables.version(FEATURES_TABLE)
    log_dir = tmp_path / "predictions"
    app = create_app(registry.project, MODEL, log_dir=log_dir, flush_records=100_000)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        keyed = http.post("/predict", json={"records": [{"customer_id": c} for c in ids]})
        assert keyed.status_code == 200, keyed.text
        got = keyed.json()["predictions"]
        assert [p["prediction"] for p in got] == batch["prediction"].tolist()
        assert np.allclose(
            [p["probability"] for p in got], batch["probability"], rtol=0, atol=1e-12
        )
        assert [p["keys"] for p in got] == [{"customer_id": c} for c in ids]

        # MLflow's protocol: a table of keys alone, as JSON or CSV
        split = {"dataframe_split": {"columns": ["customer_id"], "data": [[c] for c in ids]}}
        invoked = http.post("/invocations", json=split)
        assert invoked.status_code == 200, invoked.text
        assert invoked.json()["predictions"] == batch["prediction"].tolist()
        csv = http.post(
            "/invocations",
            content="customer_id\n" + "\n".join(ids[:7]) + "\n",
            headers={"Content-Type": "text/csv"},
        )
        assert csv.json()["predictions"] == batch["prediction"].tolist()[:7]

        described = http.get("/model").json()["feature_tables"][FEATURES_TABLE]
        assert (described["version"], described["keys"]) == (version, ["customer_id"])
        assert described["rows"] == len(ids)
        assert http.get("/health").json()["feature_versions"] == {FEATURES_TABLE: version}
    lines = _log_lines(log_dir)
    first = lines[0]
    assert first["feature_versions"] == {FEATURES_TABLE: version}
    assert first["keys"] == {"customer_id": ids[0]}
    latest = ctx.tables.read(FEATURES_TABLE).toPandas()
    latest = latest.sort_values("feature_ts").groupby("customer_id").tail(1)
    assert first["features"] == registry.records(latest[latest["customer_id"] == ids[0]])[0]


def test_looked_up_features_follow_a_new_version_of_the_feature_table(
    spark: SparkSession, registry: Registry, tmp_path: Path
) -> None:
    """The online copy is reloaded when the feature table moves (a copy of the demo data)."""
    data = tmp_path / "data"
    shutil.copytree(registry.project.data_root, data)
    overrides = {
        "data_root": str(data),
        "mlflow_tracking_uri": str(registry.project.variables["mlflow_tracking_uri"]),
    }
    project = load_project(registry.project.root, var_overrides=overrides)
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    app = create_app(project, MODEL, log_dir=tmp_path / "predictions", refresh_seconds=0.1)
    rows = registry.rows
    predicted, _ = registry.expected("champion")
    first = rows.iloc[0]
    flip = rows.iloc[next(i for i, p in enumerate(predicted) if p != predicted[0])]
    newer = pd.DataFrame([{**flip.to_dict(), "customer_id": first["customer_id"]}])
    newer["feature_ts"] = pd.Timestamp("2100-01-01")
    before = tables.version(FEATURES_TABLE)
    with running_server(app) as url, httpx.Client(base_url=url) as http:
        key = {"record": {"customer_id": str(first["customer_id"])}}
        first_answer = http.post("/predict", json=key).json()
        tables.append(
            FEATURES_TABLE, spark.createDataFrame(newer, tables.read(FEATURES_TABLE).schema)
        )
        deadline = time.monotonic() + 30
        while (
            http.get("/model").json()["feature_tables"][FEATURES_TABLE]["version"] == before
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        answer = http.post("/predict", json=key).json()
        expected, expected_probability = registry.expected("champion", newer)
        assert answer["predictions"][0]["prediction"] == expected[0]
        assert answer["predictions"][0]["probability"] == pytest.approx(
            expected_probability[0], abs=1e-12
        )
        status = http.get("/model").json()["feature_tables"][FEATURES_TABLE]
        assert status["version"] == before + 1
        # not the row answered before the append
        assert answer["predictions"][0]["probability"] != pytest.approx(
            first_answer["predictions"][0]["probability"], abs=1e-9
        )


def test_key_lookups_take_overrides_and_name_unknown_keys_and_missing_features(
    registry: Registry, tmp_path: Path
) -> None:
    """A value the record gives wins over the looked-up one; unknown keys answer 404 naming
    each record; neither a feature nor its key answers 422 (400 on /invocations)."""
    ctx = registry.context
    latest = ctx.tables.read(FEATURES_TABLE).toPandas()
    latest = latest.sort_values("feature_ts").groupby("customer_id").tail(1)
    ids = sorted(str(c) for c in latest["customer_id"])
    with running_server(_app(registry, tmp_path)) as url, httpx.Client(base_url=url) as http:
        looked_up = http.post("/predict", json={"record": {"customer_id": ids[0]}}).json()
        # an override: the key's features with one changed equal a full record saying so
        row = latest[latest["customer_id"] == ids[0]]
        full = registry.records(row)[0]
        other = "pro" if full["plan"] != "pro" else "basic"
        overridden = http.post("/predict", json={"record": {"customer_id": ids[0], "plan": other}})
        as_given = http.post("/predict", json={"record": {**full, "plan": other}})
        assert overridden.json()["predictions"][0]["probability"] == pytest.approx(
            as_given.json()["predictions"][0]["probability"], abs=1e-12
        )
        assert overridden.json()["predictions"][0]["probability"] != pytest.approx(
            looked_up["predictions"][0]["probability"], abs=1e-9
        )

        unknown = http.post(
            "/predict",
            json={
                "records": [{"customer_id": ids[1]}, {"customer_id": "NOPE"}, {"customer_id": 7}]
            },
        )
        assert unknown.status_code == 404, unknown.text
        assert [(d["record_index"], d["keys"], d["table"]) for d in unknown.json()["detail"]] == [
            (1, {"customer_id": "NOPE"}, FEATURES_TABLE),
            (2, {"customer_id": "7"}, FEATURES_TABLE),
        ]
        refused = http.post("/invocations", json={"dataframe_records": [{"customer_id": "NOPE"}]})
        assert refused.status_code == 404
        assert refused.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert "record 0: customer_id='NOPE' not in" in refused.json()["message"]

        # neither the features nor the key: 422 naming each required feature left out
        bare = http.post("/predict", json={"record": {"plan": "pro"}})
        assert bare.status_code == 422, bare.text
        missing = [d["loc"] for d in bare.json()["detail"]]
        assert ["body", "record", "tenure_days"] in missing
        assert ["body", "record", "plan"] not in missing
        # /invocations: a table without the features or the key column is refused as MLflow
        # refuses missing inputs; a row whose key is null, as an invalid row
        bad = http.post("/invocations", json={"dataframe_records": [{"plan": "pro"}]})
        assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        null_key = {"dataframe_records": [{"customer_id": ids[0]}, {"customer_id": None}]}
        bad_row = http.post("/invocations", json=null_key)
        assert (bad_row.status_code, bad_row.json()["error_code"]) == (400, "BAD_REQUEST")
        assert "record 1: 'region' is required" in bad_row.json()["message"]
