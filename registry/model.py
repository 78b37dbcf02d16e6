"""The feature registry's frozen data model: one `FeatureDef` per column, gathered in a `Registry`.

Instances are built only by `registry.loader`, which validates everything against
`registry.catalog` first; a `Registry` that exists is complete and consistent. Durations are int
nanoseconds; parameters carry every catalogue default filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NS_PER_S = 1_000_000_000

#: Registry format versions this loader understands (the top-level ``version:`` key).
SUPPORTED_VERSIONS = (1,)

#: Cadence of a feature that declares no ``every:``: every tick (1 s).
DEFAULT_EVERY_NS = NS_PER_S

#: Column names the vector layout already uses beside the features (`journal/feature_log.py`): the
#: leading columns, and the feature log's last one.
RESERVED_NAMES = frozenset({"ts", "symbol", "book_valid", "registry_hash"})

#: Parameters as ``(name, value)`` pairs in catalogue declaration order; ``dict(params)`` maps them.
Params = tuple[tuple[str, Any], ...]


class RegistryError(ValueError):
    """A registry document is invalid; the message names the source, the feature and the field."""

    def __init__(self, message: str, source: str, feature: str | None = None, field: str | None = None):
        self.source, self.feature, self.field, self.reason = source, feature, field, message
        super().__init__(": ".join(p for p in (source, feature, field, message) if p))


@dataclass(frozen=True)
class Normalise:
    """A normalisation applied to a feature's raw output, e.g. a rolling z-score over `n` ticks."""

    method: str
    params: Params = ()

    @property
    def n(self) -> int:
        """The window length in ticks (``n``) of the method."""
        return int(dict(self.params)["n"])


@dataclass(frozen=True)
class FeatureDef:
    """One validated feature: which catalogue function computes it, on what, how often."""

    name: str
    function: str
    sources: tuple[str, ...]
    window_ns: int | None
    every_ns: int
    params: Params
    inputs: tuple[str, ...]
    normalise: Normalise | None

    def param(self, name: str) -> Any:
        """Return the value of parameter `name` (KeyError if the function has none)."""
        return dict(self.params)[name]


@dataclass(frozen=True)
class Registry:
    """A validated, hashed set of features; `features` is the column order, `order` the computation order."""

    version: int
    features: tuple[FeatureDef, ...]
    order: tuple[int, ...]
    content_hash: str
    canonical: str
    source: str
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Index the features by name."""
        object.__setattr__(self, "_index", {f.name: i for i, f in enumerate(self.features)})

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in column (file) order."""
        return tuple(f.name for f in self.features)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The vector's feature columns, in layout order (the file order)."""
        return self.names

    def index_of(self, name: str) -> int:
        """Return the column index of feature `name` (KeyError naming it if absent)."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no feature named {name!r} in registry {self.source}") from None

    def feature(self, name: str) -> FeatureDef:
        """Return the definition of feature `name` (KeyError naming it if absent)."""
        return self.features[self.index_of(name)]

    def __len__(self) -> int:
        """Number of features (columns)."""
        return len(self.features)
