"""The configuration reference, generated from the pydantic models.

``python -m lakehouse.config.reference [OUT.md]`` prints (or writes) one markdown section per
model reachable from ``bundle.yml`` (:class:`BundleSpec`) and a ``conf/*.yml`` file
(:class:`ConfFile`): each field's YAML key, type, default and description. The docs site
builds its "Configuration reference" page from it at build time (``docs/hooks.py``), so the
page always matches the code.
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from lakehouse.config.base import DOTTED_CALLABLE, IDENTIFIER, TABLE_NAME
from lakehouse.config.bundle_spec import BundleSpec, ConfFile

ROOTS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("bundle.yml", BundleSpec),
    ("conf/*.yml", ConfFile),
)
_BOUNDS: tuple[tuple[type[Any], str, str], ...] = (
    (Ge, "ge", "≥"),
    (Gt, "gt", ">"),
    (Le, "le", "≤"),
    (Lt, "lt", "<"),
    (MinLen, "min_length", "min length"),
    (MaxLen, "max_length", "max length"),
)


_PATTERNS = {
    IDENTIFIER: "an identifier: letters, digits, `_`",
    TABLE_NAME: "catalog.schema.table",
    DOTTED_CALLABLE: "package.module:function",
}


def anchor(model: type[BaseModel]) -> str:
    """The heading anchor of a model's section (mkdocs' toc slug of its class name)."""
    return model.__name__.lower()


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def nested_models(tp: Any) -> Iterator[type[BaseModel]]:
    """The models mentioned anywhere in a type annotation, outermost first."""
    if _is_model(tp):
        yield tp
        return
    for arg in _args(tp):
        yield from nested_models(arg)


def walk(roots: tuple[tuple[str, type[BaseModel]], ...] = ROOTS) -> list[type[BaseModel]]:
    """Every model reachable from ``roots``, depth first in field order, each once."""
    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for info in model.model_fields.values():
            for sub in nested_models(info.annotation):
                visit(sub)

    for _, root in roots:
        visit(root)
    return seen


def type_name(tp: Any) -> str:
    """A short, readable rendering of an annotation; models link to their section."""
    if tp is type(None):
        return "null"
    if _is_model(tp):
        return f"[{tp.__name__}](#{anchor(tp)})"
    origin = typing.get_origin(tp)
    args = _args(tp)
    if origin is typing.Annotated:
        return _annotated_name(args)
    if origin is Literal:
        return " | ".join(f"`{a!r}`" if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (list, tuple, set, frozenset, dict):
        inner = ", ".join(type_name(a) for a in args if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if inspect.isclass(tp) and issubclass(tp, enum.Enum):
        return " | ".join(f"`{m.value!r}`" for m in tp)
    if inspect.isclass(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _annotated_name(args: tuple[Any, ...]) -> str:
    base, *meta = args
    for item in meta:
        pattern = getattr(item, "pattern", None)
        description = getattr(item, "description", None)
        if description:
            return f"{type_name(base)} ({description})"
        if pattern:
            return f"{type_name(base)} ({_PATTERNS.get(pattern, pattern)})"
    return type_name(base)


def default_text(info: FieldInfo) -> str:
    """``required``, or the default as YAML would spell it."""
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True, validated_data={})
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return f"defaults of {type(value).__name__}"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    return f"`{value!r}`"


def constraints(info: FieldInfo) -> str:
    """Bounds and patterns pydantic checks on the field itself, as prose."""
    parts: list[str] = []
    for meta in info.metadata:
        for kind, attr, label in _BOUNDS:
            if isinstance(meta, kind):
                parts.append(f"{label} {getattr(meta, attr)}")
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            parts.append(_PATTERNS.get(pattern, f"pattern `{pattern}`"))
    return "; ".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    if doc == BaseModel.__doc__ or doc.startswith(("Base: unknown keys", "!!! abstract")):
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")


def model_section(model: type[BaseModel]) -> str:
    """One ``###`` section: the model's docstring and a table of its fields."""
    lines = [f"### {model.__name__}", ""]
    doc = _doc(model)
    if doc:
        lines += [doc, ""]
    lines += [
        f"Defined in `{model.__module__}`.",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, info in model.model_fields.items():
        key = info.alias or name
        note = info.description or ""
        extra = constraints(info)
        if extra and extra not in note:
            note = f"{note} ({extra})" if note else extra
        lines.append(
            f"| `{key}` | {_cell(type_name(info.annotation))} | {_cell(default_text(info))} "
            f"| {_cell(note) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def render(roots: tuple[tuple[str, type[BaseModel]], ...] = ROOTS) -> str:
    """The whole reference page as markdown."""
    head = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models in `src/lakehouse/config/` when the site is built",
        "(`python -m lakehouse.config.reference` prints the same page). Every model rejects",
        "unknown keys. A key whose default is *required* must be given. The narrative guide",
        "with examples is [Configuration](../configuration.md).",
        "",
        "## Documents",
        "",
    ]
    for path, model in roots:
        head.append(f"- `{path}`: [{model.__name__}](#{anchor(model)})")
    head += ["", "## Models", ""]
    return "\n".join(head) + "\n" + "\n".join(model_section(m) for m in walk(roots))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
