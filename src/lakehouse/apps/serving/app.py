"""Online serving of a registered model: ``POST /predict`` with the ``@champion`` version.

:func:`create_app` builds a FastAPI app for one registered model:

- The version behind ``models:/NAME@champion`` is loaded with ``mlflow.pyfunc.load_model``
  (by version number, so an alias moving mid-load cannot mix versions); predictions and
  probabilities come from the underlying scikit-learn pipeline, fed the same input frame
  as :func:`lakehouse.pipelines.ml.train.model_input` gives in training and batch scoring (built
  faster, see :func:`input_frame`).
- With ``challenger_share > 0`` and an ``@challenger`` version different from the champion,
  each request goes to the challenger with that probability (A/B test; seeded for tests).
- Request and response schemas are generated from the model signature: one record is a
  pydantic model with one field per input column (numbers ``float``, categories ``str``;
  a column the signature marks optional may be ``null`` or left out, unknown fields are
  rejected). Invalid payloads get HTTP 422 with the failing fields in ``detail``.
- Numbers must be finite and at most ``max_abs_number`` (default 1e15) in magnitude: ``NaN``,
  ``Infinity`` (as a JSON token or the strings ``"nan"``, ``"inf"``) and huge finite values
  such as ``1e308`` (which overflow the model's scaling) answer 422 (``finite_number``,
  ``greater_than_equal`` / ``less_than_equal``) and are not logged. A missing value is
  ``null`` (or a left-out field) where the signature marks the column optional: that is
  the one way to ask the model to impute.
- A body over ``max_body_bytes`` (default 16 MiB, room for ``MAX_RECORDS`` records) answers
  413; a ``Host`` header other than loopback, the bind address and ``allowed_hosts``
  answers 400 (see :mod:`lakehouse.apps.http_guard`).
- A record may also carry the model's entity keys (for churn ``customer_id``: the label keys
  and feature lookup keys of its training set, see :func:`entity_keys`) as optional strings.
  They are not features and never reach the model; they are echoed in the response and
  logged, so monitoring can join served predictions to labels that arrive later.
- A background task re-resolves the aliases every ``refresh_seconds`` and loads a version
  when an alias moved, without a restart. A version whose input signature differs from the
  one the API was built for is not switched to (the schema is fixed at start); ``/health``
  then reports it.
- Every prediction is logged (request id, model version, alias, keys, features, output) as
  JSON lines under ``<data_root>/landing/predictions`` (see :mod:`lakehouse.apps.serving.predictions`).
- Concurrent requests for the same version share one ``predict_proba`` call (adaptive
  micro-batching, :mod:`lakehouse.apps.serving.batching`: no wait for a lone request, at most
  ``batch_wait_ms`` when several clients send, at most ``max_batch`` records; ``max_batch=0``
  calls the model per request). :meth:`ModelServer.predict` / :meth:`ModelServer.call_model`
  batch for any route.

Request bodies (all records in one request go to the same version)::

    {"record": {...}}                 one record
    {"records": [{...}, ...]}         a batch
    {"dataframe_records": [{...}]}    a batch, Databricks / MLflow serving shape

The same app speaks MLflow's scoring protocol (``POST /invocations`` with ``dataframe_split``,
``dataframe_records``, ``instances``, ``inputs``, CSV or Parquet; ``GET /ping``, ``/version``), so
clients of ``mlflow models serve`` work unchanged: see :mod:`lakehouse.apps.serving.mlflow_protocol`.
Those requests are routed, validated and logged like ``/predict`` ones.

Response::

    {"predictions": [{"prediction": 1, "probability": 0.83, "keys": {"customer_id": "C1"}}, ...],
     "model_name": "churn_model", "model_version": "3", "alias": "champion",
     "request_id": "…"}

A prediction follows the model's kind (:mod:`lakehouse.pipelines.ml.kinds`): binary as above
(``probability`` of class 1); multiclass adds ``probabilities`` (class -> probability) and
its ``probability`` is the predicted class's; regression has a number as ``prediction`` and
no probability. The prediction log line carries the same fields.

``keys`` holds the entity keys the record carried (``{}`` when it carried none); the
prediction log line has the same top-level ``keys`` object. The request id is the client's ``X-Request-ID`` header when given, else a new UUID; it is
returned in the body and in the ``X-Request-ID`` response header.
"""

import asyncio
import contextlib
import logging
import os
import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Header, Response
from fastapi.responses import JSONResponse

