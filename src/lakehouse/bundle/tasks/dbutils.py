"""A local ``dbutils``: widgets, task values, notebook exit, local files and secrets.

Notebook kernels get an instance as the ``dbutils`` global (so do ``python_function_task``
functions, as ``ctx.extra["dbutils"]``). It covers what Databricks jobs use:

* ``dbutils.widgets.get/text/dropdown/combobox/multiselect/getArgument/getAll``: the task's
  ``base_parameters`` and the job's parameters (a job parameter wins over a task
  parameter of the same name, as on Databricks), else the widget's default.
* ``dbutils.jobs.taskValues.set/get``: values shared by the tasks of a run.
* ``dbutils.notebook.exit(value)``: end the notebook with a value.
* ``dbutils.fs.ls/put/head/mkdirs/rm/cp/mv`` on local paths (``file:`` prefix accepted).
* ``dbutils.secrets.get(scope, key)``: ``$LAKEHOUSE_SECRET_<SCOPE>_<KEY>``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.bundle.tasks.state import TaskValues
from lakehouse.core.errors import LakehouseError


class NotebookExit(Exception):  # noqa: N818 - the name users see in a notebook's output
    """Raised by ``dbutils.notebook.exit``: the notebook ended with ``value``."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class Widgets:
    def __init__(self, values: dict[str, str]) -> None:
        self._values = dict(values)
        self._defaults: dict[str, str] = {}

    def _define(self, name: str, default: Any) -> None:
        self._defaults[name] = "" if default is None else str(default)

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:  # noqa: N803
        self._define(name, defaultValue)

    def dropdown(
        self,
        name: str,
        defaultValue: str,  # noqa: N803
        choices: list[str],
        label: str | None = None,
    ) -> None:
        self._define(name, defaultValue)

    # same signature: a choice widget's value is its default unless a parameter sets it
    combobox = dropdown
    multiselect = dropdown

    def get(self, name: str) -> str:
        if name in self._values:
            return self._values[name]
        if name in self._defaults:
            return self._defaults[name]
        raise LakehouseError(
            f"InputWidgetNotDefined: no input widget named {name!r} is defined "
            f"(parameters given: {', '.join(sorted(self._values)) or 'none'})"
        )

    def getArgument(self, name: str, optional: str | None = None) -> str | None:  # noqa: N802
        try:
            return self.get(name)
        except LakehouseError:
            return optional

    def getAll(self) -> dict[str, str]:  # noqa: N802
        return {**self._defaults, **self._values}

    def remove(self, name: str) -> None:
        self._defaults.pop(name, None)

    def removeAll(self) -> None:  # noqa: N802
        self._defaults.clear()


class TaskValuesApi:
    def __init__(self, values: TaskValues, task_key: str) -> None:
        self._values = values
        self._task_key = task_key

    def set(self, key: str, value: Any) -> None:
        self._values.set(self._task_key, key, value)

    def get(
        self,
        taskKey: str,  # noqa: N803
        key: str,
        default: Any = None,
        debugValue: Any = None,  # noqa: N803
    ) -> Any:
        if self._values.has(taskKey, key):
            return self._values.get(taskKey, key)
        if default is not None:
            return default
        raise LakehouseError(
            f"no task value {key!r} set by task {taskKey!r} in this run (and no default)"
        )


class Jobs:
    def __init__(self, values: TaskValues, task_key: str) -> None:
        self.taskValues = TaskValuesApi(values, task_key)


class NotebookApi:
    def exit(self, value: Any = "") -> None:
        raise NotebookExit("" if value is None else str(value))

    def run(self, path: str, timeout_seconds: int = 0, arguments: Any = None) -> str:
        raise LakehouseError(
            "dbutils.notebook.run is not supported locally: use a notebook_task in the job "
            "(or %run for a notebook of helpers)"
        )


@dataclass(frozen=True)
class FileInfo:
    path: str
    name: str
    size: int
    modificationTime: int  # noqa: N815


def _local(path: str) -> Path:
    if path.startswith("dbfs:"):
        raise LakehouseError(f"{path}: dbfs: paths do not exist locally; use a local path")
    return Path(re.sub(r"^file:(//)?", "", path))


class Fs:
    def ls(self, path: str) -> list[FileInfo]:
        base = _local(path)
        entries = sorted(base.iterdir()) if base.is_dir() else [base]
        return [
            FileInfo(
                f"file:{e}/" if e.is_dir() else f"file:{e}",
                e.name + ("/" if e.is_dir() else ""),
                0 if e.is_dir() else e.stat().st_size,
                int(e.stat().st_mtime * 1000),
            )
            for e in entries
        ]

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        target = _local(file)
        if target.exists() and not overwrite:
            raise LakehouseError(f"{file} exists (pass overwrite=True)")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(contents)
        return True

    def head(self, file: str, maxBytes: int = 65536) -> str:  # noqa: N803
        with _local(file).open("rb") as f:
            return f.read(maxBytes).decode("utf-8", errors="replace")

    def mkdirs(self, dir: str) -> bool:
        _local(dir).mkdir(parents=True, exist_ok=True)
        return True

    def rm(self, dir: str, recurse: bool = False) -> bool:
        target = _local(dir)
        if target.is_dir():
            if not recurse:
                raise LakehouseError(f"{dir} is a directory (pass recurse=True)")
            shutil.rmtree(target)
            return True
        if target.exists():
            target.unlink()
            return True
        return False

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        source, target = _local(from_), _local(to)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        shutil.move(_local(from_), _local(to))
        return True


def secret_env_name(scope: str, key: str) -> str:
    """``LAKEHOUSE_SECRET_<SCOPE>_<KEY>`` (upper case; other characters become ``_``)."""
    return re.sub(r"[^A-Z0-9]", "_", f"LAKEHOUSE_SECRET_{scope}_{key}".upper())


class Secrets:
    def get(self, scope: str, key: str) -> str:
        name = secret_env_name(scope, key)
        value = os.environ.get(name)
        if value is None:
            raise LakehouseError(
                f"secret {scope}/{key} is not set: export {name} to provide it locally"
            )
        return value

    def getBytes(self, scope: str, key: str) -> bytes:  # noqa: N802
        return self.get(scope, key).encode()


class DBUtils:
    """``dbutils`` of one task of a run."""

    def __init__(self, task_key: str, values: TaskValues, widgets: dict[str, str]) -> None:
        self.widgets = Widgets(widgets)
        self.jobs = Jobs(values, task_key)
        self.notebook = NotebookApi()
        self.fs = Fs()
        self.secrets = Secrets()
