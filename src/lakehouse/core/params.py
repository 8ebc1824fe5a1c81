"""Typed task parameters, parsed once from a task's ``list[str]`` argv.

A task that takes parameters declares a :class:`TaskParams` subclass; the same class is
filled from ``bundle.yml`` ``parameters`` (the runner), from the command line of a
``jobs/*.py`` script (spark-submit) and from the CLI's options. The argv syntax:

* ``--flag`` for a ``bool`` field (``full_refresh`` is ``--full-refresh``);
* ``--name value`` (or ``--name=value``) for any other field; a list or tuple field takes the
  words up to the next ``--option``;
* bare words go to the field named by ``positional`` (``refine_silver a b``).

Anything else fails with one line naming the task and the parameter.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from lakehouse.core.errors import LakehouseError


class TaskParamError(LakehouseError):
    """A task parameter is unknown, missing or of the wrong type."""


def _kind(field: FieldInfo) -> str:
    """``flag`` (bool), ``list`` or ``value``: how the field reads from argv."""
    annotation = field.annotation
    if annotation is bool:
        return "flag"
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
    for member in members or (annotation,):
        if member in (list, tuple) or get_origin(member) in (list, tuple):
            return "list"
    return "value"


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


class TaskParams(BaseModel):
    """A task's parameters; subclasses declare fields, ``positional`` names the bare-word list."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    positional: ClassVar[str | None] = None

    @classmethod
    def usage(cls) -> str:
        """``[TABLE]... [--full-refresh]``: what the task accepts."""
        parts = [f"[{cls.positional.upper()}]..."] if cls.positional else []
        for name, field in cls.model_fields.items():
            if name == cls.positional:
                continue
            kind = _kind(field)
            value = "" if kind == "flag" else f" {name.upper()}" + ("..." if kind == "list" else "")
            option = f"{_option(name)}{value}"
            parts.append(option if field.is_required() else f"[{option}]")
        return " ".join(parts) or "no parameters"

    @classmethod
    def parse(cls, argv: Sequence[str], *, task: str) -> Self:
        """The parameters in ``argv``; raises :class:`TaskParamError` naming ``task``."""
        values = cls._collect(list(argv), task)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            option = name if name == cls.positional else _option(name)
            if first["type"] == "missing":
                raise TaskParamError(f"task {task}: missing parameter {option}") from None
            raise TaskParamError(
                f"task {task}: parameter {option}: {first['msg']} (got {first.get('input')!r})"
            ) from None

    @classmethod
    def _collect(cls, words: list[str], task: str) -> dict[str, Any]:
        """Field name -> raw value(s) from the argv words, before type conversion."""
        options = {_option(n): n for n in cls.model_fields if n != cls.positional}
        values: dict[str, Any] = {}
        i = 0
        while i < len(words):
            word = words[i]
            i += 1
            if not _is_option(word):
                if cls.positional is None:
                    raise cls._unknown(task, word)
                values.setdefault(cls.positional, []).append(word)
                continue
            option, has_value, inline = word.partition("=")
            if option not in options:
                raise cls._unknown(task, option)
            inline_value = inline if has_value else None
            i = cls._take_option(options[option], option, inline_value, words, i, values, task)
        return values

    @classmethod
    def _take_option(
        cls,
        name: str,
        option: str,
        inline: str | None,
        words: list[str],
        i: int,
        values: dict[str, Any],
        task: str,
    ) -> int:
        """Store field ``name``'s value(s) from ``--option=inline`` or the words from ``i``;
        the index of the first word not taken."""
        kind = _kind(cls.model_fields[name])
        if kind == "flag":
            if inline is not None:
                raise TaskParamError(f"task {task}: parameter {option} takes no value")
            values[name] = True
        elif kind == "list":
            taken = [inline] if inline is not None else []
            while inline is None and i < len(words) and not _is_option(words[i]):
                taken.append(words[i])
                i += 1
            values.setdefault(name, []).extend(taken)
        elif inline is not None:
            values[name] = inline
        elif i < len(words):
            values[name] = words[i]
            i += 1
        else:
            raise TaskParamError(f"task {task}: parameter {option} needs a value")
        return i

    @classmethod
    def _unknown(cls, task: str, word: str) -> TaskParamError:
        return TaskParamError(f"task {task}: unknown parameter {word!r} (takes: {cls.usage()})")


def _is_option(word: str) -> bool:
    """``--name`` or ``-x`` (not a negative number)."""
    return word.startswith("-") and len(word) > 1 and not word[1].isdigit()
