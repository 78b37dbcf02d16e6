"""Parse and validate a registry document (YAML or JSON) into a `Registry`, all or nothing.

Every feature is checked against `registry.catalog` (function, sources, window, parameters,
inputs, normalisation); then names must be unique, inputs must name defined features and the
input graph must be acyclic. The first problem raises `RegistryError` naming the source, the
feature (``features[i] 'name'``) and the field. Computation order is a stable topological sort
(Kahn's algorithm, ties broken by file order); the column order is the file order.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from registry.canonical import canonical_text, content_hash
from registry.catalog import FUNCTIONS, NORMALISATIONS, SOURCES, FunctionSpec, ParamSpec
from registry.model import (
    DEFAULT_EVERY_NS,
    NS_PER_S,
    RESERVED_NAMES,
    SUPPORTED_VERSIONS,
    FeatureDef,
    Normalise,
    Params,
    Registry,
    RegistryError,
)

TOP_KEYS = ("version", "features")
FEATURE_KEYS = ("name", "function", "sources", "window", "every", "params", "inputs", "normalise")
NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
DURATION_RE = re.compile(r"([1-9][0-9]*)(ms|s|m|h)")
DURATION_UNITS = {"ms": 10**6, "s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S}
DURATION_FORMS = "a positive whole number with a unit ms, s, m or h, like 500ms, 3s, 1m, 1h"


def load_registry_text(text: str, source: str = "<string>") -> Registry:
    """Parse `text` (YAML, or JSON) and return the validated `Registry`; raise `RegistryError`."""
    doc = _parse(text, source)
    if not isinstance(doc, dict):
        raise RegistryError(f"expected a mapping with keys {', '.join(TOP_KEYS)}, got {_kind(doc)}", source)
    _check_keys(doc, TOP_KEYS, TOP_KEYS, lambda key, msg: RegistryError(msg, source, field=key))
    version = _version(doc["version"], source)
    entries = _entries(doc["features"], source)
    features = tuple(_feature(_At(source, i), entry) for i, entry in enumerate(entries))
    _check_unique(features, source)
    _check_inputs(features, source)
    order = computation_order(features, source)
    canonical = canonical_text(version, features)
    return Registry(version, features, order, content_hash(canonical), canonical, source)


def parse_duration(value: Any) -> int:
    """Return the nanoseconds of a duration like ``500ms``, ``3s``, ``1m``, ``1h``; ValueError otherwise."""
    match = DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"bad duration {value!r}: expected {DURATION_FORMS}")
    return int(match[1]) * DURATION_UNITS[match[2]]


def computation_order(features: tuple[FeatureDef, ...], source: str = "<string>") -> tuple[int, ...]:
    """Return feature indices with every input before its users, ties in file order; name any cycle."""
    index = {f.name: i for i, f in enumerate(features)}
    users: list[list[int]] = [[] for _ in features]
    pending = [len(f.inputs) for f in features]
    for i, f in enumerate(features):
        for name in f.inputs:
            users[index[name]].append(i)
    ready = [i for i, n in enumerate(pending) if n == 0]
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for user in users[i]:
            pending[user] -= 1
            if pending[user] == 0:
                heapq.heappush(ready, user)
    if len(order) < len(features):
        _raise_cycle(features, index, set(order), source)
    return tuple(order)


# --- parsing ---------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key repeated in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build the mapping, failing on a duplicate key."""
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}",
                    key_node.start_mark)
            if isinstance(key, str | int | float):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: build a dict, failing on a duplicate key."""
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"duplicate key {key!r}")
        doc[key] = value
    return doc


def _parse(text: str, source: str) -> Any:
    """Parse JSON when the text is JSON (exact floats), else YAML; errors name the source."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicates)
        except json.JSONDecodeError:
            pass  # a YAML flow mapping; let YAML read it
        except ValueError as e:
            raise RegistryError(f"not valid JSON: {e}", source) from None
    loader = _StrictLoader(text)
    loader.name = source  # YAML error marks then say `in "<source>", line …`
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        raise RegistryError(f"not valid YAML: {' '.join(str(e).split())}", source) from None  # one line
    finally:
        loader.dispose()


# --- top level -------------------------------------------------------------------------------


def _version(value: Any, source: str) -> int:
    """Check the format version."""
    if not _is_int(value) or value not in SUPPORTED_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise RegistryError(f"unsupported registry version {value!r} (supported: {supported})", source,
                            field="version")
    return int(value)


