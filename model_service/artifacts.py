"""Models on disk: ``<data_dir>/models/<model_id>/`` with ``model.skops`` and ``metadata.json``.

Weights are stored with skops (https://skops.readthedocs.io): a zip of the estimator's state that
loads without pickle, so a model file cannot run code; only the sklearn/numpy types listed in
`TRUSTED_PREFIXES` are accepted on load. (ONNX was tried first: skl2onnx 1.20 cannot convert this
scikit-learn's HistGradientBoosting, and onnxruntime has no float64 Imputer; skops keeps the
estimator exactly as validated, and sklearn scores one vector in ~0.3 ms.)

A model directory appears whole or not at all (written under ``.staging-<id>``, then renamed); its
status lives in ``_status/<id>.json`` (queued, running, done, failed) and the active model's id in
``_active.json``, so a restart finds both.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from model_service.evaluate import CLASSES, align
from model_service.models import as_input

MODEL_FILE = "model.skops"
METADATA = "metadata.json"
STATUS_DIR = "_status"
ACTIVE = "_active.json"
MODEL_ID_RE = re.compile(r"^[0-9a-f]{16}$")
#: Types a model file may hold beyond skops' defaults.
TRUSTED_PREFIXES = ("sklearn.", "numpy.")


class ModelError(ValueError):
    """A model cannot be found, loaded or activated; the message says which and why."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score: the estimator and what it was trained on."""

    model_id: str
    registry_hash: str
    feature_names: tuple[str, ...]
    estimator: Any
    metadata: dict[str, Any]
    #: The estimator's trees compiled (`model_service.fasttrees`), or None: sklearn scores.
    fast: Any = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of each row of `x` (registry column order), columns in `CLASSES` order."""
        return align(self.estimator.classes_, (self.fast or self.estimator).predict_proba(as_input(x)))


def compiled(est: Any) -> Any:
    """The compiled scorer of a HistGradientBoosting estimator (identical probabilities), else None."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from model_service.fasttrees import compile_hgb

    return compile_hgb(est) if isinstance(est, HistGradientBoostingClassifier) else None


def _dump(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    os.replace(tmp, path)


class ModelStore:
    """The models directory: statuses, artifacts, the active pointer."""

    def __init__(self, models_dir: str | Path) -> None:
        self.dir = Path(models_dir)

    def check_id(self, model_id: str) -> str:
        """`model_id` if well formed (so it can never name a path outside the directory); ModelError if not."""
        if not isinstance(model_id, str) or not MODEL_ID_RE.match(model_id):
            raise ModelError(f"malformed model id {str(model_id)[:80]!r}: 16 lower-case hex digits")
        return model_id

    def write_status(self, model_id: str, status: str, **fields: Any) -> None:
        """Replace the status file of `model_id` atomically."""
        d = self.dir / STATUS_DIR
        d.mkdir(parents=True, exist_ok=True)
        _dump(d / f"{model_id}.json", {"model_id": model_id, "status": status, **fields})

    def status(self, model_id: str) -> dict[str, Any] | None:
        """``{model_id, status, error?, metadata?}``; None for an id never requested."""
        self.check_id(model_id)
        try:
            s = orjson.loads((self.dir / STATUS_DIR / f"{model_id}.json").read_bytes())
        except FileNotFoundError:
            s = None
        meta = self.metadata(model_id)
        if meta is not None:
            return {"model_id": model_id, "status": "done", "metadata": meta}
        return s

    def metadata(self, model_id: str) -> dict[str, Any] | None:
        """The metadata of a trained model, None when there is none."""
        try:
            return orjson.loads((self.dir / self.check_id(model_id) / METADATA).read_bytes())
        except FileNotFoundError:
            return None

    def list(self) -> list[dict[str, Any]]:
        """Every model requested: a line each, newest status."""
        out = {}
        sdir = self.dir / STATUS_DIR
        for f in sorted(sdir.glob("*.json")) if sdir.is_dir() else []:
            s = orjson.loads(f.read_bytes())
            out[s["model_id"]] = {k: s[k] for k in ("model_id", "status", "error") if k in s}
        for d in sorted(self.dir.iterdir()) if self.dir.is_dir() else []:
            if MODEL_ID_RE.match(d.name) and (meta := self.metadata(d.name)) is not None:
                out[d.name] = {"model_id": d.name, "status": "done", **_summary(meta)}
        active = self.active_id()
        return [{**m, "active": m["model_id"] == active} for m in out.values()]

    def staging(self, model_id: str) -> Path:
        """A fresh staging directory for `model_id`."""
        d = self.dir / f".staging-{self.check_id(model_id)}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def commit(self, staging: Path, model_id: str) -> Path:
        """Move a complete staging directory into place."""
        final = self.dir / model_id
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        return final

    def save(self, staging: Path, estimator: Any, metadata: dict[str, Any]) -> None:
        """Write the weights and the metadata into `staging`."""
        import skops.io as sio

        sio.dump(estimator, staging / MODEL_FILE)
        _dump(staging / METADATA, metadata)

    def load(self, model_id: str) -> LoadedModel:
        """The trained model `model_id`, ready to score; ModelError when it is not done or not loadable."""
        meta = self.metadata(model_id)
        if meta is None:
            s = self.status(model_id)
            state = "never requested" if s is None else s["status"] + (f": {s['error']}" if s.get("error") else "")
            raise ModelError(f"model {model_id} is not trained ({state})")
        est = load_estimator(self.dir / model_id / MODEL_FILE)
        return LoadedModel(model_id, meta["registry_hash"], tuple(meta["feature_names"]), est, meta, compiled(est))

    def set_active(self, model_id: str) -> None:
        """Make `model_id` the model a restart activates."""
        self.dir.mkdir(parents=True, exist_ok=True)
        _dump(self.dir / ACTIVE, {"model_id": self.check_id(model_id)})

    def active_id(self) -> str | None:
        """The id of the active model, None when none was activated."""
        try:
            return orjson.loads((self.dir / ACTIVE).read_bytes())["model_id"]
        except FileNotFoundError:
            return None

    def fail_interrupted(self) -> list[str]:
        """Mark queued or running trainings of a previous process as failed; return their ids."""
        failed = []
        for m in self.list():
            if m["status"] in ("queued", "running"):
                s = self.status(m["model_id"]) or {}
                self.write_status(m["model_id"], "failed", error="interrupted: model-service stopped during training",
                                  request=s.get("request"))
                failed.append(m["model_id"])
        return failed


def load_estimator(path: Path) -> Any:
    """Load a skops file, refusing any type outside sklearn and numpy."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # noqa: BLE001 - a damaged zip, a foreign file: one reason
        raise ModelError(f"{path}: not a readable skops model: {e}") from None
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if foreign:
        raise ModelError(f"{path}: refusing to load types outside sklearn and numpy: {', '.join(foreign[:5])}")
    est = sio.load(path, trusted=untrusted)
    if sorted(int(c) for c in est.classes_) != sorted(set(int(c) for c in est.classes_) & set(CLASSES)):
        raise ModelError(f"{path}: the model's classes {list(est.classes_)} are not labels -1, 0, 1")
    return est


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    keep = ("dataset_id", "registry_hash", "horizon", "kind", "created_at")
    out = {k: meta[k] for k in keep if k in meta}
    test = meta.get("metrics", {}).get("test", {})
    if test:
        out["test_accuracy"], out["test_log_loss"] = test.get("accuracy"), test.get("log_loss")
    return out
