"""Exceptions meant for people: each renders as one readable line."""

from __future__ import annotations


class LakehouseError(Exception):
    """Base class for errors the CLI prints as one line and exits non-zero."""


class ConfigError(LakehouseError):
    """A configuration file is invalid; names the file, the key path and what was expected."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {message}")


class EngineError(LakehouseError):
    """A Spark session could not be built or lacks what the project needs."""


class SchemaMismatchError(LakehouseError):
    """A DataFrame does not fit the schema of the Delta table it is written to."""


class TaskError(LakehouseError):
    """A job task failed."""


def one_line(exc: BaseException, *, with_type: bool = True) -> str:
    """The first non-blank line of an exception's message (Spark errors can span pages).

    With ``with_type`` (the default) an error that is not a :class:`LakehouseError` (those
    are written for people already) reads ``TypeName: first line``, capped at 500
    characters; without it, an empty message gives the exception's type name.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if with_type and not isinstance(exc, LakehouseError):
        return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]
    return lines[0] if lines else type(exc).__name__
