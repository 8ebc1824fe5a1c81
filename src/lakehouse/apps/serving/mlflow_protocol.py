"""MLflow's scoring protocol on the serving app: ``POST /invocations``, ``GET /ping``, ``/version``.

A client written for ``mlflow models serve`` (or a Databricks Model Serving endpoint) talks to
``lakehouse serve`` unchanged. The request shapes, content types, status codes and error bodies
are those of MLflow's pyfunc scoring server (``mlflow.pyfunc.scoring_server``, checked against
a running ``mlflow models serve`` by ``tests/apps/serving/test_mlflow_protocol.py``):

- ``application/json`` (``; charset=utf-8`` allowed, any other parameter such as the pre-2.0
  ``format=pandas-split`` or another charset answers 415 in plain text): an object with exactly
  one of ``dataframe_split`` (``{"columns", "data", "index"?}``), ``dataframe_records`` (a list
  of objects), ``instances`` or ``inputs`` (a list of objects, or an object of columns: lists
  of equal length, or scalars for one row), and optionally ``params``. Other keys are ignored.
- ``text/csv``: a header line and rows, as ``DataFrame.to_csv`` writes them; pandas' missing
  markers (an empty field, ``NA``, ``NaN``, ...) are missing values.
- ``application/vnd.apache.parquet``: a Parquet file, as ``DataFrame.to_parquet`` writes it.
- Answer: ``{"predictions": [...]}``, one model output per row (for a classifier: the class
  label, as pyfunc ``predict`` gives it).
- A refused request gets MLflow's error body ``{"error_code": ..., "message": ...}`` with
  HTTP 400: ``BAD_REQUEST`` for a body that is not a table (malformed JSON, not one format
  key, a value of the wrong shape or type), ``INVALID_PARAMETER_VALUE`` (with
  ``"error_class": "SCHEMA_ENFORCEMENT_FAILED"``) for a table without the model's required
  columns. A wrong content type gets 415 in plain text.

Where this server is stricter than MLflow (documented in docs/models.md, asserted by the tests):
the input rules of ``POST /predict`` hold here too, so a non-finite or huge number (``NaN`` /
``Infinity`` tokens, ``"inf"``, ``1e308``), a number for a text column and a missing value in a
column the signature requires get 400 ``BAD_REQUEST`` (MLflow passes them to the model); a
request of more than ``MAX_RECORDS`` rows gets 400; a request without a content type gets 415
(MLflow: 500); error bodies carry no stack trace. Columns that are not model inputs are
ignored, as MLflow does; the model's entity keys among them are logged with the prediction.
``params`` are accepted and ignored: the served models' signatures declare none (MLflow logs a
warning and ignores them too).
"""

from __future__ import annotations

import io
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from fastapi import FastAPI, Header, Request, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from lakehouse.apps.serving.schemas import MAX_RECORDS, InputColumn

log = logging.getLogger(__name__)

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
MEDIA_TYPES = (JSON, CSV, PARQUET)
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = "params"
# keys of MLflow's "unified LLM" requests (chat, completions, embeddings): not a table
LLM_KEYS = ("messages", "prompt", "input")
BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
SCHEMA_ENFORCEMENT_FAILED = "SCHEMA_ENFORCEMENT_FAILED"
MAX_ERRORS_LISTED = 10


