"""model-service Prometheus metrics (names start ``ms_``), on a registry of their own.

- ``ms_vectors_received_total`` counter: features.live vectors received.
- ``ms_vectors_bad_total`` counter: messages that were not valid features.live vectors.
- ``ms_vectors_refused_total{reason}`` counter: vectors not scored (``registry_mismatch``,
  ``no_model``, ``invalid_book``, ``width_mismatch``, ``symbol_not_scored``).
- ``ms_skew_vectors_total{registry_hash}`` counter: vectors refused because their registry is not the model's.
- ``ms_predictions_total`` / ``ms_predictions_dropped_total`` counters: model.predictions sent / dropped (queue full).
- ``ms_inference_latency_seconds`` histogram: receipt of a vector to its prediction sent.
- ``ms_trainings_total{outcome}`` counter: trainings ended (``done``, ``failed``).
- ``ms_active_model_info{model_id,registry_hash}`` gauge: 1 for the active model.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from api.metrics import CONTENT_TYPE

#: Receipt-to-publish buckets, 20 µs to 100 ms (the goal is p99 ≤ 1 ms).
LATENCY_BUCKETS = (20e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3, 100e-3)

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]


class ServiceMetrics:
    """The metrics one model-service exports."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.received = Counter("ms_vectors_received", "features.live vectors received", registry=r)
        self.bad = Counter("ms_vectors_bad", "Messages that were not features.live vectors", registry=r)
        self.refused = Counter("ms_vectors_refused", "Vectors not scored, by reason", ["reason"], registry=r)
        self.skew = Counter("ms_skew_vectors", "Vectors of a registry other than the model's", ["registry_hash"],
                            registry=r)
        self.predictions = Counter("ms_predictions", "model.predictions sent", registry=r)
        self.dropped = Counter("ms_predictions_dropped", "model.predictions dropped (queue full)", registry=r)
        self.latency = Histogram("ms_inference_latency_seconds", "Vector receipt to prediction sent",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.trainings = Counter("ms_trainings", "Trainings ended, by outcome", ["outcome"], registry=r)
        self.active = Gauge("ms_active_model_info", "1 for the active model", ["model_id", "registry_hash"],
                            registry=r)

    def set_active(self, model_id: str, registry_hash: str) -> None:
        """Mark `model_id` as the one active model."""
        self.active.clear()
        self.active.labels(model_id, registry_hash).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
