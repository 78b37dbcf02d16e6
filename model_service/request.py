"""A train request: parsed and checked before anything runs, and its model id.

Body (JSON)::

    {"dataset_id": "3135e1989d15df83"  | "dataset_path": "/data/datasets/3135e1989d15df83",
     "horizon": "60s",                          # one of the dataset's horizons: trains label_<horizon>
     "model": {"kind": "auto" | "logistic" | "hist_gradient_boosting", "params": {...}},
     "split": {"validation": 0.2, "test": 0.2}}  # optional; fractions of the dataset's ticks, by time

The model id is 16 hex digits of SHA-256 over the dataset id, its registry hash and the rest of the
request, so the same request gives the same id (and is trained once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from model_service.dataset import Dataset, DatasetError, open_dataset, resolve
from model_service.models import ModelSpecError, normalise

#: Bumped when training changes what the same request produces.
TRAINING_FORMAT = 1
_KEYS = ("dataset_id", "dataset_path", "horizon", "model", "split")


class RequestError(ValueError):
    """A train request that cannot be served; the message is the API's 400 reason."""


@dataclass(frozen=True)
class TrainRequest:
    """A checked train request (plain data: it crosses into the training process)."""

    dataset_path: str
    dataset_id: str
    registry_hash: str
    horizon: str
    kind: str
    params: dict[str, dict[str, Any]]
    validation: float = 0.2
    test: float = 0.2

    def as_dict(self) -> dict[str, Any]:
        return {"dataset_path": self.dataset_path, "dataset_id": self.dataset_id,
                "registry_hash": self.registry_hash, "horizon": self.horizon, "kind": self.kind,
                "params": self.params, "validation": self.validation, "test": self.test}

    def model_id(self) -> str:
        """The id this request's model gets: the same request, the same id."""
        doc = {k: v for k, v in self.as_dict().items() if k != "dataset_path"}
        doc["format"] = TRAINING_FORMAT
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def parse(body: Any, datasets_dir: str | Path) -> TrainRequest:
    """Check a train request body against the dataset it names; RequestError with the reason."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object {dataset_id | dataset_path, horizon, model}")
    unknown = [k for k in body if k not in _KEYS]
    if unknown:
        raise RequestError(f"unknown field {str(unknown[0])[:40]!r}; known: {', '.join(_KEYS)}")
    try:
        ds = open_dataset(resolve(datasets_dir, body.get("dataset_id"), body.get("dataset_path")))
        kind, params = normalise(body.get("model"))
    except (DatasetError, ModelSpecError) as e:
        raise RequestError(str(e)) from None
    horizon = _horizon(body.get("horizon"), ds)
    validation, test = _split(body.get("split"))
    return TrainRequest(str(ds.path.resolve()), ds.dataset_id, ds.registry_hash, horizon, kind, params,
                        validation, test)


def _horizon(h: Any, ds: Dataset) -> str:
    if h is None and len(ds.horizons) == 1:
        return ds.horizons[0]
    if not isinstance(h, str) or not h:
        raise RequestError(f"horizon is required: one of the dataset's horizons ({', '.join(ds.horizons)})")
    if h not in ds.horizons:
        raise RequestError(f"dataset {ds.dataset_id} has no horizon {h!r} (no label_{h}); "
                           f"it has {', '.join(ds.horizons)}")
    return h


def _split(split: Any) -> tuple[float, float]:
    if split is None:
        return 0.2, 0.2
    if not isinstance(split, dict) or set(split) - {"validation", "test"}:
        raise RequestError("split must be an object {validation, test} of fractions")
    v, t = split.get("validation", 0.2), split.get("test", 0.2)
    for name, x in (("validation", v), ("test", t)):
        if isinstance(x, bool) or not isinstance(x, int | float) or not 0.05 <= x <= 0.45:
            raise RequestError(f"split.{name} must be a fraction in [0.05, 0.45], got {x!r}")
    return float(v), float(t)
