"""The model.predictions wire format: one ZMQ multipart message per scored vector.

``[b"model.predictions.<SYMBOL>", payload]``, the payload a msgpack map::

    {"ts": int,                 # the vector's tick boundary, ns since the epoch (UTC)
     "symbol": str,
     "model_id": str,           # the model that scored it
     "registry_hash": str,      # the registry of the vector (= the model's)
     "probabilities": {"-1": float, "0": float, "1": float},
     "latency_ns": int}         # from the vector's receipt to this message's send

This module imports only msgpack, so consumers need nothing else of ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

TOPIC_PREFIX = b"model.predictions."
_KEYS = frozenset({"ts", "symbol", "model_id", "registry_hash", "probabilities", "latency_ns"})


def topic(symbol: str) -> bytes:
    """The model.predictions topic of `symbol`."""
    return TOPIC_PREFIX + symbol.encode("utf-8")


def encode(ts_ns: int, symbol: str, model_id: str, registry_hash: str, proba: Sequence[float],
           latency_ns: int) -> list[bytes]:
    """The multipart message of one prediction; `proba` in class order -1, 0, 1."""
    body = {"ts": int(ts_ns), "symbol": symbol, "model_id": model_id, "registry_hash": registry_hash,
            "probabilities": {"-1": float(proba[0]), "0": float(proba[1]), "1": float(proba[2])},
            "latency_ns": int(latency_ns)}
    return [topic(symbol), msgpack.packb(body, use_bin_type=True)]


def decode(parts: Sequence[bytes]) -> dict[str, Any]:
    """Parse one model.predictions message; ValueError naming what is wrong."""
    if len(parts) != 2 or not bytes(parts[0]).startswith(TOPIC_PREFIX):
        raise ValueError("not a model.predictions message ([topic, payload])")
    try:
        m = msgpack.unpackb(bytes(parts[1]), raw=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise ValueError(f"model.predictions payload is not msgpack: {e}") from None
    if not isinstance(m, dict) or set(m) != _KEYS:
        raise ValueError(f"model.predictions payload must have keys {sorted(_KEYS)}")
    if bytes(parts[0]) != topic(m["symbol"]):
        raise ValueError(f"topic {bytes(parts[0])!r} does not match the payload's symbol {m['symbol']!r}")
    return m
