"""Load ``bundle.yml`` and its included ``conf/*.yml`` into a typed :class:`Project`.

Resolution order for variables (last wins): the ``default`` in ``bundle.yml``, the selected
target's ``variables``, ``LAKEHOUSE_VAR_<name>`` environment variables, ``--var name=value``.
``${var.name}``, ``${bundle.name}`` and ``${bundle.target}`` are interpolated in every string.
Every error names the file, the key path and what was expected.
"""

from __future__ import annotations

import codecs
import importlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from lakehouse.config.base import BUNDLE_FILE, SECRET_PARAMETER_HINT, secret_name
from lakehouse.config.bundle_spec import BundleSpec, ConfFile, EngineSpec, Variable
from lakehouse.config.project import Project
from lakehouse.config.resolve import LoadedBundle, assemble
from lakehouse.core.errors import ConfigError

ENV_TARGET = "LAKEHOUSE_TARGET"
ENV_ENGINE = "LAKEHOUSE_ENGINE"
ENV_REMOTE = "LAKEHOUSE_REMOTE"
ENV_PROJECT_DIR = "LAKEHOUSE_PROJECT_DIR"
ENV_VAR_PREFIX = "LAKEHOUSE_VAR_"
ENGINE_KINDS = ("sail", "spark", "connect")

_REFERENCE = re.compile(r"\$\{([^}]*)\}")


# ---------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


# Bounds on one config file, so a hostile or broken file fails fast with one line: its size
# on disk, the nodes it expands to once every alias is followed (an "alias bomb" of nested
# anchors is tiny on disk but exponential once expanded), and its nesting depth.
MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


class _TooLargeError(Exception):
    """A YAML document over the bounds above (the message says which)."""


def _expanded(
    node: yaml.Node, memo: dict[int, tuple[int, int]], active: set[int], depth: int
) -> int:
    """Nodes under ``node`` with aliases followed; memoised, so shared anchors cost nothing."""
    key = id(node)
    if key in memo:
        size, height = memo[key]
        if depth + height > MAX_YAML_DEPTH:
            raise _TooLargeError(
                f"is nested deeper than {MAX_YAML_DEPTH} levels once aliases are followed"
            )
        return size
    if key in active:
        raise _TooLargeError("uses an anchor inside itself (a recursive alias)")
    if depth > MAX_YAML_DEPTH:
        raise _TooLargeError(f"is nested deeper than {MAX_YAML_DEPTH} levels")
    active.add(key)
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    size = 1 + sum(_expanded(child, memo, active, depth + 1) for child in children)
    if size > MAX_YAML_NODES:
        raise _TooLargeError(
            f"expands to more than {MAX_YAML_NODES:,} values once aliases are followed "
            "(an alias bomb?)"
        )
    height = 1 + max((memo[id(child)][1] for child in children), default=0)
    active.discard(key)
    memo[key] = (size, height)
    return size


