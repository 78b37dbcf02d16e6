"""Build frozen config dataclasses from parsed YAML, naming the dotted key of every error.

Each subsystem declares its own frozen dataclass (``journal/config.py``, …); this module turns a
mapping into one, rejecting unknown keys and mistyped values with the key's full dotted path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type; the message names the key.

    Subsystem configs (``journal/config.py``, …) raise plain `ValueError` from ``__post_init__``
    with the key relative to themselves (``"fsync_interval_ms: must be > 0"``); `build` prefixes
    the dotted path where the section sits, so the message is right however deep it is nested.
    """


def load_yaml_file(path: str | Path) -> Any:
    """Parse a YAML (or JSON) file, turning syntax errors into `ConfigError` naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a text file (byte {e.start} is not UTF-8)") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error_line(p, e)) from None


def yaml_error_line(path: str | Path, e: yaml.YAMLError) -> str:
    """One line ``file:line:column: not valid YAML: problem (context)`` for a YAML syntax error."""
    where, what = yaml_error_parts(e)
    return f"{path}{where}: not valid YAML: {what}"


def yaml_error_parts(e: yaml.YAMLError) -> tuple[str, str]:
    """``(":line:column", "problem (context at line, column)")`` of a YAML error, 1-based; one line each."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is None or not problem:
        return "", " ".join(str(e).split())
    text = problem
    context, at = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and at is not None:
        text += f" ({context} at line {at.line + 1}, column {at.column + 1})"
    elif context:
        text += f" ({context})"
    return f":{mark.line + 1}:{mark.column + 1}", text


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Return `cls` built from `data`; unknown keys and bad types raise `ConfigError` with the key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<root>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = _join(path, str(unknown[0]))
        raise ConfigError(f"{where}: unknown key (known keys here: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        key = _join(path, name)
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, OverflowError) as e:
        raise ConfigError(_join(path, str(e)) if path else str(e)) from None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _coerce(tp: Any, value: Any, key: str) -> Any:  # noqa: C901 - one branch per supported type
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{key}: {value!r} is not one of {choices}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        item = get_args(tp)[0] if get_args(tp) else Any
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_coerce(kt, k, key): _coerce(vt, v, _join(key, str(k))) for k, v in value.items()}
    return _scalar(tp, value, key)


def _scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {type(value).__name__} {value!r}")