def _entries(value: Any, source: str) -> list[Any]:
    """Check that `features` is a non-empty list."""
    if not isinstance(value, list):
        raise RegistryError(f"expected a list of features, got {_kind(value)}", source, field="features")
    if not value:
        raise RegistryError("a registry must define at least one feature", source, field="features")
    return value


def _check_unique(features: tuple[FeatureDef, ...], source: str) -> None:
    """Fail on the second use of a name."""
    first: dict[str, int] = {}
    for i, f in enumerate(features):
        if f.name in first:
            raise _At(source, i, f.name).error("name", f"duplicate name (already features[{first[f.name]}])")
        first[f.name] = i


def _check_inputs(features: tuple[FeatureDef, ...], source: str) -> None:
    """Fail on an input that names no feature of this registry."""
    names = {f.name for f in features}
    for i, f in enumerate(features):
        for k, name in enumerate(f.inputs):
            if name not in names:
                raise _At(source, i, f.name).error(f"inputs[{k}]", f"{name!r} is not a feature of this registry")


def _raise_cycle(features: tuple[FeatureDef, ...], index: dict[str, int], done: set[int], source: str) -> None:
    """Walk inputs from the first unordered feature until one repeats, and report that cycle."""
    path = [min(set(range(len(features))) - done)]
    while True:
        nxt = next(index[n] for n in features[path[-1]].inputs if index[n] not in done)
        if nxt in path:
            cycle = path[path.index(nxt):] + [nxt]
            start = features[cycle[0]]
            chain = " -> ".join(features[i].name for i in cycle)
            raise _At(source, cycle[0], start.name).error("inputs", f"dependency cycle: {chain}")
        path.append(nxt)


# --- one feature -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _At:
    """Where a check is: the source, the feature's index and (once known) its name."""

    source: str
    index: int
    name: str | None = None

    def error(self, field: str, message: str) -> RegistryError:
        """Return a RegistryError located at `field` of this feature."""
        label = f"features[{self.index}]" + (f" {self.name!r}" if self.name else "")
        return RegistryError(message, self.source, feature=label, field=field)


def _feature(at: _At, entry: Any) -> FeatureDef:
    """Validate one entry against the catalogue and return its definition."""
    if not isinstance(entry, dict):
        raise at.error("<entry>", f"expected a mapping with keys name, function, …, got {_kind(entry)}")
    at = _At(at.source, at.index, _name(at, entry))
    _check_keys(entry, FEATURE_KEYS, ("name", "function"), at.error)
    spec = _function(at, entry["function"])
    return FeatureDef(
        name=entry["name"],
        function=spec.name,
        sources=_sources(at, spec, entry.get("sources")),
        window_ns=_window(at, spec, entry.get("window")),
        every_ns=_every(at, entry.get("every")),
        params=_params(at, "params", spec.params, _or(entry.get("params"), {}), f"function {spec.name}"),
        inputs=_inputs(at, spec, _or(entry.get("inputs"), [])),
        normalise=_normalise(at, entry.get("normalise")),
    )


def _name(at: _At, entry: dict[Any, Any]) -> str | None:
    """Check the name's spelling when present (absence is reported with the other required keys)."""
    if "name" not in entry:
        return None
    value = entry["name"]
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise at.error("name", f"bad name {value!r}: use lower-case letters, digits and _ , starting with a letter")
    if value in RESERVED_NAMES:
        raise at.error("name", f"{value!r} is reserved (vector columns {', '.join(sorted(RESERVED_NAMES))})")
    return value


def _function(at: _At, value: Any) -> FunctionSpec:
    """Return the catalogue entry the feature names."""
    if not isinstance(value, str) or value not in FUNCTIONS:
        raise at.error("function", f"unknown function {value!r} (known: {', '.join(sorted(FUNCTIONS))})")
    return FUNCTIONS[value]


def _sources(at: _At, spec: FunctionSpec, value: Any) -> tuple[str, ...]:
    """Return the declared sources (default: all the function's), sorted."""
    if value is None:
        return tuple(sorted(spec.sources))
    if not isinstance(value, list) or not value:
        raise at.error("sources", f"expected a non-empty list of sources, got {value!r}")
    for k, s in enumerate(value):
        if not isinstance(s, str) or s not in SOURCES:
            raise at.error(f"sources[{k}]", f"unknown source {s!r} (known: {', '.join(sorted(SOURCES))})")
        if s not in spec.sources:
            allowed = ", ".join(sorted(spec.sources))
            raise at.error(f"sources[{k}]", f"source {s!r} is not allowed for function {spec.name} (allowed: {allowed})")
        if s in value[:k]:
            raise at.error(f"sources[{k}]", f"source {s!r} is listed twice")
    return tuple(sorted(value))


