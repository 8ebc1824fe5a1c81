"""Bundle variables: each one's value for a target, with Databricks' precedence.

Last wins: the variable's ``default``, the target's ``variables`` (a value or
``{default: ...}``), ``BUNDLE_VAR_<name>`` then ``LAKEHOUSE_VAR_<name>`` environment
variables, ``--var name=value``. A complex variable (``type: complex``) set from the
environment or ``--var`` takes JSON. ``lookup:`` needs a Databricks workspace: refused when
no other source gives the variable a value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from lakehouse.config.bundle_spec import LOOKUP_REFUSED, Variable
from lakehouse.core.errors import ConfigError

ENV_VAR_PREFIX = "LAKEHOUSE_VAR_"
ENV_BUNDLE_VAR_PREFIX = "BUNDLE_VAR_"
_UNSET = object()


def variable_values(
    declared: Mapping[str, Variable],
    raw_targets: Mapping[str, Any],
    target_name: str,
    var_overrides: Mapping[str, str] | None,
    display: str,
) -> dict[str, Any]:
    """Each declared variable's value for ``target_name`` (see the module docstring)."""
    values: dict[str, Any] = {
        name: (v.default if v.default is not None else _UNSET) for name, v in declared.items()
    }
    lookups = {name: f"variables.{name}.lookup" for name, v in declared.items() if v.lookup}
    _apply_target(declared, raw_targets, target_name, display, values, lookups)
    for prefix in (ENV_BUNDLE_VAR_PREFIX, ENV_VAR_PREFIX):
        for env_name, value in os.environ.items():
            name = env_name[len(prefix) :]
            if env_name.startswith(prefix) and name in declared:
                values[name] = _typed(declared[name], value, env_name, name)
                lookups.pop(name, None)
    for name, value in (var_overrides or {}).items():
        if name not in declared:
            raise ConfigError("--var", name, f"variable is not declared in {display} 'variables'")
        values[name] = _typed(declared[name], value, "--var", name)
        lookups.pop(name, None)
    if lookups:
        name = sorted(lookups)[0]
        raise ConfigError(display, lookups[name], LOOKUP_REFUSED.format(name=name))
    missing = sorted(name for name, v in values.items() if v is _UNSET or v is None)
    if missing:
        raise ConfigError(
            display,
            f"variables.{missing[0]}",
            f"no value: set a default, a target override, {ENV_BUNDLE_VAR_PREFIX}{missing[0]} "
            "or --var",
        )
    return values


def _apply_target(
    declared: Mapping[str, Variable],
    raw_targets: Mapping[str, Any],
    target_name: str,
    display: str,
    values: dict[str, Any],
    lookups: dict[str, str],
) -> None:
    """The target's ``variables`` (a value, ``{default: ...}`` or ``{lookup: ...}``)."""
    where = f"targets.{target_name}.variables"
    target_vars = (raw_targets.get(target_name) or {}).get("variables") or {}
    if not isinstance(target_vars, dict):
        raise ConfigError(display, where, "expected a mapping")
    for name, value in target_vars.items():
        if name not in declared:
            raise ConfigError(
                display, f"{where}.{name}", "variable is not declared under 'variables'"
            )
        if isinstance(value, dict) and declared[name].type != "complex":
            if "lookup" in value:
                lookups[name] = f"{where}.{name}.lookup"
                values[name] = _UNSET
                continue
            unknown = sorted(set(value) - {"default", "description"})
            if unknown:
                raise ConfigError(display, f"{where}.{name}.{unknown[0]}", "unknown key")
            value = value.get("default")
        values[name] = value
        lookups.pop(name, None)


def _typed(variable: Variable, value: str, source: str, name: str) -> Any:
    """A value from the environment or ``--var``: JSON for a complex variable."""
    if variable.type != "complex":
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(source, name, f"a complex variable takes JSON ({exc.msg})") from None
    if not isinstance(parsed, dict | list):
        raise ConfigError(source, name, "a complex variable takes a JSON object or array")
    return parsed
