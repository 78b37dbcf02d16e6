"""Train one model on a dataset (in a worker process): split by time, fit, evaluate, write the artifacts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from model_service.artifacts import ModelStore
from model_service.dataset import load_rows, open_dataset
from model_service.evaluate import CLASSES, align, class_prior, evaluate
from model_service.models import KINDS, as_input, fit
from model_service.request import TrainRequest
from model_service.split import time_split


class TrainingError(ValueError):
    """The data cannot train a model (one class only, too few rows); the status says why."""


def run_training(models_dir: str, request: dict[str, Any]) -> dict[str, Any]:
    """The worker entry point: train `request`, record done or failed in its status; never raises."""
    req = TrainRequest(**request)
    store, model_id = ModelStore(models_dir), req.model_id()
    store.write_status(model_id, "running", request=request)
    try:
        meta = train(store, req)
    except Exception as e:  # noqa: BLE001 - every failure ends as a `failed` status with its reason
        error = str(e) or type(e).__name__
        store.write_status(model_id, "failed", error=error, request=request)
        return {"model_id": model_id, "status": "failed", "error": error}
    store.write_status(model_id, "done", request=request)
    return {"model_id": model_id, "status": "done", "metadata": meta}


def train(store: ModelStore, req: TrainRequest) -> dict[str, Any]:
    """Fit every candidate on the train part, keep the best on validation, report it on test; save it."""
    started = time.perf_counter()
    ds = open_dataset(Path(req.dataset_path))
    if ds.registry_hash != req.registry_hash:
        raise TrainingError(f"dataset {ds.dataset_id} changed since the request (registry {ds.registry_hash})")
    rows = load_rows(ds, req.horizon)
    split = time_split(rows.ts, ds.horizon_ns(req.horizon), req.validation, req.test)
    x, y = as_input(rows.x), rows.y
    if len(set(y[split.train].tolist())) < 2:
        raise TrainingError(f"the training part has only label {y[split.train][0]}: nothing to learn")
    prior = class_prior(y[split.train])
    candidates = {}
    for kind in (KINDS if req.kind == "auto" else (req.kind,)):
        t0 = time.perf_counter()
        est, empty = fit(kind, req.params[kind], x[split.train], y[split.train])
        val = evaluate(y[split.validation], align(est.classes_, est.predict_proba(x[split.validation])), prior)
        candidates[kind] = (est, val, time.perf_counter() - t0)
    kind = min(candidates, key=lambda k: candidates[k][1]["log_loss"])
    est, val, fit_s = candidates[kind]
    test = evaluate(y[split.test], align(est.classes_, est.predict_proba(x[split.test])), prior)
    meta = _metadata(req, ds, rows, split, kind, est, val, test, candidates, fit_s, time.perf_counter() - started)
    meta["features_missing_in_training"] = [ds.feature_names[i] for i in empty]
    staging = store.staging(req.model_id())
    store.save(staging, est, meta)
    store.commit(staging, req.model_id())
    return meta


def _metadata(req, ds, rows, split, kind, est, val, test, candidates, fit_s, seconds) -> dict[str, Any]:  # noqa: ANN001, PLR0913
    """Everything needed to trust, reproduce and serve the model."""
    import sklearn

    from tools.cli import version

    return {
        "model_id": req.model_id(), "dataset_id": ds.dataset_id, "dataset_path": req.dataset_path,
        "registry_hash": ds.registry_hash, "feature_names": ds.feature_names, "n_features": len(ds.feature_names),
        "horizon": req.horizon, "label": f"label_{req.horizon}", "classes": list(CLASSES),
        "kind": kind, "requested_kind": req.kind, "params": {**req.params[kind]},
        "estimator_params": {k: _plain(v) for k, v in _inner(est).get_params(deep=False).items()},
        "rows": {"read": rows.rows_read, "dropped": rows.dropped, "used": int(len(rows.y)),
                 **split.sizes(len(rows.y))},
        "split": {"validation": req.validation, "test": req.test, "gap_ns": split.gap_ns,
                  "validation_from_ns": split.validation_from_ns, "test_from_ns": split.test_from_ns,
                  "train_from_ns": int(rows.ts[0]), "test_to_ns": int(rows.ts[-1])},
        "metrics": {"validation": val, "test": test},
        "candidates": {k: {"validation_log_loss": c[1]["log_loss"], "fit_seconds": round(c[2], 3)}
                       for k, c in candidates.items()},
        "training_seconds": round(seconds, 3), "fit_seconds": round(fit_s, 3),
        "format": "skops", "sklearn_version": sklearn.__version__, "code_version": version(),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _inner(est: Any) -> Any:
    return est.steps[-1][1] if hasattr(est, "steps") else est


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, np.generic):
        return v.item()
    return repr(v)
