"""One model-service process: the model store, training jobs, the scorer and the inference thread, together."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
import zmq

from model_service.artifacts import ModelError, ModelStore
from model_service.config import ModelServiceConfig
from model_service.jobs import TrainingJobs
from model_service.metrics import ServiceMetrics
from model_service.request import RequestError, parse
from model_service.scorer import Scorer
from model_service.stream import Inference

log = structlog.get_logger("model_service")


class ModelService:
    """What the API and the stream act on; build it inside the running event loop."""

    def __init__(self, cfg: ModelServiceConfig) -> None:
        self.cfg = cfg
        self.loop = asyncio.get_running_loop()
        self.store = ModelStore(cfg.models_dir)
        self.store.dir.mkdir(parents=True, exist_ok=True)
        for model_id in self.store.fail_interrupted():
            log.warning("training_interrupted", model_id=model_id, what="marked failed; request it again to retrain")
        self.metrics = ServiceMetrics()
        self.scorer = Scorer(cfg.invalid_book, cfg.subscribe.symbols)
        self.jobs = TrainingJobs(self.store, cfg.training.workers, cfg.training.nice, on_done=self._trained)
        self._activate_when_done: set[str] = set()
        self.ctx = zmq.Context()
        try:
            self.inference = Inference(cfg, self.scorer, self.metrics, self.ctx, self._dataset_ready_threadsafe)
        except BaseException:
            self.ctx.destroy(linger=0)
            raise
        self.started_ns = time.time_ns()
        self._restore_active()

    def _restore_active(self) -> None:
        model_id = self.store.active_id()
        if model_id is None:
            return
        try:
            self.activate(model_id)
        except ModelError as e:
            log.error("active_model_not_loaded", model_id=model_id, error=str(e), what="serving with no model")

    def start(self) -> None:
        self.inference.start()

    def close(self) -> None:
        self.inference.stop()
        self.jobs.close()
        self.ctx.destroy(linger=0)

    def train(self, body: Any) -> dict[str, Any]:
        """Check a train request and queue it: ``{model_id, status}``; RequestError with the reason."""
        return self.jobs.submit(parse(body, self.cfg.datasets_dir))

    def activate(self, model_id: str) -> dict[str, Any]:
        """Load `model_id` and score with it from now on (and after a restart)."""
        model = self.store.load(model_id)
        previous = self.active_id()
        self.scorer.activate(model)
        self.store.set_active(model_id)
        self.metrics.set_active(model_id, model.registry_hash)
        log.info("model_activated", model_id=model_id, registry_hash=model.registry_hash,
                 horizon=model.metadata.get("horizon"), kind=model.metadata.get("kind"), previous=previous)
        return {"model_id": model_id, "registry_hash": model.registry_hash, "previous": previous}

    def active_id(self) -> str | None:
        return self.scorer.model.model_id if self.scorer.model is not None else None

    def _trained(self, result: dict[str, Any]) -> None:
        self.metrics.trainings.labels(result["status"]).inc()
        if result["status"] == "done" and result["model_id"] in self._activate_when_done:
            self._activate_when_done.discard(result["model_id"])
            self.activate(result["model_id"])

    def _dataset_ready_threadsafe(self, msg: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self._dataset_ready, msg)

    def _dataset_ready(self, msg: dict[str, Any]) -> None:
        """Train on an announced dataset with the configured template (``auto_train``)."""
        at = self.cfg.auto_train
        body = {"dataset_path": msg["path"], "horizon": at.horizon, "model": dict(at.model)}
        try:
            answer = self.train(body)
        except RequestError as e:
            log.warning("auto_train_refused", dataset_id=msg.get("dataset_id"), error=str(e))
            return
        if at.activate:
            if answer["status"] == "done":
                self.activate(answer["model_id"])
            else:
                self._activate_when_done.add(answer["model_id"])
        log.info("auto_train", dataset_id=msg.get("dataset_id"), **answer)

    def why_no_prediction(self) -> str:
        """One line on why nothing was predicted yet."""
        if self.scorer.model is None:
            return "no active model (POST /model/activate)"
        if self.scorer.last_skewed:
            return (f"vectors carry registry {self.scorer.last_hash}, the active model was trained on "
                    f"{self.scorer.model.registry_hash}")
        if not self.inference.received:
            return f"no vector received from {', '.join(self.cfg.subscribe.endpoints)}"
        return "no vector of this symbol scored yet"

    def health(self) -> dict[str, Any]:
        """Status (ok, idle, no_model, skew), the active model, vector counts, refusals per reason and per hash."""
        s, inf, m = self.scorer, self.inference, self.scorer.model
        if m is None:
            status, message = "no_model", "no active model: vectors are not scored"
        elif s.last_skewed:
            status, message = "skew", (f"refusing vectors of registry {s.last_hash}: the active model {m.model_id} "
                                       f"was trained on registry {m.registry_hash}")
        elif not inf.received or time.time_ns() - inf.last_receipt_ns > 5_000_000_000:
            status, message = "idle", "no vector received in the last 5 s"
        else:
            status, message = "ok", "scoring"
        age = (time.time_ns() - inf.last_receipt_ns) / 1e9 if inf.last_receipt_ns else None
        return {"status": status, "message": message,
                "active_model": None if m is None else {"model_id": m.model_id, "registry_hash": m.registry_hash,
                                                        "horizon": m.metadata.get("horizon")},
                "vectors": {"received": inf.received, "scored": s.scored, "bad": inf.bad,
                            "refused": dict(s.refused), "last_received_age_s": age},
                "skew": dict(s.skew), "subscribe": list(self.cfg.subscribe.endpoints),
                "trainings_running": self.jobs.running()}
