"""The benchmarks' naive baseline computes the same features as the engine (else its ratio means nothing)."""

from __future__ import annotations

import math

from engine.engine import Engine
from engine.record import Kind
from tools.bench.baselines import NaiveSymbol
from tools.bench.engine import _naive_one
from tools.registry_file import default_registry
from tools.sim.synthetic_records import records

#: Columns the baseline leaves out on purpose (it keeps no funding clock).
SKIPPED = {"time_to_funding"}


def test_naive_baseline_matches_the_engine_on_synthetic_records() -> None:
    registry = default_registry()
    recs = records(["BTCUSDT"], seconds=90, events_per_s=100)
    engine, naive = Engine(registry, ["BTCUSDT"]), NaiveSymbol(200)
    compared = 0
    for r in recs:
        vectors = engine.apply(r).vectors
        if r.kind != Kind.TICK:
            _naive_one(naive, r)
            continue
        want = naive.tick(r.recv_ns)
        (v,) = vectors
        for name, got, exp in zip(registry.names, v.values.tolist(), want, strict=True):
            if name in SKIPPED:
                continue
            assert math.isnan(got) == math.isnan(exp), (r.recv_ns, name, got, exp)
            if not math.isnan(got):
                assert math.isclose(got, exp, rel_tol=1e-9, abs_tol=1e-12), (r.recv_ns, name, got, exp)
                compared += 1
    assert compared > 90 * 20  # most columns are defined at most ticks
