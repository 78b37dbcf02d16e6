"""The features.live wire format shared by the shard's publisher and every subscriber.

One ZMQ multipart message per symbol per tick: ``[b"features.live.<SYMBOL>", payload]``, the
payload a msgpack map::

    {"ts": int,              # tick boundary, ns since the epoch (UTC)
     "symbol": str,          # equals the topic's suffix
     "registry_hash": str,   # hex content hash of the registry that made the vector
     "book_valid": 0 | 1,    # 0 while the symbol's book is being resynced (book features NaN)
     "values": bytes}        # float64 little-endian, one per feature, in registry column order

Feature names come from ``GET /features/schema?registry_hash=<hash>`` (every hash a shard has used
stays answerable). A subscriber that prints named features (shard API on :8080, stream on :5560)::

    import json, urllib.request, zmq
    from api.wire import TOPIC_PREFIX, decode
    API, names = "http://127.0.0.1:8080", {}
    sub = zmq.Context().socket(zmq.SUB); sub.connect("tcp://127.0.0.1:5560"); sub.subscribe(TOPIC_PREFIX)
    while True:
        v = decode(sub.recv_multipart())
        if v.registry_hash not in names:
            url = f"{API}/features/schema?registry_hash={v.registry_hash}"
            names[v.registry_hash] = json.load(urllib.request.urlopen(url))["names"]
        print(v.ts_ns, v.symbol, v.book_valid, dict(zip(names[v.registry_hash], v.values.tolist())))

Subscribe to ``TOPIC_PREFIX + b"BTCUSDT"`` for one symbol (ZMQ filters by prefix: that also
matches ``BTCUSDT2``, so compare ``v.symbol``); for every symbol, connect one SUB socket to every
shard's endpoint.
This module imports only numpy and msgpack, so subscribers need nothing else of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import msgpack
import numpy as np

if TYPE_CHECKING:
    from engine.engine import Vector

#: Every features.live topic starts with this; the symbol follows.
TOPIC_PREFIX = b"features.live."

#: The dtype of the payload's ``values``: float64, little-endian.
VALUES_DTYPE = np.dtype("<f8")

_KEYS = frozenset({"ts", "symbol", "registry_hash", "book_valid", "values"})


class WireVector(NamedTuple):
    """One decoded features.live message (same fields and order as `engine.engine.Vector`)."""

    ts_ns: int
    symbol: str
    book_valid: int
    values: np.ndarray
    registry_hash: str


def topic(symbol: str) -> bytes:
    """Return the features.live topic of `symbol`."""
    return TOPIC_PREFIX + symbol.encode("utf-8")


def encode(v: Vector | WireVector) -> list[bytes]:
    """Return the multipart message ``[topic, payload]`` carrying vector `v` bit for bit."""
    values = np.ascontiguousarray(v.values, dtype=VALUES_DTYPE)
    payload = msgpack.packb({
        "ts": int(v.ts_ns),
        "symbol": v.symbol,
        "registry_hash": v.registry_hash,
        "book_valid": 1 if v.book_valid else 0,
        "values": values.tobytes(),
    }, use_bin_type=True)
    return [topic(v.symbol), payload]


def decode(parts: Sequence[bytes]) -> WireVector:
    """Parse one features.live message; raise ValueError naming what is wrong (topic, field)."""
    if len(parts) != 2:
        raise ValueError(f"features.live message has {len(parts)} parts, expected 2 (topic, payload)")
    head, payload = bytes(parts[0]), bytes(parts[1])
    if not head.startswith(TOPIC_PREFIX):
        raise ValueError(f"topic {head!r} is not a features.live topic (expected {TOPIC_PREFIX!r}<SYMBOL>)")
    m = _unpack(payload, head)
    symbol, values = m["symbol"], m["values"]
    if head != topic(symbol):
        raise ValueError(f"topic {head!r} does not match the payload's symbol {symbol!r}")
    if len(values) % VALUES_DTYPE.itemsize:
        raise ValueError(f"{head!r}: values has {len(values)} bytes, not a multiple of 8")
    return WireVector(m["ts"], symbol, m["book_valid"], np.frombuffer(values, dtype=VALUES_DTYPE),
                      m["registry_hash"])


def _unpack(payload: bytes, head: bytes) -> dict:
    """Unpack and type-check the payload map of the message on topic `head`."""
    try:
        m = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        raise ValueError(f"{head!r}: payload is not msgpack: {e}") from None
    if not isinstance(m, dict) or set(m) != _KEYS:
        got = sorted(map(str, m)) if isinstance(m, dict) else type(m).__name__
        raise ValueError(f"{head!r}: payload must be a map with keys {sorted(_KEYS)}, got {got}")
    types = {"ts": int, "symbol": str, "registry_hash": str, "book_valid": int, "values": bytes}
    for key, want in types.items():
        if not isinstance(m[key], want) or isinstance(m[key], bool):
            raise ValueError(f"{head!r}: payload field {key!r} must be {want.__name__}, "
                             f"got {type(m[key]).__name__}")
    if m["book_valid"] not in (0, 1):
        raise ValueError(f"{head!r}: payload field 'book_valid' must be 0 or 1, got {m['book_valid']}")
    return m
