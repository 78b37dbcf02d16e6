"""The canonical text of a registry and its content hash.

The canonical text is compact JSON with sorted keys (ASCII, no NaN) of::

    {"version": V, "features": [F, ...]}          # features in column (file) order

where each ``F`` holds every field with defaults filled in: ``name``, ``function``, ``sources``
(sorted), ``every`` and — when present — ``window`` as durations in their shortest exact unit
(``"500ms"``, ``"3s"``, ``"1m"``, ``"1h"``), ``params`` (every parameter, catalogue defaults
included; floats as floats), ``inputs``, and — when declared — ``normalise`` (``method`` plus its
parameters). The content hash is the hex SHA-256 of that text's bytes. Key order, formatting,
comments, duration spelling (``60s`` = ``1m``) and spelling a default explicitly therefore never
change the hash; any semantic change does. The canonical text is itself a valid registry document
(`load_registry_text` reads it back to the same hash), so it is what gets journaled.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from registry.model import FeatureDef

#: Duration units, largest first: (suffix, nanoseconds).
UNITS = (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6))


def format_duration(ns: int) -> str:
    """Spell a positive whole-millisecond duration in its largest exact unit (60_000_000_000 -> "1m")."""
    for suffix, size in UNITS:
        if ns % size == 0:
            return f"{ns // size}{suffix}"
    raise ValueError(f"duration {ns} ns is not a whole number of milliseconds")


def feature_doc(f: FeatureDef) -> dict[str, Any]:
    """Return the canonical mapping of one feature (every default filled in)."""
    doc: dict[str, Any] = {
        "name": f.name,
        "function": f.function,
        "sources": sorted(f.sources),
        "every": format_duration(f.every_ns),
        "params": dict(f.params),
        "inputs": list(f.inputs),
    }
    if f.window_ns is not None:
        doc["window"] = format_duration(f.window_ns)
    if f.normalise is not None:
        doc["normalise"] = {"method": f.normalise.method, **dict(f.normalise.params)}
    return doc


def canonical_text(version: int, features: tuple[FeatureDef, ...]) -> str:
    """Return the canonical JSON text of a registry."""
    doc = {"version": version, "features": [feature_doc(f) for f in features]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def content_hash(canonical: str) -> str:
    """Return the hex SHA-256 of the canonical text."""
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
