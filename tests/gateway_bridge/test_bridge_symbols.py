"""One gateway feeds every shard: a shard skips (and counts) frames of symbols it does not own."""

from __future__ import annotations

import orjson
import zmq.asyncio

from engine.record import Kind
from gateway_bridge.bridge import Bridge
from gateway_bridge.config import GatewayConfig, TicksConfig

T0 = 1_786_310_800_000_000_000


def trade_frame(symbol: str, trade_id: str) -> bytes:
    data = [{"T": 1, "s": symbol, "S": "Buy", "v": "1", "p": "10", "L": "PlusTick", "i": trade_id, "BT": False}]
    return orjson.dumps({"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": 1, "data": data})


def test_frames_of_other_shards_symbols_are_skipped_not_journaled_as_bad_frames() -> None:
    ctx = zmq.asyncio.Context()
    try:
        bridge = Bridge(GatewayConfig(), TicksConfig(), ["SOLUSDT"], last_recv_ns=0, ctx=ctx, clock_ns=lambda: T0)
        msgs = [(T0 + i, [b"market.trades", trade_frame(sym, str(i))])
                for i, sym in enumerate(["SOLUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"])]
        recs = bridge.ingest.messages(msgs)
    finally:
        ctx.destroy(linger=0)
    assert [(r.kind, r.symbol) for r in recs if r.kind != Kind.TICK] == [(Kind.TRADES, "SOLUSDT")] * 2
    assert bridge.ingest.decoder.counters["skipped"]["unknown_symbol"] == 2
