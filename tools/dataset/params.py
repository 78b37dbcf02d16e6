"""What a dataset build is asked for: the range, symbols, horizons, threshold and registry, checked.

The parameters, the registry and the source data fix a dataset: `dataset_id` hashes exactly them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

#: Dataset format version (in the id and the manifest): bump when files would change for the same inputs.
FORMAT = 1
ID_RE = re.compile(r"^[0-9a-f]{16}$")
_HORIZON_RE = re.compile(r"^([1-9][0-9]{0,6})(s|m|h)$")
_UNIT_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


class DatasetRequestError(ValueError):
    """A build request that cannot be served (bad range, horizon, symbol, no data): the reason."""


def parse_horizons(text: str) -> dict[str, int]:
    """`60s,5m` → {"60s": 60e9, "5m": 300e9} (ns, kept as given for the column names); bad → error."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        m = _HORIZON_RE.match(part)
        if not m:
            raise DatasetRequestError(f"horizon {part!r} is not a whole number of s, m or h (e.g. 60s,5m)")
        ns = int(m.group(1)) * _UNIT_NS[m.group(2)]
        if ns in out.values():
            raise DatasetRequestError(f"horizon {part!r} repeats a horizon already given")
        out[part] = ns
    if not out:
        raise DatasetRequestError("no horizon given (e.g. 60s)")
    return out


@dataclass(frozen=True)
class BuildParams:
    """A checked build request (times are epoch ns, the range half-open [from, to))."""

    from_ns: int
    to_ns: int
    symbols: tuple[str, ...]
    horizons: dict[str, int]
    threshold_bps: float = 2.0
    drop_invalid: bool = False
    #: Canonical text of a what-if registry (None: the journaled ones).
    registry_text: str | None = None
    registry_hash: str | None = None

    def __post_init__(self) -> None:
        if self.from_ns >= self.to_ns:
            raise DatasetRequestError("from is not before to (the range [from, to) is empty)")
        if not 0 <= self.threshold_bps <= 10_000:
            raise DatasetRequestError(f"threshold_bps {self.threshold_bps} is not within [0, 10000]")

    @property
    def longest_ns(self) -> int:
        """The longest horizon: how far past `to` a build reads mids."""
        return max(self.horizons.values())

    def canonical(self) -> dict[str, Any]:
        """The parameters as JSON-ready data (the manifest's `params`, hashed into the id)."""
        return {"from_ns": self.from_ns, "to_ns": self.to_ns, "symbols": list(self.symbols),
                "horizons": list(self.horizons), "horizons_ns": dict(self.horizons),
                "threshold_bps": self.threshold_bps, "drop_invalid": self.drop_invalid,
                "registry": self.registry_hash or "journaled"}


def dataset_id(params: BuildParams, source: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """16 hex digits of SHA-256 over the format, parameters and source: the same inputs, the same id."""
    doc = {"format": FORMAT, "params": params.canonical(), "source": source, **(extra or {})}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
