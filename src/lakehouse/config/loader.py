"""Load a bundle (``databricks.yml`` or ``bundle.yml``) and its included files into a typed
:class:`Project`.

Included files hold bundle fragments (``resources``, ``variables``, ``targets`` …, merged into
the root as Databricks does) and/or conf sections (``catalog``, ``sources``, ``silver`` …).
Variables resolve as in :mod:`lakehouse.config.variables`; ``${var.x}``, ``${bundle.*}``,
``${workspace.*}`` (local values, :func:`lakehouse.config.dab.local_context`) and
``${resources.<kind>.<key>.id|name}`` are interpolated in every string. Every error names the
file, the key path and what was expected.
"""

from __future__ import annotations

import codecs
import importlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from lakehouse.config.base import BUNDLE_FILES, SECRET_PARAMETER_HINT, secret_name
from lakehouse.config.bundle_spec import BundleSpec, ConfFile, EngineSpec, Presets, Variable
from lakehouse.config.dab import (
    FRAGMENT_KEYS,
    Fragments,
    apply_target,
    collect_ignored,
    effective_presets,
    rebase_paths,
    resource_context,
    with_presets,
)
from lakehouse.config.jobs import Job
from lakehouse.config.local_values import local_context
from lakehouse.config.project import Project
from lakehouse.config.resolve import LoadedBundle, assemble
from lakehouse.config.variables import variable_values
from lakehouse.core.errors import ConfigError

ENV_TARGET = "LAKEHOUSE_TARGET"
ENV_ENGINE = "LAKEHOUSE_ENGINE"
ENV_REMOTE = "LAKEHOUSE_REMOTE"
ENV_PROJECT_DIR = "LAKEHOUSE_PROJECT_DIR"
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
    """Replace ``${var.x}``, ``${bundle.*}``, ``${workspace.*}``, ``${resources.*}`` in every
    string; a string that is one reference to a complex variable becomes its value."""
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
    whole = _REFERENCE.fullmatch(value.strip())
    if whole:
        found = _lookup(whole.group(1).strip(), context, display, path)
        if isinstance(found, dict | list):
            return found

    def text(match: re.Match[str]) -> str:
        ref = match.group(1).strip()
        found = _lookup(ref, context, display, path)
        if isinstance(found, dict | list):
            raise ConfigError(
                display, path, f"'${{{ref}}}' is a complex value: use it as the whole value"
            )
        return str(found)

    return _REFERENCE.sub(text, value)


def _lookup(ref: str, context: Mapping[str, Any], display: str, path: str) -> Any:
    """The value of one reference (``var.x.field`` walks into a complex variable)."""
    if ref in context:
        return context[ref]
    parts = ref.split(".")
    if parts[0] == "var" and len(parts) > 2 and f"var.{parts[1]}" in context:
        node = context[f"var.{parts[1]}"]
        for part in parts[2:]:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ConfigError(
                    display, path, f"'${{{ref}}}': no {part!r} in variable {parts[1]!r}"
                )
        return node
    if parts[0] == "var":
        known = ", ".join(sorted(k[4:] for k in context if k.startswith("var."))) or "none"
        raise ConfigError(
            display, path, f"undefined variable '{ref[4:]}' in '${{{ref}}}' (defined: {known})"
        )
    if parts[0] == "resources":
        if len(parts) == 4 and f"resources.{parts[1]}.{parts[2]}.id" in context:
            hint = "locally a resource has .id (its key) and .name"
        else:
            hint = "no such resource"
        raise ConfigError(display, path, f"unknown reference '${{{ref}}}' ({hint})")
    raise ConfigError(
        display,
        path,
        f"unknown reference '${{{ref}}}' (use ${{var.<name>}}, ${{bundle.name|target|root}}, "
        "${workspace.file_path|root_path|current_user.userName|current_user.short_name} or "
        "${resources.<kind>.<key>.id})",
    )


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


def find_bundle_file(start: Path | None = None) -> Path:
    """The bundle root file nearest ``start`` (or $LAKEHOUSE_PROJECT_DIR): the first of
    ``databricks.yml``, ``databricks.yaml``, ``bundle.yml``, ``bundle.yaml`` in a directory,
    looking at ``start`` then each parent."""
    env = os.environ.get(ENV_PROJECT_DIR)
    here = Path(env) if env and start is None else (start or Path.cwd())
    here = here.resolve()
    for candidate in (here, *here.parents):
        for name in BUNDLE_FILES:
            if (candidate / name).is_file():
                return candidate / name
    raise ConfigError(
        " or ".join(BUNDLE_FILES[::2]),
        "",
        f"not found in {here} or any parent directory (pass --project-dir)",
    )


