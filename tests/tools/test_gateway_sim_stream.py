"""The published stream: total rate across many symbols, u contiguous per book topic, control."""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import zmq

from gateway_bridge.config import TopicsConfig
from tests.tools.sim_client import subscribe_all
from tools.sim.gateway.config import SimConfig, SyntheticConfig
from tools.sim.gateway.server import GatewaySim, SimError

TOPICS = TopicsConfig()
BOOK_TOPICS = (TOPICS.orderbook_snapshot.encode(), TOPICS.orderbook_delta.encode())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("n_symbols", [1, 100])
def test_rate_is_the_total_across_symbols_and_u_stays_contiguous(tmp_path: Path, n_symbols: int) -> None:
    rate = 10_000
    cfg = SimConfig(endpoint=f"ipc://{tmp_path}/pub", control_endpoint="", linger_ms=0,
                    synthetic=SyntheticConfig(symbols=(), generate_symbols=n_symbols, rate_hz=rate))
    ctx = zmq.Context()
    sub = subscribe_all(ctx, cfg.endpoint)
    sim = GatewaySim(cfg).start()
    last_u: dict[str, int] = {}
    symbols: Counter[str] = Counter()
    try:
        frames = [sub.recv_multipart()]
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            frames.append(sub.recv_multipart())
        took = time.monotonic() - t0
    finally:
        sub.close()
        ctx.term()
        sim.stop()
    got = (len(frames) - 1) / took
    print(f"{n_symbols} symbols: {got:,.0f} msgs/s received (asked {rate})")
    assert 0.85 * rate <= got <= 1.15 * rate
    for topic, payload in frames:
        obj = orjson.loads(payload)
        if topic in BOOK_TOPICS:
            u, t = obj["data"]["u"], obj["topic"]
            assert obj["type"] == "snapshot" or u == last_u[t] + 1, f"{t}: u {last_u[t]} then {u}"
            last_u[t] = u
            symbols[obj["data"]["s"]] += 1
    assert len(symbols) == n_symbols, "every symbol's book is published"


@pytest.mark.timeout(30)
def test_in_process_bind_failure_raises_sim_error_and_leaves_nothing_open(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = SimConfig(endpoint=f"tcp://127.0.0.1:{port}", control_endpoint=f"ipc://{tmp_path}/missing/ctl",
                    linger_ms=0, synthetic=SyntheticConfig(symbols=("SOLUSDT",), depth=50))
    t0 = time.monotonic()
    with pytest.raises(SimError, match=r"control_endpoint ipc://.*/missing/ctl: No such file or directory"):
        GatewaySim(cfg).start()
    assert time.monotonic() - t0 < 2
    # the PUB endpoint it did bind was released: a second simulator can bind it
    ok = SimConfig(endpoint=cfg.endpoint, control_endpoint="", linger_ms=0, wait_for_subscriber=False,
                   synthetic=cfg.synthetic)
    sim = GatewaySim(ok).start()
    sim.stop()
    assert sim.status == "stopped"
