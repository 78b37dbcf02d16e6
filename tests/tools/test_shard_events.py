"""The shard's event log: one JSON line per event (issue §4), and the metric it moves."""

from __future__ import annotations

import io
import json

import pytest

from api.metrics import ShardMetrics
from engine.engine import Notice
from engine.record import Kind, Record
from gateway_bridge.resync import ResyncEvent
from tools.logsetup import setup_logging
from tools.shard.events import ShardEvents

T0 = 1_786_310_800_000_000_000


@pytest.fixture()
def lines() -> io.StringIO:
    out = io.StringIO()
    setup_logging("INFO", "json", stream=out)
    yield out
    setup_logging("INFO", "json")


def events_of(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_event_is_one_json_line_with_its_fields(lines: io.StringIO) -> None:
    metrics = ShardMetrics()
    ev = ShardEvents(metrics)
    ev.records([
        Record(1, T0, Kind.GATEWAY_DOWN, "", 0, 0, {"reason": "silence", "silent_ms": 5000}),
        Record(2, T0 + 1, Kind.BAD_FRAME, "", 0, 0, {"reason": "bad_json", "topic": "market.trades", "raw": b"{",
                                                      "raw_len": 1, "sha256": "ab"}),
        Record(3, T0 + 2, Kind.GATEWAY_UP, "", 0, 0, {"reason": "traffic", "silent_ms": 7000}),
    ])
    ev.notice(Notice(4, "SOLUSDT", 50, "gap", True))
    ev.notice(Notice(5, "SOLUSDT", 50, "crossed", True))
    ev.notice(Notice(6, "SOLUSDT", 50, "reset", False))
    ev.resync_requested("SOLUSDT", 50, "gap", "zmq")
    ev.resync_event(ResyncEvent("requested", "SOLUSDT", 50, "zmq", 1, "gap"))
    ev.notice(Notice(7, "SOLUSDT", 50, "recovered", False))
    ev.resync_completed("SOLUSDT", 50, "zmq", 0.0125)
    got = events_of(lines)
    assert [e["event"] for e in got] == ["gateway_down", "bad_frame", "gateway_up", "book_gap", "book_crossed",
                                         "book_reset", "resync_requested", "resync_sent", "book_recovered",
                                         "resync_completed"]
    assert got[0]["silent_ms"] == 5000 and got[1]["reason"] == "bad_json" and got[1]["raw_len"] == 1
    assert got[3]["topic"] == "orderbook.50.SOLUSDT" and got[3]["resync"] is True and got[3]["seq"] == 4
    assert got[9]["duration_s"] == 0.0125 and got[9]["via"] == "zmq"
    assert all(e["level"] in ("info", "warning") and "timestamp" in e for e in got)
    text = metrics.render().decode()
    assert 'fs_book_gaps_total{symbol="SOLUSDT"} 1.0' in text
    assert 'fs_bad_frames_total{reason="bad_json"} 1.0' in text
    assert "fs_resync_duration_seconds_count 1.0" in text and "fs_gateway_up 1.0" in text
    assert ev.gateway_up and ev.gateway_since_ns == T0 + 2


def test_bad_frames_past_the_log_limit_are_only_counted(lines: io.StringIO) -> None:
    from tools.shard.events import BAD_FRAME_LOG_LIMIT

    metrics = ShardMetrics()
    ev = ShardEvents(metrics)
    bad = Record(1, T0, Kind.BAD_FRAME, "", 0, 0, {"reason": "precision", "topic": "t", "raw": b"", "raw_len": 0,
                                                   "sha256": ""})
    ev.records([bad] * (BAD_FRAME_LOG_LIMIT + 5))
    assert len(events_of(lines)) == BAD_FRAME_LOG_LIMIT
    assert f'fs_bad_frames_total{{reason="precision"}} {float(BAD_FRAME_LOG_LIMIT + 5)}' in metrics.render().decode()
