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
