"""Base pieces shared by every config model (kept apart to avoid import cycles)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

BUNDLE_FILE = "bundle.yml"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
DOTTED_CALLABLE = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"

Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
TableName = Annotated[str, Field(pattern=TABLE_NAME, description="catalog.schema.table")]
DottedCallable = Annotated[
    str, Field(pattern=DOTTED_CALLABLE, description="package.module:function")
]


class StrictModel(BaseModel):
    """Base: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
