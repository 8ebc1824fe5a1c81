"""The request and response schemas of the serving API, generated from a model signature.

One record is a pydantic model with a field per input column (:func:`record_model`); a request
holds exactly one of ``record``, ``records`` and ``dataframe_records`` (:func:`request_model`).
Numbers are finite floats of magnitude at most ``MAX_ABS_NUMBER``: ``NaN``, ``Infinity`` and
huge values (``1e308`` overflows a model's scaling) answer 422. :func:`input_frame` turns
validated records into the model's input frame.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from lakehouse.core.errors import LakehouseError

MAX_RECORDS = 10_000
# numbers beyond this magnitude are refused: far beyond any feature, and still finite after
# a model's scaling (1e308 / a standard deviation below 1 overflows to infinity)
MAX_ABS_NUMBER = 1e15
NUMERIC_TYPES = {"double", "float", "long", "integer", "boolean"}
STRING_TYPES = {"string"}


@dataclass(frozen=True)
class InputColumn:
    name: str
    kind: str  # "number" | "string"
    required: bool


def signature_columns(signature: Any) -> tuple[InputColumn, ...]:
    """The input columns of an MLflow signature, as numbers or strings."""
    if signature is None or signature.inputs is None:
        raise LakehouseError("the model has no signature: cannot build a request schema")
    out = []
    for col in signature.inputs.inputs:
        type_name = getattr(col.type, "name", str(col.type))
        if type_name in STRING_TYPES:
            kind = "string"
        elif type_name in NUMERIC_TYPES:
            kind = "number"
        else:
            raise LakehouseError(f"input {col.name!r} has type {type_name}: not servable")
        out.append(InputColumn(str(col.name), kind, bool(getattr(col, "required", True))))
    return tuple(out)


def record_model(
    model_name: str,
    columns: tuple[InputColumn, ...],
    keys: tuple[str, ...] = (),
    max_abs_number: float = MAX_ABS_NUMBER,
    lookups: Sequence[tuple[Sequence[str], Sequence[str]]] = (),
) -> type[BaseModel]:
    """The pydantic model of one record: a field per input column, unknown fields rejected.

    ``keys`` (entity keys that are not input columns) come first, as optional strings or
    integers (compared as text).
    Numbers are finite floats of magnitude at most ``max_abs_number``.
    ``lookups``: the (keys, features) of each feature lookup. Those features are optional
    fields (the keys stand for them), and the JSON schema says so: for each lookup, its
    required features or its keys (``allOf`` of ``anyOf``); the server checks it per record.
    """
    number = Annotated[float, Field(allow_inf_nan=False, ge=-max_abs_number, le=max_abs_number)]
    fields: dict[str, Any] = {}
    inputs = {col.name for col in columns}
    looked_up = {f for _, features in lookups for f in features}
    required = {col.name for col in columns if col.required}
    for key in keys:
        if key not in inputs:
            fields[key] = (
                str | int | None,
                Field(
                    default=None,
                    description="entity key: looks up the model's features (when it has feature "
                    "lookups), logged and echoed; not a feature",
                ),
            )
    for col in columns:
        kind: Any = number if col.kind == "number" else str
        if col.required and col.name not in looked_up:
            fields[col.name] = (kind, Field(...))
        else:
            fields[col.name] = (kind | None, Field(default=None))
    alternatives: list[Any] = [
        {"anyOf": [_given([f for f in features if f in required]), _given(list(k), key=True)]}
        for k, features in lookups
    ]
    config = ConfigDict(extra="forbid")
    if alternatives:
        config["json_schema_extra"] = {"allOf": alternatives}
    model: type[BaseModel] = create_model(
        f"{_camel(model_name)}Record", __config__=config, **fields
    )
    return model


class _RequestBase(BaseModel):
    """Exactly one of ``record``, ``records`` and ``dataframe_records``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _exactly_one(self) -> _RequestBase:
        given = [k for k in ("record", "records", "dataframe_records") if getattr(self, k, None)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'record' (an object), 'records' or 'dataframe_records' "
                f"(a list of objects); got {', '.join(given) or 'none'}"
            )
        return self

    def rows(self) -> list[dict[str, Any]]:
        given = getattr(self, "records", None) or getattr(self, "dataframe_records", None)
        records = given or [getattr(self, "record")]  # noqa: B009
        return [r.model_dump() for r in records]


def _given(names: list[str], *, key: bool = False) -> dict[str, Any]:
    """JSON schema: these fields present and not null (keys: a string or an integer)."""
    value: dict[str, Any] = {"type": ["string", "integer"]} if key else {"not": {"type": "null"}}
    return {"required": names, "properties": dict.fromkeys(names, value)}


def request_model(model_name: str, record: type[BaseModel]) -> type[_RequestBase]:
    """The request body: exactly one of ``record``, ``records``, ``dataframe_records``."""
    batch: Any = list[record]  # type: ignore[valid-type]
    fields: dict[str, Any] = {
        "record": (record | None, Field(default=None)),
        "records": (batch | None, Field(default=None, min_length=1, max_length=MAX_RECORDS)),
        "dataframe_records": (
            batch | None,
            Field(default=None, min_length=1, max_length=MAX_RECORDS),
        ),
    }
    model: type[_RequestBase] = create_model(
        f"{_camel(model_name)}Request", __base__=_RequestBase, **fields
    )
    return model


class Prediction(BaseModel):
    """One record's prediction; the fields not of the model's kind are left out (None)."""

    prediction: int | float = Field(description="the class, or the number for regression")
    probability: float | None = Field(
        default=None,
        description="binary: probability of the positive class (1); multiclass: of the "
        "predicted class; regression: left out",
    )
    probabilities: dict[str, float] | None = Field(
        default=None, description="multiclass: the probability of every class; else left out"
    )
    keys: dict[str, str] = Field(
        default_factory=dict, description="the entity keys the record carried ({} when none)"
    )


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model_name: str
    model_version: str
    alias: str = Field(description="champion or challenger")
    request_id: str


def input_frame(rows: list[dict[str, Any]], columns: tuple[InputColumn, ...]) -> pd.DataFrame:
    """Validated records as the model's input frame, built column by column in one go.

    The same frame as :func:`lakehouse.pipelines.ml.train.model_input` gives for these records (numbers
    float64, categories objects, missing values NaN), without its per-column pandas
    conversions, which cost about a third of a single prediction (measured with py-spy in
    ``benchmarks/serve.py``). The records come from the pydantic request model, so numbers
    are already floats and categories strings or None.
    """
    data: dict[str, np.ndarray] = {}
    for col in columns:
        values = [np.nan if (v := row.get(col.name)) is None else v for row in rows]
        data[col.name] = np.array(values, dtype="float64" if col.kind == "number" else object)
    return pd.DataFrame(data, columns=[c.name for c in columns], copy=False)


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", name) if p)


def utc_now() -> str:
    """The current UTC time as the API writes it: ISO 8601 with milliseconds and ``Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
