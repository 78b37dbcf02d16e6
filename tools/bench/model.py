"""`feature-service bench model`: model-service inference latency, vector receipt to prediction sent.

A HistGradientBoosting model (100 trees, the default) is trained on synthetic rows as wide as the
default registry, then the service's real inference path runs in this process: a PUB socket sends
features.live vectors over ipc://, `model_service.stream.Inference` (its own thread, as in the
service) receives, checks, scores and publishes model.predictions, and a SUB socket here collects
them. Figures: the service's own ``latency_ns`` (receipt → send) and the full path (send here →
prediction received here), p50/p99, for vectors one at a time and for bursts of one tick's worth
of symbols. The baseline, in the same run: a naive client that scores each vector by building a
named pandas row and calling ``predict_proba`` (no socket at all).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

NS = 1_000_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vectors", type=int, default=3000, help="single vectors sent one at a time (default 3000)")
    p.add_argument("--bursts", type=int, default=300, help="bursts of --burst-symbols vectors (default 300)")
    p.add_argument("--burst-symbols", type=int, default=20, help="vectors per burst (default 20)")
    p.add_argument("--kind", default="hist_gradient_boosting", choices=("hist_gradient_boosting", "logistic"))
    p.add_argument("--quick", action="store_true", help="a few hundred vectors (the test's form)")


def run(args: argparse.Namespace) -> int:
    vectors, bursts = (args.vectors, args.bursts) if not args.quick else (200, 20)
    model, x = train_model(args.kind)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        service = measure_service(model, x, Path(tmp), vectors, bursts, args.burst_symbols)
    naive = measure_naive(model, x, min(vectors, 1000))
    doc = {"model": {"kind": args.kind, "features": len(model.feature_names),
                     "trees": int(getattr(model.estimator, "n_iter_", 0))},
           **service, "naive_pandas_per_vector": naive,
           "ratio_naive_over_service_p50": round(naive["p50_us"] / service["single"]["service_p50_us"], 2),
           "goal_p99_le_1ms": "MET" if service["single"]["service_p99_us"] <= 1000 else "NOT MET"}
    print(json.dumps(doc, indent=2))
    return 0


def train_model(kind: str, rows: int = 20_000) -> tuple[Any, np.ndarray]:
    """A fitted model over the default registry's columns (labels from a rule on three features), and rows."""
    from model_service.artifacts import LoadedModel, compiled
    from model_service.models import fit
    from registry.packaged import default_registry

    names = default_registry().names
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, len(names)))
    x[rng.random(x.shape) < 0.02] = np.nan
    score = np.nan_to_num(x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2]) + rng.normal(scale=0.5, size=rows)
    y = np.where(score > 0.5, 1, np.where(score < -0.5, -1, 0))
    est, _ = fit(kind, {}, x, y)
    return LoadedModel("0123456789abcdef", "ab" * 32, tuple(names), est, {}, compiled(est)), x


def measure_service(model: Any, x: np.ndarray, tmp: Path, singles: int, bursts: int, width: int) -> dict[str, Any]:
    """Send vectors through a real Inference thread over ipc://; latencies of singles and of bursts."""
    import zmq

    from api.wire import WireVector, encode
    from model_service import wire
    from model_service.config import ModelServiceConfig, SubscribeConfig
    from model_service.metrics import ServiceMetrics
    from model_service.scorer import Scorer
    from model_service.stream import Inference
    from tools.shard.config import PublishConfig

    cfg = ModelServiceConfig(data_dir=str(tmp), subscribe=SubscribeConfig(endpoints=(f"ipc://{tmp}/live",)),
                             publish=PublishConfig(endpoint=f"ipc://{tmp}/pred"))
    ctx = zmq.Context()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    pub.bind(f"ipc://{tmp}/live")
    sub.connect(f"ipc://{tmp}/pred")
    sub.subscribe(wire.TOPIC_PREFIX)
    scorer = Scorer("score")
    scorer.activate(model)
    inf = Inference(cfg, scorer, ServiceMetrics(), ctx)
    inf.start()
    try:
        sent: dict[tuple[int, str], int] = {}

        def send(i: int, symbols: list[str]) -> None:
            for s in symbols:
                row = x[(i * 31 + len(sent)) % len(x)]
                sent[(i, s)] = time.perf_counter_ns()
                pub.send_multipart(encode(WireVector(i, s, 1, row, model.registry_hash)))

        _warm_up(send, sub)
        sent.clear()
        single = _collect(send, sub, sent, [(i, ["BTCUSDT"]) for i in range(1, singles + 1)], gap_s=0.002)
        sent.clear()
        names = [f"S{j:03d}USDT" for j in range(width)]
        burst = _collect(send, sub, sent, [(i, names) for i in range(1, bursts + 1)], gap_s=0.01)
    finally:
        inf.stop()
        pub.close(0), sub.close(0)
        ctx.term()
    return {"single": single, f"burst_of_{width}": burst}


def _warm_up(send: Any, sub: Any) -> None:
    """Until predictions flow (subscriptions propagated, model code paths warm)."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        send(0, ["WARMUP"])
        if sub.poll(50):
            while sub.poll(200):
                sub.recv_multipart()
            return
    raise RuntimeError("no prediction within 10 s: the inference thread is not scoring")


def _collect(send: Any, sub: Any, sent: dict, plan: list[tuple[int, list[str]]], gap_s: float) -> dict[str, Any]:
    """Send each step of `plan`, receive its predictions; the service's and the full path's latencies."""
    from model_service import wire

    service, full = [], []
    for i, symbols in plan:
        send(i, symbols)
        for _ in symbols:
            if not sub.poll(2000):
                raise RuntimeError(f"prediction for step {i} did not arrive")
            got = time.perf_counter_ns()
            p = wire.decode(sub.recv_multipart())
            service.append(p["latency_ns"])
            full.append(got - sent[(p["ts"], p["symbol"])])
        time.sleep(gap_s)
    s, f = np.array(service) / 1e3, np.array(full) / 1e3
    return {"vectors": len(service), "service_p50_us": round(float(np.median(s)), 1),
            "service_p99_us": round(float(np.percentile(s, 99)), 1),
            "full_path_p50_us": round(float(np.median(f)), 1), "full_path_p99_us": round(float(np.percentile(f, 99)), 1)}


def measure_naive(model: Any, x: np.ndarray, n: int) -> dict[str, Any]:
    """Per vector: a named one-row DataFrame, then predict_proba, as a naive client would (no socket)."""
    import pandas as pd

    names = list(model.feature_names)
    est = model.estimator
    times = []
    for i in range(n + 50):
        t0 = time.perf_counter_ns()
        row = pd.DataFrame([dict(zip(names, x[i % len(x)], strict=True))], columns=names)
        est.predict_proba(row.to_numpy())
        times.append(time.perf_counter_ns() - t0)
    t = np.array(times[50:]) / 1e3
    return {"vectors": n, "p50_us": round(float(np.median(t)), 1), "p99_us": round(float(np.percentile(t, 99)), 1)}
