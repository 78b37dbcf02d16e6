"""ResyncClient against the simulator's control REP: accepted, deduplicated, retried, rate-limited."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from gateway_bridge.config import BackoffConfig
from gateway_bridge.liveness import Backoff, Liveness
from gateway_bridge.resync import ResyncClient
from tools.sim.gateway.config import SimConfig, SyntheticConfig
from tools.sim.gateway.server import GatewaySim

BACKOFF = BackoffConfig(initial_ms=50, max_ms=400, factor=2.0)


def _drive(client: ResyncClient, seconds: float, until_accepted: bool = False) -> list[str]:
    accepted: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until_accepted and accepted):
        accepted += client.poll(timeout_ms=20)
    return accepted


def _sim_cfg(tmp_path: Path) -> SimConfig:
    """A one-symbol synthetic gateway with a control endpoint, in `tmp_path`."""
    return SimConfig(endpoint=f"ipc://{tmp_path}/pub", control_endpoint=f"ipc://{tmp_path}/ctl",
                     synthetic=SyntheticConfig(symbols=("SOLUSDT",), depth=50, rate_hz=200.0),
                     wait_for_subscriber=False, linger_ms=0)


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(BACKOFF)
    assert [b.next_ns() // 1_000_000 for _ in range(5)] == [50, 100, 200, 400, 400]
    b.reset()
    assert b.next_ns() // 1_000_000 == 50


def test_liveness_edges() -> None:
    live = Liveness(silence_ms=100, now_ns=0)
    assert live.check(99_000_000) is None
    assert live.check(100_000_000) == 100 and live.check(200_000_000) is None  # reported once
    assert live.traffic(250_000_000) == 250 and live.traffic(260_000_000) is None


@pytest.mark.timeout(30)
def test_resubscribe_accepted_and_snapshot_published(tmp_path: Path) -> None:
    cfg = _sim_cfg(tmp_path)
    sim = GatewaySim(cfg).start()
    try:
        with ResyncClient(cfg.control_endpoint, BACKOFF, timeout_ms=2000) as client:
            assert client.request("SOLUSDT", 50)
            assert not client.request("SOLUSDT", 50), "a queued topic is not asked twice"
            assert _drive(client, 5, until_accepted=True) == ["orderbook.50.SOLUSDT"]
            assert client.pending() == []
            # asked again at once: rate-limited by the topic's back-off, then accepted
            assert client.request("SOLUSDT", 50)
            assert client.poll() == [] and client.counters["sent"] == 1
            assert _drive(client, 5, until_accepted=True) == ["orderbook.50.SOLUSDT"]
            assert client.counters["sent"] == 2 and client.counters["accepted"] == 2
    finally:
        sim.stop()
    assert sim.counters["resubscribe"] == 2


@pytest.mark.timeout(30)
def test_timeout_reopens_socket_and_retries_with_backoff(tmp_path: Path) -> None:
    """A REP that swallows requests: each attempt times out, the REQ is rebuilt, delays grow."""
    endpoint = f"ipc://{tmp_path}/dead"
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    rep.bind(endpoint)
    try:
        with ResyncClient(endpoint, BACKOFF, timeout_ms=50) as client:
            client.request("BTCUSDT", 200)
            _drive(client, 0.6)
            sent = client.counters["sent"]
            # 50 ms timeouts + delays 50, 100, 200, … : a handful of attempts, not a flood
            assert 2 <= sent <= 5 and client.counters["timeout"] >= sent - 1
            assert client.pending() == ["orderbook.200.BTCUSDT"]
    finally:
        rep.close()
        ctx.term()


@pytest.mark.timeout(30)
def test_rejected_request_is_retried(tmp_path: Path) -> None:
    cfg = _sim_cfg(tmp_path)
    sim = GatewaySim(cfg).start()
    try:
        with ResyncClient(cfg.control_endpoint, BACKOFF, timeout_ms=1000) as client:
            client.request("SOLUSDT", 200)  # wrong depth: the gateway answers with an error
            assert _drive(client, 0.4) == []
            assert client.counters["rejected"] >= 2 and client.pending() == ["orderbook.200.SOLUSDT"]
    finally:
        sim.stop()


@pytest.mark.timeout(30)
def test_asked_again_while_in_flight_sends_one_more_request_after_the_answer(tmp_path: Path) -> None:
    """The in-flight answer may be a snapshot from before the new gap: exactly one more request follows."""
    cfg = _sim_cfg(tmp_path)
    sim = GatewaySim(cfg).start()
    try:
        with ResyncClient(cfg.control_endpoint, BACKOFF, timeout_ms=2000) as client:
            assert client.request("SOLUSDT", 50)
            client.poll()  # sends it: now in flight
            assert client.counters["sent"] == 1
            assert not client.request("SOLUSDT", 50) and not client.request("SOLUSDT", 50)
            assert _drive(client, 5, until_accepted=True) == ["orderbook.50.SOLUSDT"]
            assert client.pending() == ["orderbook.50.SOLUSDT"], "one more request is owed"
            assert _drive(client, 5, until_accepted=True) == ["orderbook.50.SOLUSDT"]
            assert client.counters["sent"] == 2 and client.pending() == []
    finally:
        sim.stop()
