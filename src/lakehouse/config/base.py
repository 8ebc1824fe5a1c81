"""Base pieces shared by every config model (kept apart to avoid import cycles)."""

from __future__ import annotations

import codecs
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

BUNDLE_FILE = "bundle.yml"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
DOTTED_CALLABLE = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"

Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
TableName = Annotated[str, Field(pattern=TABLE_NAME, description="catalog.schema.table")]
DottedCallable = Annotated[
    str, Field(pattern=DOTTED_CALLABLE, description="package.module:function")
]


def known_codec(name: str) -> str:
    """``name`` if Python knows the codec (``latin-1``, ``cp1252``, ``utf-16`` ...)."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(
            f"unknown encoding {name!r} (e.g. utf-8, latin-1, cp1252, utf-16)"
        ) from None
    return name


Encoding = Annotated[str, AfterValidator(known_codec)]


class StrictModel(BaseModel):
    """Base: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