def _window(at: _At, spec: FunctionSpec, value: Any) -> int | None:
    """Return the window in ns: required iff the function needs one."""
    if value is None:
        if spec.needs_window:
            raise at.error("window", f"function {spec.name} needs a window ({DURATION_FORMS})")
        return None
    if not spec.needs_window:
        raise at.error("window", f"function {spec.name} takes no window")
    try:
        return parse_duration(value)
    except ValueError as e:
        raise at.error("window", str(e)) from None


def _every(at: _At, value: Any) -> int:
    """Return the cadence in ns: whole seconds, at least 1 s (default 1 s)."""
    if value is None:
        return DEFAULT_EVERY_NS
    try:
        ns = parse_duration(value)
    except ValueError as e:
        raise at.error("every", str(e)) from None
    if ns % NS_PER_S:
        raise at.error("every", f"every must be a whole number of seconds (ticks are 1 s apart), got {value!r}")
    return ns


def _inputs(at: _At, spec: FunctionSpec, value: Any) -> tuple[str, ...]:
    """Return the input feature names: exactly as many as the function reads."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise at.error("inputs", f"expected a list of feature names, got {value!r}")
    if len(value) != spec.n_inputs:
        raise at.error("inputs", f"function {spec.name} reads {spec.n_inputs} input feature(s), got {len(value)}")
    return tuple(value)


def _normalise(at: _At, value: Any) -> Normalise | None:
    """Return the declared normalisation, its parameters checked like a function's."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise at.error("normalise", f"expected a mapping like {{method: zscore, n: 300}}, got {_kind(value)}")
    method = value.get("method")
    if not isinstance(method, str) or method not in NORMALISATIONS:
        known = ", ".join(sorted(NORMALISATIONS))
        raise at.error("normalise.method", f"unknown normalisation {method!r} (known: {known})")
    rest = {k: v for k, v in value.items() if k != "method"}
    return Normalise(method, _params(at, "normalise", NORMALISATIONS[method], rest, f"normalisation {method}"))


# --- parameters ------------------------------------------------------------------------------


def _params(at: _At, field: str, specs: dict[str, ParamSpec], value: Any, owner: str) -> Params:
    """Return every parameter of `specs` in declaration order, defaults filled in."""
    if not isinstance(value, dict):
        raise at.error(field, f"expected a mapping of parameters, got {_kind(value)}")
    for key in value:
        if key not in specs:
            takes = f"takes: {', '.join(specs)}" if specs else "takes no parameters"
            raise at.error(f"{field}.{key}", f"unknown parameter ({owner} {takes})")
    out = []
    for key, spec in specs.items():
        if key in value:
            out.append((key, _param_value(at, f"{field}.{key}", spec, value[key])))
        elif spec.required:
            raise at.error(f"{field}.{key}", f"required parameter of {owner} is missing")
        elif spec.default is not None:
            out.append((key, spec.default))
    return tuple(out)


def _param_value(at: _At, field: str, spec: ParamSpec, value: Any) -> Any:
    """Check one parameter's type, choices and range; ints given for floats become floats."""
    if spec.type is float and _is_int(value):
        value = float(value)
    if not isinstance(value, spec.type) or (spec.type is not bool and isinstance(value, bool)):
        raise at.error(field, f"expected {spec.type.__name__}, got {_kind(value)} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise at.error(field, f"expected a finite number, got {value!r}")
    if spec.choices and value not in spec.choices:
        raise at.error(field, f"{value!r} is not one of {', '.join(map(repr, spec.choices))}")
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        raise at.error(field, f"{value!r} is out of range [{_num(spec.min, '-inf')}, {_num(spec.max, 'inf')}]")
    return value


# --- helpers ---------------------------------------------------------------------------------


def _check_keys(doc: dict[Any, Any], known: tuple[str, ...], required: tuple[str, ...],
                fail: Callable[[str, str], RegistryError]) -> None:
    """Fail on the first unknown key (in document order), then on a missing required key."""
    for key in doc:
        if key not in known:
            raise fail(str(key), f"unknown key (known keys here: {', '.join(known)})")
    for key in required:
        if key not in doc:
            raise fail(key, "required key is missing")


def _or(value: Any, default: Any) -> Any:
    """Return `value`, or `default` when it is null (an empty YAML value)."""
    return default if value is None else value


def _is_int(value: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """Name the YAML kind of a parsed value for error messages."""
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def _num(x: float | None, unbounded: str) -> str:
    """Format a range bound; None is `unbounded`."""
    return unbounded if x is None else f"{x:g}"