class ScoringError(Exception):
    """A refused request, answered as MLflow's scoring server answers it."""

    def __init__(
        self,
        message: str,
        error_code: str = BAD_REQUEST,
        *,
        status: int = 400,
        error_class: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status
        self.error_class = error_class

    def response(self, headers: dict[str, str] | None = None) -> Response:
        """MLflow's error body: ``{"error_code", "message", "error_class"?}`` as JSON."""
        body: dict[str, str] = {"error_code": self.error_code, "message": self.message}
        if self.error_class is not None:
            body["error_class"] = self.error_class
        return Response(json.dumps(body), status_code=self.status, media_type=JSON, headers=headers)


class MediaTypeError(ScoringError):
    """A content type MLflow refuses: 415 with a plain-text body (as MLflow sends it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=415)

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return Response(self.message, status_code=415, media_type="text/plain", headers=headers)


@dataclass(frozen=True)
class Table:
    """A request body as a table: its column names and its rows (missing values ``None``)."""

    columns: list[Any]
    rows: list[dict[Any, Any]]


@dataclass(frozen=True)
class ScoringRequest:
    """A valid request: one record per row (exactly the model's inputs, validated like the
    records of ``POST /predict``), the entity keys each row carried, and the ``params``."""

    rows: list[dict[str, Any]]
    keys: list[dict[str, str]]
    params: Any = None


def media_type(content_type: str | None) -> str:
    """The request's media type (one of ``MEDIA_TYPES``), or 415 as MLflow answers it.

    Parameters: ``charset`` must be UTF-8; any other parameter (``format=pandas-split`` of
    MLflow 1.x) is refused. Names are compared case-insensitively (RFC 9110).
    """
    if not content_type:
        raise MediaTypeError(
            f"This predictor only supports the following content types: {list(MEDIA_TYPES)}. "
            "Got no Content-Type header."
        )
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    values: dict[str, str] = {}
    for pair in filter(None, parameters):  # "application/json;" (MLflow 2's docs): no parameter
        name, _, value = pair.partition("=")
        values[name.strip().lower()] = value.strip().strip('"')
    if values.get("charset", "utf-8").lower() != "utf-8":
        raise MediaTypeError("The scoring server only supports UTF-8")
    if unknown := sorted(set(values) - {"charset"}):
        raise MediaTypeError(
            f"Unrecognized content type parameters: {', '.join(unknown)}. The scoring protocol "
            "of MLflow 2.0 and later takes the format as a key of the JSON body "
            f"({', '.join(FORMATS)}), not as a content type parameter."
        )
    if mime.lower() not in MEDIA_TYPES:
        raise MediaTypeError(
            f"This predictor only supports the following content types: {list(MEDIA_TYPES)}. "
            f"Got '{content_type}'."
        )
    return mime.lower()


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def decode_json(body: bytes) -> dict[str, Any]:
    """The JSON object of the body; ``NaN`` / ``Infinity`` tokens are refused (not JSON)."""
    try:
        payload = json.loads(body.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ScoringError(
            f"Invalid input. Ensure that input is a valid JSON formatted string. Error: {exc}"
        ) from None
    if not isinstance(payload, dict):
        kind = "a list" if isinstance(payload, list) else f"a {type(payload).__name__}"
        raise ScoringError(f"{_one_format_key()} Received {kind}.")
    return payload


def _one_format_key() -> str:
    return (
        "The input must be a JSON dictionary with exactly one of the input fields "
        f"{', '.join(FORMATS)}."
    )


def table_from_json(payload: dict[str, Any]) -> tuple[Table, Any]:
    """The table and the ``params`` of a JSON request (see the module docstring)."""
    if llm := [k for k in LLM_KEYS if k in payload]:
        raise ScoringError(
            f"Failed to enforce schema: the request is an LLM request ({', '.join(llm)}); this "
            "model takes a table: give one of " + ", ".join(FORMATS) + ".",
            INVALID_PARAMETER_VALUE,
            error_class=SCHEMA_ENFORCEMENT_FAILED,
        )
    given = [k for k in FORMATS if k in payload]
    if len(given) != 1:
        raise ScoringError(
            f"{_one_format_key()} Received a dictionary with input fields: {list(payload)[:20]}."
        )
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        table = _split_table(value)
    elif key == "dataframe_records":
        if not isinstance(value, list):
            raise ScoringError(
                "Invalid input. Dataframe records format must be a list of records. "
                f"Got {_kind(value)}."
            )
        table = _frame_table(lambda: pd.DataFrame(data=value), f"The {key} field")
    else:
        table = _tensor_input_table(key, value)
    return table, payload.get(PARAMS)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "dictionary"
    return "list" if isinstance(value, list) else f"type {type(value).__name__}"


def _split_table(value: Any) -> Table:
    """``dataframe_split``: ``{"columns"?, "data", "index"?}`` as pandas reads it."""
    if not isinstance(value, dict):
        raise ScoringError(
            f"Invalid input. Dataframe split format must be a dictionary. Got {_kind(value)}."
        )
    if "data" not in value or set(value) - {"columns", "data", "index"}:
        raise ScoringError(
            "Invalid input. Dataframe split format must have 'data' field and optionally "
            f"'columns' and 'index' fields. Got {sorted(value)}."
        )
    return _frame_table(
        lambda: pd.DataFrame(
            data=value["data"], columns=value.get("columns"), index=value.get("index")
        ),
        "The dataframe_split field",
    )


def _tensor_input_table(key: str, value: Any) -> Table:
    """``instances`` / ``inputs``: a list of records, or an object of columns.

    An object whose values are all scalars is one row; lists of rows without column names
    (a list of lists) give a table whose columns are numbered, which the model's named
    inputs then refuse, as in MLflow.
    """
    if isinstance(value, dict):
        if all(not isinstance(v, list | dict) for v in value.values()):
            return _frame_table(lambda: pd.DataFrame([value]), f"The {key} field")
        # columns of different lengths: MLflow checks `instances` while parsing (400
        # BAD_REQUEST) and `inputs` when it builds the model's frame (INVALID_PARAMETER_VALUE)
        code = BAD_REQUEST if key == "instances" else INVALID_PARAMETER_VALUE
        return _frame_table(lambda: pd.DataFrame(value), f"The {key} field", code)
    if isinstance(value, list):
        return _frame_table(lambda: pd.DataFrame(value), f"The {key} field")
    raise ScoringError(
        f"Failed to enforce schema: '{key}' holds {_kind(value)}; this model takes a table "
        "(a list of records or an object of columns).",
        INVALID_PARAMETER_VALUE,
        error_class=SCHEMA_ENFORCEMENT_FAILED,
    )


def _frame_table(build: Callable[[], pd.DataFrame], what: str, code: str = BAD_REQUEST) -> Table:
    """The table of the frame ``build`` makes (pandas' reading of a body), or 400 naming ``what``."""
    try:
        frame = build()
        rows = frame.to_dict(orient="records")
        columns = list(frame.columns)
    except Exception as exc:  # any pandas failure is a body that is not a table
        raise ScoringError(
            f"Invalid input. {what} is not a valid table. Error: {exc}", code
        ) from None
    return Table(columns, [{k: _missing_as_none(v) for k, v in row.items()} for row in rows])


def _missing_as_none(value: Any) -> Any:
    """pandas' missing value (NaN) as None. NaN tokens never get here (refused as not JSON;
    CSV's NaN markers mean missing), so a NaN in the frame is a missing value."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def table_from_csv(body: bytes) -> Table:
    """A CSV body as pandas reads it, every value kept as text (the schema parses it)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScoringError(
            f"Invalid input. Ensure that input is a valid UTF-8 encoded string. Error: {exc}"
        ) from None
    return _frame_table(
        lambda: pd.read_csv(io.StringIO(text), dtype=object),
        "The CSV body (as DataFrame.to_csv writes it)",
    )


def table_from_parquet(body: bytes) -> Table:
    """A Parquet body: its columns and rows (nulls ``None``; a NaN stays NaN and is refused)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(body))
        return Table(list(table.column_names), table.to_pylist())
    except Exception as exc:  # not a Parquet file, or types pyarrow cannot convert
        raise ScoringError(
            "Invalid input. Failed to parse input as a Pandas DataFrame. Ensure that the input "
            f"is a valid Parquet file written by DataFrame.to_parquet. Error: {exc}"
        ) from None


class ScoringParser:
    """Request bodies to validated records for one input signature (see the module docstring).

    ``columns``: the model's inputs; ``keys``: its entity keys (logged when a row carries
    them); numbers are finite and at most ``max_abs_number`` in magnitude, as in ``/predict``.
    ``lookups``: the (keys, features) of each feature lookup: a table with every key column
    may leave those features out (they are looked up, see
    :mod:`lakehouse.apps.serving.online_features`); ``record`` then has them optional.
    """

    def __init__(
        self,
        columns: Sequence[InputColumn],
        keys: Sequence[str],
        record: type[BaseModel],
        max_records: int = MAX_RECORDS,
        lookups: Sequence[tuple[Sequence[str], Sequence[str]]] = (),
    ) -> None:
        self.columns = tuple(columns)
        self.keys = tuple(keys)
        self.record = record
        self.max_records = max_records
        self.lookups = tuple((tuple(k), tuple(f)) for k, f in lookups)
        self._rows: TypeAdapter[list[BaseModel]] = TypeAdapter(list[record])  # type: ignore[valid-type]

    def parse(self, body: bytes, content_type: str | None) -> ScoringRequest:
        """The request's records, keys and params; :class:`ScoringError` when refused."""
        kind = media_type(content_type)
        params = None
        if kind == JSON:
            table, params = table_from_json(decode_json(body))
        elif kind == CSV:
            table = table_from_csv(body)
        else:
            table = table_from_parquet(body)
        return ScoringRequest(self.records(table), self.row_keys(table), params)

    def records(self, table: Table) -> list[dict[str, Any]]:
        """The rows as validated records of the model's inputs; other columns are ignored."""
        present = set(table.columns)
        looked_up = {f for keys, fs in self.lookups if present.issuperset(keys) for f in fs}
        missing = [
            c.name
            for c in self.columns
            if c.required and c.name not in present and c.name not in looked_up
        ]
        if missing:
            hint = ""
            if table.columns and all(isinstance(c, int) for c in table.columns):
                hint = (
                    " Rows given as lists have no column names: send records, an object of "
                    "columns or dataframe_split with its columns."
                )
            raise ScoringError(
                f"Failed to enforce schema: Model is missing inputs {missing}.{hint}",
                INVALID_PARAMETER_VALUE,
                error_class=SCHEMA_ENFORCEMENT_FAILED,
            )
        if not table.rows:
            raise ScoringError("Invalid input. The request holds no rows to predict.")
        if len(table.rows) > self.max_records:
            raise ScoringError(
                f"Invalid input. {len(table.rows)} rows: at most {self.max_records} per request."
            )
        names = [c.name for c in self.columns]
        try:
            valid = self._rows.validate_python(
                [{n: row.get(n) for n in names} for row in table.rows]
            )
        except ValidationError as exc:
            raise ScoringError(f"Invalid input. {_describe(exc)}") from None
        return [r.model_dump() for r in valid]

    def row_keys(self, table: Table) -> list[dict[str, str]]:
        """The entity keys each row carried (as text), for the prediction log."""
        return [{k: str(row[k]) for k in self.keys if row.get(k) is not None} for row in table.rows]


def _describe(exc: ValidationError) -> str:
    """The first validation errors as ``row 3, column 'x': message (got ...)``."""
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:MAX_ERRORS_LISTED]:
        row, *column = error["loc"]
        where = f"row {row}" + (f", column {column[0]!r}" if column else "")
        parts.append(f"{where}: {error['msg']} (got {error.get('input')!r:.60})")
    more = f" ({len(errors) - MAX_ERRORS_LISTED} more)" if len(errors) > MAX_ERRORS_LISTED else ""
    return "; ".join(parts) + more