def find_bundle_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding a bundle file (see find_bundle_file)."""
    return find_bundle_file(start).parent


def parse_var_overrides(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError("--var", item, "expected name=value")
        out[name.strip()] = value
    return out


@contextmanager
def _declared_in(fragments: Fragments) -> Iterator[None]:
    """Re-raise an error about the merged bundle naming the file that declared the key."""
    try:
        yield
    except ConfigError as exc:
        file = fragments.file_of(exc.key) if exc.file == fragments.display and exc.key else ""
        if file and file != exc.file:
            raise ConfigError(file, exc.key, exc.message) from None
        raise


def load_project(
    root: Path | None = None,
    *,
    target: str | None = None,
    engine: str | None = None,
    var_overrides: Mapping[str, str] | None = None,
) -> Project:
    """Load and validate the bundle at ``root`` for ``target`` (default: the default target)."""
    bundle_path = find_bundle_file(root)
    root, display = bundle_path.parent, bundle_path.name
    dab = display.startswith("databricks.")
    fragments, conf_raws = _gather(root, display, read_yaml(bundle_path, display), dab)
    raw = fragments.raw
    with _declared_in(fragments):
        declared: dict[str, Variable] = validate(
            dict[str, Variable], raw.get("variables") or {}, display, "variables"
        )
        raw_targets = raw.get("targets")
        if not isinstance(raw_targets, dict) or not raw_targets:
            raise ConfigError(display, "targets", "required: a mapping with at least one target")
        target_name = _select_target(raw_targets, target, display)
        values = variable_values(declared, raw_targets, target_name, var_overrides, display)
        context = _context(root, raw, target_name, values, display)
        _refuse_secret_variables_in_parameters(raw, display)
        resolved = {
            k: (v if k == "variables" else interpolate(v, context, display, k))
            for k, v in raw.items()
        }
    targeted = apply_target(resolved, target_name)
    mode = (targeted["targets"].get(target_name) or {}).get("mode")
    presets = effective_presets(targeted, mode, dab)
    targeted = with_presets(targeted, presets, frozenset(Job.model_fields))
    ignored = collect_ignored(targeted)
    with _declared_in(fragments):
        bundle: BundleSpec = validate(BundleSpec, targeted, display)
    tgt = bundle.targets[target_name]
    loaded = LoadedBundle(
        root,
        bundle,
        target_name,
        tgt,
        _engine_for(tgt.engine, engine, display),
        values,
        bundle_file=display,
        dab=dab,
        presets=validate(Presets, presets, display, "presets"),
        ignored=tuple(ignored),
        resource_files={k: v for k, v in fragments.origin.items() if k.startswith("resources.")},
    )
    confs = [
        (rel, validate(ConfFile, interpolate(data, context, rel), rel)) for rel, data in conf_raws
    ]
    return assemble(loaded, confs)


def _gather(
    root: Path, display: str, raw_root: dict[str, Any], dab: bool
) -> tuple[Fragments, list[tuple[str, dict[str, Any]]]]:
    """The root file with the bundle fragments of its included files merged in, and the
    conf parts of the included files (an included file may hold both)."""
    fragments = Fragments(rebase_paths(raw_root, root, root), display)
    patterns: list[str] = validate(list[str], raw_root.get("include") or [], display, "include")
    confs: list[tuple[str, dict[str, Any]]] = []
    for path, rel in _included_files(root, patterns, display, allow_empty=dab):
        if path == root / display:
            continue  # a pattern such as *.yml also matches the bundle file itself
        data = read_yaml(path, rel)
        fragment = {k: v for k, v in data.items() if k in FRAGMENT_KEYS}
        conf = {k: v for k, v in data.items() if k not in FRAGMENT_KEYS}
        if fragment:
            fragments.add(rebase_paths(fragment, path.parent, root), rel)
        if conf or not fragment:
            confs.append((rel, conf))
    return fragments, confs


def _context(
    root: Path, raw: Mapping[str, Any], target_name: str, values: dict[str, Any], display: str
) -> dict[str, Any]:
    """What ``${...}`` references resolve to: variables, bundle, workspace and resources."""
    bundle_name = (
        (raw.get("bundle") or {}).get("name", "") if isinstance(raw.get("bundle"), dict) else ""
    )
    targeted = apply_target(dict(raw), target_name)
    workspace = targeted.get("workspace") if isinstance(targeted.get("workspace"), dict) else None
    context = local_context(root, str(bundle_name), target_name, workspace)
    context.update(resource_context(targeted))
    # variables may reference other variables and ${bundle.*} / ${workspace.*}
    for _ in range(8):
        context.update({f"var.{k}": v for k, v in values.items()})
        if not any(_REFERENCE.search(json.dumps(v, default=str)) for v in values.values()):
            break
        values.update(
            {k: interpolate(v, context, display, f"variables.{k}") for k, v in values.items()}
        )
    else:
        raise ConfigError(display, "variables", "variables reference each other in a cycle")
    for key, value in list(context.items()):  # a resource's name may use ${var.*}
        if key.startswith("resources.") and key.endswith(".name"):
            context[key] = interpolate(value, context, display, key.removesuffix(".name"))
    return context


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


def _included_files(
    root: Path, patterns: list[str], display: str, *, allow_empty: bool = False
) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for i, pattern in enumerate(patterns):
        matches = sorted(root.glob(pattern))
        if not matches and not allow_empty:
            raise ConfigError(display, f"include[{i}]", f"pattern {pattern!r} matches no file")
        for path in matches:
            if path.is_file() and path not in seen:
                seen.add(path)
                files.append((path, str(path.relative_to(root))))
    return files


def included_files(
    root: Path, patterns: list[str], display: str, *, allow_empty: bool = False
) -> list[tuple[Path, str]]:
    """The files the bundle's ``include`` patterns name, in load order (path, relative)."""
    return _included_files(root, patterns, display, allow_empty=allow_empty)
