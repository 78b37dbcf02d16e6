"""ShardMetrics: every metric rendered with the right name, labels and value, on its own registry."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ShardMetrics


def samples(m: ShardMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse render() into {(sample name, sorted labels): value}."""
    out = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_method_shows_in_render() -> None:
    m = ShardMetrics()
    m.count_messages("book_delta", 5)
    m.count_messages("book_delta")
    m.count_bad_frame("json")
    m.count_book_gap("BTCUSDT")
    m.count_resync("BTCUSDT", "zmq", "ok")
    m.observe_resync_duration(0.3)
    m.add_book_invalid_seconds("BTCUSDT", 1.5)
    m.add_book_invalid_seconds("BTCUSDT", 0.25)
    m.observe_tick_to_publish(0.0004)
    m.observe_tick_to_publish(0.003)
    m.set_journal_bytes(12345)
    m.observe_fsync(0.002)
    m.count_published(10, 2)
    m.count_receive_dropped("too_large", 3)
    m.set_gateway_up(True)
    s = samples(m)
    assert s[("fs_messages_total", (("kind", "book_delta"),))] == 6
    assert s[("fs_bad_frames_total", (("reason", "json"),))] == 1
    assert s[("fs_book_gaps_total", (("symbol", "BTCUSDT"),))] == 1
    assert s[("fs_resyncs_total", (("outcome", "ok"), ("symbol", "BTCUSDT"), ("via", "zmq")))] == 1
    assert s[("fs_resync_duration_seconds_count", ())] == 1
    assert s[("fs_resync_duration_seconds_sum", ())] == 0.3
    assert s[("fs_book_invalid_seconds_total", (("symbol", "BTCUSDT"),))] == 1.75
    assert s[("fs_tick_to_publish_seconds_bucket", (("le", "5e-05"),))] == 0
    assert s[("fs_tick_to_publish_seconds_bucket", (("le", "0.0005"),))] == 1
    assert s[("fs_tick_to_publish_seconds_bucket", (("le", "0.005"),))] == 2
    assert s[("fs_tick_to_publish_seconds_bucket", (("le", "1.0"),))] == 2
    assert s[("fs_journal_bytes", ())] == 12345
    assert s[("fs_fsync_seconds_count", ())] == 1
    assert s[("fs_vectors_published_total", ())] == 10
    assert s[("fs_vectors_dropped_total", ())] == 2
    assert s[("fs_receive_dropped_total", (("reason", "too_large"),))] == 3
    assert s[("fs_gateway_up", ())] == 1
    m.set_gateway_up(False)
    assert samples(m)[("fs_gateway_up", ())] == 0


def test_tick_buckets_span_50us_to_1s() -> None:
    s = samples(ShardMetrics())
    les = [float(dict(k[1])["le"]) for k in s if k[0] == "fs_tick_to_publish_seconds_bucket"]
    finite = sorted(x for x in les if x != float("inf"))
    assert finite[0] == 50e-6 and finite[-1] == 1.0 and len(finite) >= 10


def test_own_registry_never_the_global_one() -> None:
    a, b = ShardMetrics(), ShardMetrics()  # a second instance must not collide
    a.count_messages("tick")
    assert samples(b).get(("fs_messages_total", (("kind", "tick"),))) is None
    assert b"fs_messages_total" not in generate_latest(REGISTRY)