from lakehouse.apps.http_guard import (
    allowed_hosts,
    check_body_limit,
    guard_hosts,
    json_safe_validation_errors,
)
from lakehouse.apps.serving.batching import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_WAIT_MS,
    MicroBatcher,
    batching_options,
)
from lakehouse.apps.serving.mlflow_protocol import (
    ScoringError,
    ScoringParser,
    ScoringRequest,
    add_scoring_routes,
)
from lakehouse.apps.serving.online_features import (
    CompletedRecords,
    FeaturesUnavailableError,
    MissingFeaturesError,
    OnlineFeatures,
    UnknownKeysError,
    lookup_sources,
)
from lakehouse.apps.serving.predictions import PredictionLog
from lakehouse.apps.serving.schemas import (
    MAX_ABS_NUMBER,
    InputColumn,
    Prediction,
    PredictResponse,
    input_frame,
    record_model,
    request_model,
    signature_columns,
    utc_now,
)
from lakehouse.config.project import Project, feature_lookup_keys
from lakehouse.core.errors import LakehouseError, one_line
from lakehouse.pipelines.ml.kinds import ModelOutputs, output_method, outputs_of
from lakehouse.pipelines.ml.registry import CHALLENGER, CHAMPION, connect, version_by_alias

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024  # room for MAX_RECORDS records


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version."""

    version: str
    run_id: str
    model: Any  # the scikit-learn pipeline
    columns: tuple[InputColumn, ...]
    metrics: dict[str, float]
    loaded_at: str


def entity_keys(project: Project, model_name: str) -> tuple[str, ...]:
    """The entity key columns a served record may carry for ``model_name`` (a ``conf/`` model).

    The training set's label keys, then each feature lookup's keys on the label side
    (``lookup_keys``, default the feature table's keys without its timestamp key), without
    repeats: the columns that identify an example, so a served prediction can be joined to
    its label later. ``()`` for a registered name that is not a model in ``conf/``.
    """
    spec = project.models.get(model_name)
    if spec is None:
        return ()
    names: list[str] = list(spec.training_set.labels.keys)
    for lookup in spec.training_set.features:
        names.extend(lookup.lookup_keys or feature_lookup_keys(project, lookup.table))
    return tuple(dict.fromkeys(names))


@dataclass
class ModelServer:
    """The served versions per alias, their refresh from the registry, and routing."""

    client: Any
    name: str
    challenger_share: float = 0.0
    seed: int | None = None
    served: dict[str, ServedModel] = field(default_factory=dict)
    columns: tuple[InputColumn, ...] = ()
    last_refresh: str = ""
    refresh_error: str | None = None
    batcher: MicroBatcher | None = None  # None: each request calls the model itself

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._rng_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._cache: dict[str, ServedModel] = {}

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "string"]

    def _load(self, version: Any) -> ServedModel:
        import mlflow

        number = str(version.version)
        cached = self._cache.get(number)
        if cached is not None:
            return cached
        pyfunc = mlflow.pyfunc.load_model(f"models:/{self.name}/{number}")
        columns = signature_columns(pyfunc.metadata.signature)
        metrics: dict[str, float] = {}
        if version.run_id:
            with contextlib.suppress(Exception):  # a deleted run: serve without metrics
                metrics = {
                    k: float(v) for k, v in self.client.get_run(version.run_id).data.metrics.items()
                }
        served = ServedModel(
            version=number,
            run_id=str(version.run_id or ""),
            model=pyfunc.get_raw_model(),
            columns=columns,
            metrics=metrics,
            loaded_at=utc_now(),
        )
        self._cache = {number: served, **{v.version: v for v in self.served.values()}}
        return served

    def refresh(self) -> bool:
        """Resolve the aliases; load versions that changed. True when anything changed."""
        with self._refresh_lock:
            try:
                return self._refresh()
            except Exception as exc:  # keep serving what is loaded; report it in /health
                self.refresh_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: alias refresh failed: %s", self.name, exc)
                return False
            finally:
                self.last_refresh = utc_now()

    def _refresh(self) -> bool:
        champion = version_by_alias(self.client, self.name, CHAMPION)
        if champion is None:
            if not self.served:
                raise LakehouseError(f"{self.name} has no @{CHAMPION} version to serve")
            self.refresh_error = (
                f"@{CHAMPION} not found; still serving v{self.served[CHAMPION].version}"
            )
            return False
        wanted = self._wanted_versions(champion)
        current = {a: m.version for a, m in self.served.items()}
        if {a: str(v.version) for a, v in wanted.items()} == current:
            self.refresh_error = None
            return False
        served, problems = self._load_wanted(wanted)
        if CHAMPION not in served:
            raise LakehouseError("; ".join(problems) or f"no @{CHAMPION} loaded")
        if not self.columns:
            self.columns = served[CHAMPION].columns
        changed = {a: m.version for a, m in served.items()} != current
        self.served = served  # one assignment: requests see the old or the new set
        self.refresh_error = "; ".join(problems) or None
        if changed:
            log.info(
                "%s: serving %s",
                self.name,
                ", ".join(f"@{a} v{m.version}" for a, m in served.items()),
            )
        return changed

    def _wanted_versions(self, champion: Any) -> dict[str, Any]:
        """The registry versions to serve per alias: the champion, and a distinct challenger."""
        wanted = {CHAMPION: champion}
        if self.challenger_share > 0:
            challenger = version_by_alias(self.client, self.name, CHALLENGER)
            if challenger is not None and str(challenger.version) != str(champion.version):
                wanted[CHALLENGER] = challenger
        return wanted

    def _load_wanted(self, wanted: dict[str, Any]) -> tuple[dict[str, ServedModel], list[str]]:
        """The wanted versions loaded per alias (keeping the loaded one where the signature
        changed), and the problems found."""
        served: dict[str, ServedModel] = {}
        problems = []
        for alias, version in wanted.items():
            model = self._load(version)
            if self.columns and model.columns != self.columns:
                problems.append(
                    f"@{alias} v{model.version} has a different input signature; "
                    "restart the server to serve it"
                )
                if alias in self.served:
                    served[alias] = self.served[alias]
                continue
            served[alias] = model
        return served, problems

    def route(self) -> tuple[str, ServedModel]:
        """The alias and version that answer the next request."""
        served = self.served
        if CHALLENGER in served and self.challenger_share > 0:
            with self._rng_lock:
                draw = self._rng.random()
            if draw < self.challenger_share:
                return CHALLENGER, served[CHALLENGER]
        return CHAMPION, served[CHAMPION]

    def _model_call(self, model: ServedModel, method: str) -> tuple[Any, Any]:
        """The batch key and the batch function of ``model.<method>`` on records."""
        function = getattr(model.model, method)
        columns = self.columns

        def run(rows: list[dict[str, Any]]) -> Any:
            return function(input_frame(rows, columns))

        # one key per loaded version object and method: aliases never share a batch
        return (model.version, id(model.model), method), run

    def call_model(
        self, model: ServedModel, rows: list[dict[str, Any]], method: str = "predict_proba"
    ) -> np.ndarray:
        """``model.<method>`` on these records' input frame, from any thread; concurrent
        calls for the same version share one model call when batching is on."""
        key, run = self._model_call(model, method)
        if self.batcher is None:
            return np.asarray(run(rows))
        return np.asarray(self.batcher.call(key, run, rows))

    def predict(self, model: ServedModel, rows: list[dict[str, Any]]) -> ModelOutputs:
        """The model's outputs for these records: predictions, and for a classifier the
        probabilities (see :mod:`lakehouse.pipelines.ml.kinds`); batched with concurrent
        requests for the same version."""
        raw = self.call_model(model, rows, method=output_method(model.model))
        return outputs_of(model.model, raw)


def create_app(
    project: Project,
    model_name: str,
    *,
    challenger_share: float = 0.0,
    refresh_seconds: float = 5.0,
    log_dir: Path | None = None,
    log_predictions: bool = True,
    flush_records: int = 1000,
    flush_seconds: float = 10.0,
    seed: int | None = None,
    max_abs_number: float = MAX_ABS_NUMBER,
    max_body_bytes: int = MAX_BODY_BYTES,
    hosts: list[str] | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    batch_wait_ms: float = DEFAULT_MAX_WAIT_MS,
) -> FastAPI:
    """A FastAPI app serving ``model_name`` (a key of ``project.models`` or a registered name).

    The champion is loaded here, so a missing model fails now rather than on the first
    request. ``log_dir`` defaults to ``<data_root>/landing/predictions``. ``hosts``: the
    ``Host`` names answered (default: loopback only, see :func:`allowed_hosts`).
    ``max_batch`` / ``batch_wait_ms``: micro-batching of concurrent requests (``max_batch=0``
    turns it off), see :mod:`lakehouse.apps.serving.batching`.
    """
    if not 0.0 <= challenger_share <= 1.0:
        raise LakehouseError(f"challenger share {challenger_share} is not between 0 and 1")
    max_batch, batch_wait_ms = batching_options(max_batch, batch_wait_ms)
    spec = project.models.get(model_name)
    registered = spec.registered_name if spec is not None else model_name
    server = ModelServer(connect(project), registered, challenger_share, seed)
    if max_batch:
        server.batcher = MicroBatcher(max_batch, batch_wait_ms, name=f"{registered}-batcher")
    if not server.refresh():
        raise LakehouseError(server.refresh_error or f"{registered}: nothing to serve")
    handle = project.model_handles.get(model_name)
    features = (
        OnlineFeatures(lookup_sources(handle), server.columns) if handle is not None else None
    )
    if features is not None:
        features.refresh()
    predictions_log = (
        PredictionLog(
            log_dir or project.data_root / "landing" / "predictions",
            flush_records=flush_records,
            flush_seconds=flush_seconds,
        )
        if log_predictions
        else None
    )
    app = FastAPI(
        title=f"{registered} serving",
        description=_description(registered, challenger_share),
        lifespan=_lifespan(server, features, predictions_log, refresh_seconds),
        max_body_size=check_body_limit(max_body_bytes),
    )
    guard_hosts(app, allowed_hosts() if hosts is None else hosts)
    json_safe_validation_errors(app)
    app.state.model_server = server
    app.state.online_features = features
    app.state.prediction_log = predictions_log
    served = ServedInputs(server, features, entity_keys(project, model_name), max_abs_number)
    _add_predict_route(app, served, predictions_log)
    _add_invocations_route(app, served, predictions_log, model_name)
    _add_info_routes(app, served, refresh_seconds)
    return app


def _description(registered: str, challenger_share: float) -> str:
    """The API description: the served alias and the request shapes."""
    return (
        f"Predictions from `models:/{registered}@{CHAMPION}`"
        + (f", {challenger_share:.0%} of requests to @{CHALLENGER}" if challenger_share else "")
        + '. Send one record as `{"record": {...}}` or a batch as `{"records": [...]}` '
        '(or `{"dataframe_records": [...]}`).'
    )


def _lifespan(
    server: ModelServer,
    features: OnlineFeatures | None,
    predictions_log: PredictionLog | None,
    refresh_seconds: float,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: alias and feature refresh and log flushing in the background, a
    final flush."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def every(seconds: float, step: Any) -> None:
            while True:
                await asyncio.sleep(seconds)
                await asyncio.to_thread(step)

        tasks = [asyncio.create_task(every(max(refresh_seconds, 0.05), server.refresh))]
        if features is not None:
            tasks.append(asyncio.create_task(every(max(refresh_seconds, 0.05), features.refresh)))
        if predictions_log is not None:
            interval = max(min(predictions_log.flush_seconds, 1.0), 0.05)
            tasks.append(asyncio.create_task(every(interval, predictions_log.flush_if_due)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if server.batcher is not None:  # requests have been answered: nothing is queued
                await asyncio.to_thread(server.batcher.close)
            if predictions_log is not None:
                predictions_log.flush()

    return lifespan


def _log_lines(
    request_id: str,
    registered: str,
    alias: str,
    model: ServedModel,
    features: list[str],
    records: CompletedRecords,
    row_keys: list[dict[str, str]],
    predictions: list[Prediction],
) -> list[dict[str, Any]]:
    """The prediction log lines of one request, one per record: the features the model got
    (looked up or given) and, for a record that looked features up, the Delta version of
    each feature table it read (``feature_versions``)."""
    ts = utc_now()
    return [
        {
            "request_id": request_id,
            "record_index": i,
            "ts": ts,
            "model_name": registered,
            "model_version": model.version,
            "alias": alias,
            "keys": k,
            "features": {c: row[c] for c in features},
            **p.model_dump(exclude={"keys"}, exclude_none=True),
            **({"feature_versions": v} if v else {}),
        }
        for i, (row, v, k, p) in enumerate(
            zip(records.rows, records.versions, row_keys, predictions, strict=True)
        )
    ]


def predictions_of(outputs: ModelOutputs, row_keys: list[dict[str, str]]) -> list[Prediction]:
    """One :class:`Prediction` per record, with the fields of the model's kind."""
    if outputs.kind == "regression":
        return [
            Prediction(prediction=float(p), keys=k)
            for p, k in zip(outputs.prediction, row_keys, strict=True)
        ]
    assert outputs.probability is not None
    maps: list[dict[str, float] | None] = [None] * len(row_keys)
    if outputs.kind == "multiclass":
        maps = list(outputs.probabilities() or maps)
    return [
        Prediction(prediction=int(p), probability=float(q), probabilities=m, keys=k)
        for p, q, m, k in zip(outputs.prediction, outputs.probability, maps, row_keys, strict=True)
    ]


@dataclass(frozen=True)
class ServedInputs:
    """What a scoring route needs besides the model: the online features (None: the model
    has no feature lookups in ``conf/``), the entity keys a record may carry, the number
    bound."""

    server: ModelServer
    features: OnlineFeatures | None
    keys: tuple[str, ...]
    max_abs_number: float

    @property
    def lookups(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """The (request keys, features) of each feature lookup (none without features)."""
        if self.features is None:
            return []
        return [(s.request_keys, s.features) for s in self.features.sources]

    def complete(
        self, rows: list[dict[str, Any]], row_keys: list[dict[str, str]]
    ) -> CompletedRecords:
        """The records with their looked-up features (see :mod:`online_features`)."""
        if self.features is None:
            return CompletedRecords(rows, [{} for _ in rows])
        return self.features.complete(rows, row_keys)


def _answered(
    predictions_log: PredictionLog | None,
    request_id: str,
    server: ModelServer,
    alias: str,
    model: ServedModel,
    records: CompletedRecords,
    row_keys: list[dict[str, str]],
    outputs: ModelOutputs,
) -> list[Prediction]:
    """One answered request's predictions (per record, with its keys), logged: the step
    ``/predict`` and ``/invocations`` share after the model answered."""
    predictions = predictions_of(outputs, row_keys)
    if predictions_log is not None:
        predictions_log.append(
            _log_lines(
                request_id,
                server.name,
                alias,
                model,
                server.features,
                records,
                row_keys,
                predictions,
            )
        )
    return predictions


def _lookup_refused(exc: Exception, shape: str, request_id: str) -> JSONResponse:
    """``/predict``'s answer to records whose features cannot be looked up: 404 naming the
    records with unknown keys, 422 for records missing a feature and its keys, 503 for a
    feature table that is not loaded."""
    headers = {"X-Request-ID": request_id}
    if isinstance(exc, UnknownKeysError):
        detail = [
            {**u, "type": "unknown_keys", "msg": f"no row for these keys in {u['table']}"}
            for u in exc.unknown
        ]
        return JSONResponse({"detail": detail, "request_id": request_id}, 404, headers=headers)
    if isinstance(exc, MissingFeaturesError):
        detail = [
            {
                "type": "missing",
                "loc": [
                    "body",
                    shape,
                    *([] if shape == "record" else [p["record_index"]]),
                    p["feature"],
                ],
                "msg": p["msg"],
            }
            for p in exc.problems
        ]
        return JSONResponse({"detail": detail, "request_id": request_id}, 422, headers=headers)
    return JSONResponse({"detail": str(exc), "request_id": request_id}, 503, headers=headers)


def _add_predict_route(
    app: FastAPI, served: ServedInputs, predictions_log: PredictionLog | None
) -> None:
    """``POST /predict``, with request and response schemas from the model signature."""
    server, keys = served.server, served.keys
    registered = server.name
    record_cls = record_model(
        registered, server.columns, keys, served.max_abs_number, served.lookups
    )
    request_cls = request_model(registered, record_cls)

    @app.post("/predict", response_model=PredictResponse)
    def predict(
        body: request_cls,  # type: ignore[valid-type]
        x_request_id: str | None = Header(default=None, max_length=200),
    ) -> Response:
        """Predict one record or a batch; all records of a request use the same version."""
        request_id = x_request_id or str(uuid.uuid4())
        rows = body.rows()  # type: ignore[attr-defined]
        # keys with a value; a key that is also an input column is taken from the features
        row_keys = [{k: str(r[k]) for k in keys if r.get(k) is not None} for r in rows]
        try:
            records = served.complete(rows, row_keys)
        except (UnknownKeysError, MissingFeaturesError, FeaturesUnavailableError) as exc:
            shape = next(s for s in ("record", "records", "dataframe_records") if getattr(body, s))
            return _lookup_refused(exc, shape, request_id)
        alias, model = server.route()
        # a sync route (thread pool): it waits for its share of a batch on the batcher's
        # thread; as fast as an async route here and simpler (benchmarks/serve.py, the notes)
        try:
            outputs = server.predict(model, records.rows)
        except Exception as exc:  # this request's records only (see batching): a clean 500
            log.error("%s v%s: request %s failed: %s", registered, model.version, request_id, exc)
            return JSONResponse(
                {"detail": f"prediction failed: {one_line(exc)}", "request_id": request_id},
                status_code=500,
                headers={"X-Request-ID": request_id},
            )
        predictions = _answered(
            predictions_log, request_id, server, alias, model, records, row_keys, outputs
        )
        result = PredictResponse(
            predictions=predictions,
            model_name=registered,
            model_version=model.version,
            alias=alias,
            request_id=request_id,
        )
        # a Response is sent as is: FastAPI skips re-validating the (already typed) result
        # against response_model, a second thread-pool hop that cost about a sixth of a
        # single prediction (py-spy, benchmarks/serve.py); response_model still documents it
        return Response(
            result.model_dump_json(exclude_none=True),  # a field not of the model's kind
            media_type="application/json",
            headers={"X-Request-ID": request_id},
        )


def _add_invocations_route(
    app: FastAPI, served: ServedInputs, predictions_log: PredictionLog | None, model_name: str
) -> None:
    """MLflow's ``POST /invocations`` (and ``GET /ping``, ``/version``, Databricks' path
    ``/serving-endpoints/{model_name or registered name}/invocations``), routed, predicted
    and logged as ``/predict`` is (:mod:`lakehouse.apps.serving.mlflow_protocol`)."""
    from mlflow.version import VERSION

    server = served.server
    registered = server.name
    record = record_model(registered, server.columns, (), served.max_abs_number, served.lookups)
    parser = ScoringParser(server.columns, served.keys, record, lookups=served.lookups)

    def score(request: ScoringRequest, request_id: str) -> np.ndarray:
        try:
            records = served.complete(request.rows, request.keys)
        except UnknownKeysError as exc:
            raise ScoringError(str(exc), "RESOURCE_DOES_NOT_EXIST", status=404) from None
        except MissingFeaturesError as exc:
            raise ScoringError(f"Invalid input. {exc}") from None
        except FeaturesUnavailableError as exc:
            raise ScoringError(str(exc), "TEMPORARILY_UNAVAILABLE", status=503) from None
        alias, model = server.route()
        outputs = server.predict(model, records.rows)
        _answered(predictions_log, request_id, server, alias, model, records, request.keys, outputs)
        return outputs.prediction

    add_scoring_routes(app, parser, score, VERSION, tuple(dict.fromkeys([model_name, registered])))


def _add_info_routes(app: FastAPI, served: ServedInputs, refresh_seconds: float) -> None:
    """``GET /health`` and ``GET /model`` (versions, metrics, input schema, feature tables)."""
    server, keys, features = served.server, served.keys, served.features
    registered = server.name

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and the versions being served."""
        return {
            "status": "ok",
            "model_name": registered,
            "versions": {a: m.version for a, m in server.served.items()},
            "last_refresh": server.last_refresh,
            "refresh_error": server.refresh_error,
            "pid": os.getpid(),  # the worker process that answered (`lakehouse serve --workers`)
            "batching": (
                {
                    "max_batch": server.batcher.max_batch,
                    "max_wait_ms": server.batcher.max_wait_s * 1000,
                    **server.batcher.stats.as_dict(),
                }
                if server.batcher is not None
                else None
            ),
            "feature_versions": (
                {t: s["version"] for t, s in features.status().items()} if features else {}
            ),
        }

    @app.get("/model")
    def model_info() -> dict[str, Any]:
        """The served versions with their runs and holdout metrics, and the input schema."""
        return {
            "name": registered,
            "challenger_share": server.challenger_share if CHALLENGER in server.served else 0.0,
            "refresh_seconds": refresh_seconds,
            "versions": {
                alias: {
                    "version": m.version,
                    "alias": alias,
                    "run_id": m.run_id,
                    "metrics": m.metrics,
                    "loaded_at": m.loaded_at,
                }
                for alias, m in server.served.items()
            },
            "inputs": [
                {"name": c.name, "type": c.kind, "required": c.required} for c in server.columns
            ],
            "keys": list(keys),
            "feature_tables": features.status() if features else {},
        }
