"""The default registry shipped inside this package (`registry/default.yaml`).

Reading the package's own resource is not input from the environment: every process gets the same
bytes. User files are `tools.registry_file`'s job.
"""

from __future__ import annotations

import functools
from importlib import resources

from registry.loader import load_registry_text
from registry.model import Registry

#: The `source` recorded for the packaged default registry.
DEFAULT_SOURCE = "registry/default.yaml"


def default_registry_text() -> str:
    """Return the text of the packaged default registry."""
    return resources.files("registry").joinpath("default.yaml").read_text(encoding="utf-8")


@functools.cache
def default_registry() -> Registry:
    """Return the packaged default registry (loaded once; a Registry is immutable)."""
    return load_registry_text(default_registry_text(), source=DEFAULT_SOURCE)
