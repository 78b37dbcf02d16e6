"""The inference loop: features.live in, model.predictions out, on a thread of its own.

One SUB socket connects to every configured shard endpoint and subscribes to each scored symbol's
topic (or all of features.live). Messages waiting together are scored in one `predict_proba` call,
so a tick's burst of symbols costs one model call; each prediction's ``latency_ns`` runs from its
own vector's receipt to its send. The thread only reads `Scorer.model` once per batch, so a model
activated meanwhile never scores a batch admitted under another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import structlog
import zmq

from api.publisher import Publisher, PublishError
from api.wire import TOPIC_PREFIX, decode, topic
from model_service import wire
from model_service.config import ModelServiceConfig
from model_service.metrics import ServiceMetrics
from model_service.scorer import Scorer

log = structlog.get_logger("model_service.stream")

#: The shard's announcement of a finished dataset (tools/shard/dataset_runner.py).
READY_TOPIC = b"features.dataset.ready"
#: Most messages taken off the socket before scoring them together.
MAX_BATCH = 512
#: Bad messages logged one by one before the rest are only counted.
LOGGED_BAD = 20


class Inference:
    """Subscribe, score, publish; `latest` holds each symbol's newest prediction for the API."""

    def __init__(self, cfg: ModelServiceConfig, scorer: Scorer, metrics: ServiceMetrics, ctx: zmq.Context,
                 on_dataset_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.scorer, self.metrics, self.on_dataset_ready = scorer, metrics, on_dataset_ready
        self.endpoints = cfg.subscribe.endpoints
        self.latest: dict[str, dict[str, Any]] = {}
        self.received = self.bad = 0
        self.last_receipt_ns = 0
        self._stop = threading.Event()
        try:
            self.pub = Publisher(cfg.publish.endpoint, ctx, cfg.publish.sndhwm)
        except PublishError as e:
            raise OSError(f"cannot bind model.predictions endpoint {e.endpoint}: {e.reason}") from None
        self.sub = zmq.Socket(ctx, zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, cfg.subscribe.rcvhwm)
        for s in cfg.subscribe.symbols or ("",):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic(s) if s else TOPIC_PREFIX)
        if cfg.auto_train.enabled:
            self.sub.setsockopt(zmq.SUBSCRIBE, READY_TOPIC)
        for e in self.endpoints:
            self.sub.connect(e)
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close both sockets."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.sub.close(linger=0)
        self.pub.close()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            batch = []
            while len(batch) < MAX_BATCH:
                try:
                    parts = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                batch.append((parts, time.perf_counter_ns()))
            try:
                self.handle(batch)
            except Exception:  # noqa: BLE001 - a scoring bug must not stop the service; it is logged
                log.exception("inference_batch_failed", messages=len(batch))

    def handle(self, batch: list[tuple[list[bytes], int]]) -> int:
        """Score and publish what `batch` ([(parts, receipt perf ns)]) admits; return predictions sent."""
        model, admitted = self.scorer.model, []
        for parts, t in batch:
            if parts and parts[0] == READY_TOPIC:
                self._dataset_ready(parts)
                continue
            try:
                v = decode(parts)
            except ValueError as e:
                self._bad(e)
                continue
            self.received += 1
            self.last_receipt_ns = time.time_ns()
            self.metrics.received.inc()
            verdict = self.scorer.admit(v, model)
            if verdict.reason is None:
                admitted.append((v, t))
                continue
            self.metrics.refused.labels(verdict.reason).inc()
            if verdict.reason == "registry_mismatch":
                self.metrics.skew.labels(v.registry_hash).inc()
            if verdict.new_skew:
                log.warning("registry_skew", registry_hash=v.registry_hash, model_id=model.model_id,
                            model_registry_hash=model.registry_hash, symbol=v.symbol,
                            what="vector not scored: its registry is not the active model's; counted per hash")
        return self._publish(model, admitted) if admitted else 0

    def _publish(self, model: Any, admitted: list) -> int:
        proba = self.scorer.score([v for v, _ in admitted], model)
        sent = 0
        for (v, t), p in zip(admitted, proba, strict=True):
            latency = time.perf_counter_ns() - t
            ok = self.pub.publish_message(*wire.encode(v.ts_ns, v.symbol, model.model_id, v.registry_hash, p, latency))
            sent += ok
            (self.metrics.predictions if ok else self.metrics.dropped).inc()
            self.metrics.latency.observe(latency / 1e9)
            self.latest[v.symbol] = {"ts_ns": int(v.ts_ns), "symbol": v.symbol, "model_id": model.model_id,
                                     "registry_hash": v.registry_hash, "book_valid": int(v.book_valid),
                                     "probabilities": {"-1": float(p[0]), "0": float(p[1]), "1": float(p[2])},
                                     "latency_ns": latency}
        return sent

    def _bad(self, e: ValueError) -> None:
        self.bad += 1
        self.metrics.bad.inc()
        if self.bad <= LOGGED_BAD:
            log.warning("bad_vector", error=str(e), count=self.bad,
                        what="not a features.live vector; skipped" + (" (later ones only counted)"
                                                                       if self.bad == LOGGED_BAD else ""))

    def _dataset_ready(self, parts: list[bytes]) -> None:
        try:
            msg = msgpack.unpackb(parts[1], raw=False) if len(parts) == 2 else None
        except (ValueError, msgpack.UnpackException):
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("path"), str):
            self._bad(ValueError("features.dataset.ready message without a msgpack map holding path"))
            return
        if self.on_dataset_ready is not None:
            self.on_dataset_ready(msg)