def predictions_body(predicted: Any) -> bytes:
    """``{"predictions": [...]}``: one JSON value per row, as MLflow writes pyfunc outputs."""
    values = predicted.tolist() if hasattr(predicted, "tolist") else list(predicted)
    return json.dumps({"predictions": values}, allow_nan=False).encode()


def record_schema(record: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of one row, with unknown columns allowed (they are ignored)."""
    schema = record.model_json_schema()
    schema.pop("additionalProperties", None)
    return schema


def openapi_body(record: type[BaseModel]) -> dict[str, Any]:
    """The ``requestBody`` of ``POST /invocations`` in the app's OpenAPI document."""
    row = record_schema(record)
    rows = {"type": "array", "items": row, "minItems": 1, "maxItems": MAX_RECORDS}
    columns = {"type": "object", "additionalProperties": {"type": "array"}}
    split = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "array"}},
            "index": {"type": "array"},
        },
        "required": ["data"],
        "additionalProperties": False,
    }
    shapes = {
        "dataframe_split": split,
        "dataframe_records": rows,
        "instances": {"anyOf": [rows, columns]},
        "inputs": {"anyOf": [rows, columns]},
    }
    one_of = [
        {
            "type": "object",
            "properties": {key: shape, PARAMS: {"type": "object"}},
            "required": [key],
            "additionalProperties": False,
        }
        for key, shape in shapes.items()
    ]
    return {
        "required": True,
        "content": {
            JSON: {"schema": {"oneOf": one_of}},
            CSV: {"schema": {"type": "string", "description": "DataFrame.to_csv output"}},
            PARQUET: {"schema": {"type": "string", "format": "binary"}},
        },
    }


