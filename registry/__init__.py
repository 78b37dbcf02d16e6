"""The feature registry: versioned, validated feature definitions, separate from infrastructure config.

`load_registry_text(text, source)` parses a YAML/JSON document, validates it against
`registry.catalog` and returns a frozen `Registry` (column order, computation order, canonical text
and content hash). Pure: `registry.packaged` reads only the package's own `default.yaml`;
reading user files is `tools.registry_file`'s job.
"""

from registry.canonical import canonical_text, content_hash, format_duration
from registry.loader import computation_order, load_registry_text, parse_duration
from registry.model import (
    DEFAULT_EVERY_NS,
    RESERVED_NAMES,
    SUPPORTED_VERSIONS,
    FeatureDef,
    Normalise,
    Registry,
    RegistryError,
)

__all__ = [
    "DEFAULT_EVERY_NS",
    "RESERVED_NAMES",
    "SUPPORTED_VERSIONS",
    "FeatureDef",
    "Normalise",
    "Registry",
    "RegistryError",
    "canonical_text",
    "computation_order",
    "content_hash",
    "format_duration",
    "load_registry_text",
    "parse_duration",
]
