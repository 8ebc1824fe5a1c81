"""Base pieces shared by every config model (kept apart to avoid import cycles)."""

from __future__ import annotations

import itertools
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

BUNDLE_FILE = "bundle.yml"
# the bundle root file: the first of these found at or above the project directory
BUNDLE_FILES = ("databricks.yml", "databricks.yaml", "bundle.yml", "bundle.yaml")
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


# ---------------------------------------------------------------- secrets in plain YAML

# Words that name a secret (header names, parameter flags, variable names) ...
_SECRET_WORDS = frozenset(
    {
        "apikey",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "passphrase",
        "passwd",
        "password",
        "secret",
        "token",
    }
)
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key")}
)
# ... unless the name ends in a word saying where the secret is kept (e.g. --token-env NAME).
_REFERENCE_WORDS = frozenset({"env", "file", "path", "var", "name", "id"})
# Values shaped like a credential whatever their name: an HTTP auth scheme, a password in a
# URL, well-known token formats (GitHub, Slack, AWS access key, OpenAI-style, JWT).
_SECRET_VALUE = re.compile(
    r"^(?i:bearer|basic|token)\s+\S{8,}"
    r"|[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abposr]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b"
    r"|\bsk-[A-Za-z0-9_-]{20,}|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."
)


def secret_name(name: str) -> bool:
    """Whether ``name`` (a header, parameter flag or variable name) names a secret value."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    pairs = set(itertools.pairwise(words))
    return bool(_SECRET_WORDS.intersection(words) or _SECRET_PAIRS & pairs)


def secret_reason(name: str | None, value: str | None = None) -> str | None:
    """Why a ``name: value`` pair in plain YAML looks like a secret, or None.

    The one rule for every plain setting that ends up stored or logged: HTTP headers of a
    source, task parameters (recorded in run records and lineage) and the variables used in
    them. Secrets belong in environment variables named by the configuration.
    """
    if name and secret_name(name):
        return "looks like a secret"
    if value and _SECRET_VALUE.search(value):
        return "has a value that looks like a credential"
    return None


def parameter_secret(parameters: list[str]) -> str | None:
    """Why one of a task's plain ``parameters`` looks like a secret, or None.

    ``--name=value`` and ``name=value`` are judged by name and value, ``--name value`` by the
    flag's name, and any parameter by its value's shape.
    """
    for i, parameter in enumerate(parameters):
        flag, sep, value = parameter.partition("=")
        reason = None
        if sep and re.fullmatch(r"-{0,2}[A-Za-z0-9_.-]+", flag):
            reason = secret_reason(flag.lstrip("-"), value) if value else None
        elif parameter.startswith("-") and i + 1 < len(parameters):
            following = parameters[i + 1]
            if not following.startswith("-") and secret_name(parameter.lstrip("-")):
                reason = "looks like a secret"
        reason = reason or secret_reason(None, parameter)
        if reason:
            # the flag's name, never the value (an error line must not leak the secret)
            shown = flag if sep else parameter if parameter.startswith("-") else ""
            return f"parameters[{i}] {shown!r} {reason}" if shown else f"parameters[{i}] {reason}"
    return None


SECRET_PARAMETER_HINT = (
    "task parameters are recorded in run records and lineage: pass the secret in an "
    "environment variable and give its name instead (e.g. --password-env NAME)"
)
