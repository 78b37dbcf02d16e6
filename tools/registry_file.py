"""Read feature registries from disk: a user's file, or the packaged `registry/default.yaml`."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from registry import Registry, RegistryError, load_registry_text

#: The `source` recorded for the packaged default registry.
DEFAULT_SOURCE = "registry/default.yaml"


def load_registry_file(path: str | Path) -> Registry:
    """Read and validate the registry at `path`; raise `RegistryError` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise RegistryError(f"cannot read registry: {reason}", str(path)) from None
    return load_registry_text(text, source=str(path))


def default_registry_text() -> str:
    """Return the text of the packaged default registry."""
    return resources.files("registry").joinpath("default.yaml").read_text(encoding="utf-8")


@functools.cache
def default_registry() -> Registry:
    """Return the packaged default registry (loaded once; a Registry is immutable)."""
    return load_registry_text(default_registry_text(), source=DEFAULT_SOURCE)