def _invoker(
    parser: ScoringParser, score: Callable[[ScoringRequest, str], Any]
) -> Callable[[Request, str | None], Awaitable[Response]]:
    """The handler of an invocation: parse, score (in the thread pool), answer."""

    def answer(body: bytes, content_type: str | None, request_id: str) -> Any:
        request = parser.parse(body, content_type)
        try:
            return score(request, request_id)
        except (ValueError, TypeError) as exc:  # the model refused these (valid) values
            log.warning("invocation %s: the model failed: %s", request_id, exc, exc_info=True)
            raise ScoringError(
                "Encountered an unexpected error while evaluating the model. Verify that the "
                f"input is compatible with the model for inference. Error: {exc}"
            ) from None

    async def invoke(request: Request, x_request_id: str | None) -> Response:
        request_id = x_request_id or str(uuid.uuid4())
        headers = {"X-Request-ID": request_id}
        body = await request.body()
        try:
            predicted = await run_in_threadpool(
                answer, body, request.headers.get("content-type"), request_id
            )
        except ScoringError as exc:
            return exc.response(headers)
        return Response(predictions_body(predicted), media_type=JSON, headers=headers)

    return invoke


def add_scoring_routes(
    app: FastAPI,
    parser: ScoringParser,
    score: Callable[[ScoringRequest, str], Any],
    mlflow_version: str,
    endpoint_names: Sequence[str] = (),
) -> None:
    """``POST /invocations`` (``score(request, request_id)`` gives the predictions), ``GET
    /ping`` and ``GET /version`` (``mlflow_version``, as ``mlflow models serve`` answers).

    ``POST /serving-endpoints/{name}/invocations`` is the same for a name in
    ``endpoint_names`` (Databricks Model Serving's path, which its SDK posts to); another
    name gets 404 ``RESOURCE_DOES_NOT_EXIST``.
    """
    invoke = _invoker(parser, score)
    documented: dict[str, Any] = {
        "openapi_extra": {"requestBody": openapi_body(parser.record)},
        "responses": {
            200: {"description": '`{"predictions": [...]}`, one model output per row'},
            400: {"description": "MLflow's error body: `{error_code, message}`"},
            415: {"description": "unsupported content type (plain text)"},
        },
    }

    @app.post("/invocations", **documented)
    async def invocations(
        request: Request, x_request_id: str | None = Header(default=None, max_length=200)
    ) -> Response:
        """MLflow's scoring protocol: JSON (``dataframe_split``, ``dataframe_records``,
        ``instances``, ``inputs``), CSV or Parquet; answers ``{"predictions": [...]}``."""
        return await invoke(request, x_request_id)

    @app.post("/serving-endpoints/{endpoint}/invocations", **documented)
    async def endpoint_invocations(
        endpoint: str,
        request: Request,
        x_request_id: str | None = Header(default=None, max_length=200),
    ) -> Response:
        """``/invocations`` on Databricks Model Serving's path (the endpoint: this model)."""
        if endpoint not in endpoint_names:
            return ScoringError(
                f"Endpoint {endpoint!r} does not exist here; this server answers "
                f"{', '.join(endpoint_names) or 'no endpoint name'}.",
                "RESOURCE_DOES_NOT_EXIST",
                status=404,
            ).response()
        return await invoke(request, x_request_id)

    @app.get("/ping", response_class=Response)
    def ping() -> Response:
        """Liveness, as MLflow's scoring server answers it (200, a newline)."""
        return Response("\n", media_type="text/plain")

    @app.get("/version", response_class=Response)
    def version() -> Response:
        """The MLflow version serving the model (text, as ``mlflow models serve`` answers)."""
        return Response(mlflow_version, media_type="text/plain")