def _decode(data: bytes, display: str) -> str:
    """The file's text; a file that is not UTF-8 is named with where and why."""
    if b"\x00" in data:
        kind = "UTF-16 text" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "binary"
        offset = data.index(b"\x00")
        raise ConfigError(
            display, "", f"not UTF-8 text: NUL byte at offset {offset} ({kind}?); save it as UTF-8"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError(
            display,
            f"line {line}",
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} (offset "
            f"{exc.start}: {exc.reason}); save the file as UTF-8",
        ) from None


def _read_bounded(path: Path, display: str) -> bytes:
    """The file's bytes, refusing one over :data:`MAX_YAML_BYTES`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(display, "", f"cannot read file ({exc.strerror})") from exc
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(
            display, "", f"larger than {MAX_YAML_BYTES // 2**20} MiB, the limit for a config file"
        )
    return data


def _load_bounded(text: str) -> Any:
    """Parse one YAML document, checking its expansion before building any Python object."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded(node, {}, set(), 0)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path, display: str) -> dict[str, Any]:
    """Parse one YAML file into a mapping; errors name the file and line."""
    text = _decode(_read_bounded(path, display), display)
    try:
        data = _load_bounded(text)
    except _TooLargeError as exc:
        raise ConfigError(display, "", f"refused: the YAML {exc}") from None
    except RecursionError:
        raise ConfigError(
            display, "", f"refused: the YAML is nested deeper than {MAX_YAML_DEPTH} levels"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(display, line, f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(display, "", f"invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            display, "", f"expected a mapping at the top level, got {type(data).__name__}"
        )
    return data


# ---------------------------------------------------------------- errors


def key_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location as ``a.b[2].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate(model: Any, data: Any, display: str, prefix: str = "") -> Any:
    """Validate ``data`` against a model or type; the first error becomes a :class:`ConfigError`."""
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = tuple(first["loc"])
        # A value matching no member of a union yields one error per member, each with the
        # member's name as the last location part: report them as one.
        union = [
            e
            for e in errors
            if len(e["loc"]) == len(loc) and tuple(e["loc"][:-1]) == loc[:-1] and _is_type_error(e)
        ]
        if len(union) > 1 and _is_type_error(first):
            members = ", ".join(str(e["loc"][-1]) for e in union)
            loc = loc[:-1]
            message = f"expected one of {members} (got {first.get('input')!r})"
            remaining = len(errors) - len(union)
        else:
            message = _friendly(first)
            remaining = len(errors) - 1
        path = key_path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        more = f" (and {remaining} more error{'s' if remaining > 1 else ''})" if remaining else ""
        raise ConfigError(display, path, message + more) from None


def _is_type_error(error: Mapping[str, Any]) -> bool:
    kind = str(error["type"])
    return kind.endswith(("_type", "_parsing")) or kind == "literal_error"


def _friendly(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(error["msg"])
    msg = msg.removeprefix("Value error, ")
    given = error.get("input")
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        return f"{msg} (got {given!r})"
    return msg


# ---------------------------------------------------------------- interpolation


def interpolate(value: Any, context: Mapping[str, Any], display: str, path: str = "") -> Any:
    """Replace ``${var.x}`` / ``${bundle.name}`` / ``${bundle.target}`` in every string."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            out[interpolate(k, context, display, sub)] = interpolate(v, context, display, sub)
        return out
    if isinstance(value, list):
        return [interpolate(v, context, display, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(ref: str) -> Any:
        if ref not in context:
            if ref.startswith("var."):
                known = ", ".join(sorted(k[4:] for k in context if k.startswith("var."))) or "none"
                raise ConfigError(
                    display,
                    path,
                    f"undefined variable '{ref[4:]}' in '${{{ref}}}' (defined: {known})",
                )
            raise ConfigError(
                display,
                path,
                f"unknown reference '${{{ref}}}' (use ${{var.<name>}}, ${{bundle.name}} or ${{bundle.target}})",
            )
        return context[ref]

    return _REFERENCE.sub(lambda m: str(lookup(m.group(1).strip())), value)


# ---------------------------------------------------------------- finding and loading


def import_callable(dotted: str) -> Callable[..., Any]:
    """Import a ``package.module:function`` named in the configuration."""
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("conf/", dotted, f"cannot import module {module_name!r}: {exc}") from exc
    fn: object = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError("conf/", dotted, f"module {module_name!r} has no function {attr!r}")
    return fn


def find_bundle_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (or $LAKEHOUSE_PROJECT_DIR) with a bundle.yml."""
    env = os.environ.get(ENV_PROJECT_DIR)
    here = Path(env) if env and start is None else (start or Path.cwd())
    here = here.resolve()
    for candidate in (here, *here.parents):
        if (candidate / BUNDLE_FILE).is_file():
            return candidate
    raise ConfigError(
        BUNDLE_FILE, "", f"not found in {here} or any parent directory (pass --project-dir)"
    )


def parse_var_overrides(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError("--var", item, "expected name=value")
        out[name.strip()] = value
    return out


def load_project(
    root: Path | None = None,
    *,
    target: str | None = None,
    engine: str | None = None,
    var_overrides: Mapping[str, str] | None = None,
) -> Project:
    """Load and validate the bundle at ``root`` for ``target`` (default: the default target)."""
    root = find_bundle_root(root)
    display = BUNDLE_FILE
    raw = read_yaml(root / BUNDLE_FILE, display)
    declared: dict[str, Variable] = validate(
        dict[str, Variable], raw.get("variables") or {}, display, "variables"
    )
    raw_targets = raw.get("targets")
    if not isinstance(raw_targets, dict) or not raw_targets:
        raise ConfigError(display, "targets", "required: a mapping with at least one target")
    target_name = _select_target(raw_targets, target, display)
    values = _variable_values(declared, raw_targets, target_name, var_overrides, display)

    bundle_name = (
        (raw.get("bundle") or {}).get("name", "") if isinstance(raw.get("bundle"), dict) else ""
    )
    context: dict[str, Any] = {f"var.{k}": v for k, v in values.items()}
    context["bundle.name"] = bundle_name
    context["bundle.target"] = target_name
    _refuse_secret_variables_in_parameters(raw, display)
    resolved = {
        k: (v if k == "variables" else interpolate(v, context, display, k)) for k, v in raw.items()
    }
    bundle: BundleSpec = validate(BundleSpec, resolved, display)
    tgt = bundle.targets[target_name]
    loaded = LoadedBundle(
        root, bundle, target_name, tgt, _engine_for(tgt.engine, engine, display), values
    )
    confs = [
        (rel, validate(ConfFile, interpolate(read_yaml(path, rel), context, rel), rel))
        for path, rel in _included_files(root, bundle.include, display)
    ]
    return assemble(loaded, confs)


def _raw_task_parameters(raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(key path, parameter)`` of every task parameter in raw (uninterpolated) bundle.yml."""

    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    def sequence(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    for job_name, job in mapping(mapping(raw.get("resources")).get("jobs")).items():
        for n, task in enumerate(sequence(mapping(job).get("tasks"))):
            for kind in ("spark_python_task", "python_function_task", "python_wheel_task"):
                parameters = sequence(mapping(mapping(task).get(kind)).get("parameters"))
                for i, parameter in enumerate(parameters):
                    yield (
                        f"resources.jobs.{job_name}.tasks[{n}].{kind}.parameters[{i}]",
                        str(parameter),
                    )


def _refuse_secret_variables_in_parameters(raw: Mapping[str, Any], display: str) -> None:
    """A task parameter naming a secret-looking variable (``${var.db_password}``) is refused:
    once interpolated, the value would be recorded in clear with every run."""
    for key, parameter in _raw_task_parameters(raw):
        for ref in _REFERENCE.findall(parameter):
            name = ref.strip().removeprefix("var.")
            if ref.strip().startswith("var.") and secret_name(name):
                raise ConfigError(
                    display,
                    key,
                    f"variable {name!r} looks like a secret; {SECRET_PARAMETER_HINT}",
                )


def _variable_values(
    declared: dict[str, Variable],
    raw_targets: dict[str, Any],
    target_name: str,
    var_overrides: Mapping[str, str] | None,
    display: str,
) -> dict[str, Any]:
    """Each variable's value: default < target < ``LAKEHOUSE_VAR_<name>`` < ``--var``."""
    values: dict[str, Any] = {name: v.default for name, v in declared.items()}
    target_vars = (raw_targets.get(target_name) or {}).get("variables") or {}
    if not isinstance(target_vars, dict):
        raise ConfigError(display, f"targets.{target_name}.variables", "expected a mapping")
    for name, value in target_vars.items():
        if name not in declared:
            raise ConfigError(
                display,
                f"targets.{target_name}.variables.{name}",
                "variable is not declared under 'variables'",
            )
        values[name] = value
    for env_name, value in os.environ.items():
        if env_name.startswith(ENV_VAR_PREFIX) and env_name[len(ENV_VAR_PREFIX) :] in declared:
            values[env_name[len(ENV_VAR_PREFIX) :]] = value
    for name, value in (var_overrides or {}).items():
        if name not in declared:
            raise ConfigError("--var", name, "variable is not declared in bundle.yml 'variables'")
        values[name] = value
    missing = sorted(name for name, v in values.items() if v is None)
    if missing:
        raise ConfigError(
            display,
            f"variables.{missing[0]}",
            f"no value: set a default, a target override, {ENV_VAR_PREFIX}{missing[0]} or --var",
        )
    return values


def _select_target(raw_targets: dict[str, Any], requested: str | None, display: str) -> str:
    name = requested or os.environ.get(ENV_TARGET)
    if name:
        if name not in raw_targets:
            raise ConfigError(
                display, f"targets.{name}", f"no such target (defined: {', '.join(raw_targets)})"
            )
        return name
    defaults = [n for n, t in raw_targets.items() if isinstance(t, dict) and t.get("default")]
    return defaults[0] if defaults else next(iter(raw_targets))


def _engine_for(spec: EngineSpec, override: str | None, display: str) -> EngineSpec:
    kind = override or os.environ.get(ENV_ENGINE)
    remote = os.environ.get(ENV_REMOTE)
    if not kind or kind == spec.kind:
        return (
            spec.model_copy(update={"remote": remote})
            if remote and spec.kind == "connect"
            else spec
        )
    if kind not in ENGINE_KINDS:
        source = "--engine" if override else ENV_ENGINE
        raise ConfigError(
            source, kind, f"unknown engine (expected one of: {', '.join(ENGINE_KINDS)})"
        )
    if kind == "connect" and not (remote or spec.remote):
        raise ConfigError(
            ENV_REMOTE,
            "",
            "engine 'connect' needs a Spark Connect URL: set LAKEHOUSE_REMOTE=sc://host:port",
        )
    return EngineSpec(
        kind=kind,
        master=spec.master,
        remote=remote or spec.remote,
        conf=spec.conf,
        delta=spec.delta,
    )


def _included_files(root: Path, patterns: list[str], display: str) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for i, pattern in enumerate(patterns):
        matches = sorted(root.glob(pattern))
        if not matches:
            raise ConfigError(display, f"include[{i}]", f"pattern {pattern!r} matches no file")
        for path in matches:
            if path.is_file() and path not in seen:
                seen.add(path)
                files.append((path, str(path.relative_to(root))))
    return files


def included_files(root: Path, patterns: list[str], display: str) -> list[tuple[Path, str]]:
    """The conf files the bundle's ``include`` patterns name, in load order (path, relative)."""
    return _included_files(root, patterns, display)
