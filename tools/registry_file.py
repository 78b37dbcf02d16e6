"""Read feature registries from disk: a user's file, or the packaged `registry/default.yaml`."""

from __future__ import annotations

import re
from pathlib import Path

from registry import Registry, RegistryError, load_registry_text
from registry.packaged import DEFAULT_SOURCE, default_registry, default_registry_text  # noqa: F401 - re-exported


def load_registry_file(path: str | Path) -> Registry:
    """Read and validate the registry at `path`; raise `RegistryError` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise RegistryError(f"cannot read registry: {reason}", str(path)) from None
    try:
        return load_registry_text(text, source=str(path))
    except RegistryError as e:
        if not e.reason.startswith("not valid YAML"):
            raise
        raise _one_line_yaml_error(text, str(path), e.reason) from None


def _one_line_yaml_error(text: str, path: str, reason: str) -> RegistryError:
    """The loader's multi-line YAML error as ``file:line:column: not valid YAML: problem``."""
    import yaml

    from tools.typedconfig import yaml_error_parts

    try:
        yaml.safe_load(text)
    except yaml.YAMLError as e:
        where, what = yaml_error_parts(e)
        return RegistryError(f"not valid YAML: {what}", f"{path}{where}")
    # Only the strict loader objects (a duplicate key): take its last "found ... line L, column C".
    text = " ".join(reason.split())
    found = re.findall(r'(found [^"]*?) in "[^"]*", line (\d+), column (\d+)', text)
    if not found:
        return RegistryError(text, path)
    what, line, column = found[-1]
    return RegistryError(f"not valid YAML: {what}", f"{path}:{line}:{column}")
