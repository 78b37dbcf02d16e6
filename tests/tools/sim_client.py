"""A SUB socket on every gateway topic, as the simulator tests read its stream."""

from __future__ import annotations

import zmq

from gateway_bridge.config import TopicsConfig


def subscribe_all(ctx: zmq.Context, endpoint: str, topics: TopicsConfig | None = None) -> zmq.Socket:
    """Connect a SUB socket to `endpoint` subscribed to every topic (no HWM: nothing dropped, 5 s recv timeout)."""
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVTIMEO, 5000)
    sub.setsockopt(zmq.RCVHWM, 0)  # before connect: HWM applies to pipes made afterwards
    for name in (topics or TopicsConfig()).names():
        sub.setsockopt(zmq.SUBSCRIBE, name.encode())
    sub.connect(endpoint)
    return sub
