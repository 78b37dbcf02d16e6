"""Importer: captures -> journal with ticks in place, monotonic recv_ns, symbol filter, continuation."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from engine.record import MARKET_KINDS, NS_PER_S, Kind, Record
from gateway_bridge.importer import import_files, import_records
from tests.conftest import SOL_DOGE_ENVELOPE, SOL_DOGE_FRAMES, XRP_OB500

S = NS_PER_S
T0 = 1_786_310_819 * S


def _frame(ts_ms: int, sym: str = "SOLUSDT") -> bytes:
    return orjson.dumps({"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": ts_ms, "data": [
        {"T": ts_ms, "s": sym, "S": "Buy", "v": "1", "p": "77.3", "i": str(ts_ms), "BT": False}]})


def _hft(tmp_path: Path, rows: list[tuple[int, bytes]], name: str = "c.txt") -> str:
    p = tmp_path / name
    p.write_bytes(b"".join(b"%d %s\n" % (ns, f) for ns, f in rows))
    return str(p)


def _check_ticks(recs: list[Record]) -> None:
    """Naive check: recv_ns non-decreasing; ticks every second from the first record, each before its records."""
    assert all(a.recv_ns <= b.recv_ns for a, b in zip(recs, recs[1:], strict=False))
    bounds = [r.recv_ns for r in recs if r.kind == Kind.TICK]
    others = [r for r in recs if r.kind != Kind.TICK]
    first = -(-others[0].recv_ns // S) * S
    assert bounds == list(range(first, others[-1].recv_ns // S * S + 1, S))
    for i, r in enumerate(recs):
        if r.kind == Kind.TICK:
            assert all(x.recv_ns < r.recv_ns for x in recs[:i] if x.kind != Kind.TICK)


def test_import_records_orders_ticks_and_clamps_time(tmp_path: Path) -> None:
    rows = [(T0 + 200_000_000, _frame(1)), (T0 + 100_000_000, _frame(2)),  # clock stepped back
            (T0 + 3 * S, b"{bad"), (T0 + 3 * S + 5, _frame(3))]
    recs = list(import_records("hftbacktest", [_hft(tmp_path, rows)]))
    assert [(r.kind, r.recv_ns) for r in recs] == [
        (Kind.TRADES, T0 + 200_000_000), (Kind.TRADES, T0 + 200_000_000),
        (Kind.TICK, T0 + S), (Kind.TICK, T0 + 2 * S), (Kind.TICK, T0 + 3 * S),
        (Kind.BAD_FRAME, T0 + 3 * S), (Kind.TRADES, T0 + 3 * S + 5)]
    _check_ticks(recs)


def test_import_files_end_to_end(tmp_path: Path) -> None:
    from journal.reader import JournalReader

    rows = [(T0 + i * 700_000_000, _frame(i, "SOLUSDT" if i % 2 else "DOGEUSDT")) for i in range(10)]
    rows.insert(3, (T0 + 2 * S, b'{"success":true,"op":"subscribe"}'))
    summary = import_files(str(tmp_path / "j"), "hftbacktest", [_hft(tmp_path, rows)], symbols=["SOLUSDT"])
    recs = list(JournalReader(str(tmp_path / "j")).records())
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
    assert Counter(r.symbol for r in recs if r.kind in MARKET_KINDS) == {"SOLUSDT": 5}
    _check_ticks(recs)
    # The head SESSION goes with the first frame that decodes (SOL at T0 + 0.7 s; the skipped DOGE
    # frame at T0 starts nothing), so the ticks are those the records alone would give.
    assert summary["records"] == {"session": 1, "tick": 6, "trades": 5} and summary["ticks"] == 6
    assert [r.kind for r in recs[:2]] == [Kind.SESSION, Kind.TRADES] and recs[0].payload["symbols"] == ["SOLUSDT"]
    assert recs[0].recv_ns == recs[1].recv_ns == T0 + 700_000_000
    assert summary["skipped"] == {"decoder_ack": 1, "decoder_unknown_symbol": 5}
    assert summary["seq"] == [1, len(recs)] and summary["bad_frames"] == {}


def test_second_import_continues_the_journal(tmp_path: Path) -> None:
    from journal.reader import JournalReader

    j = str(tmp_path / "j")
    import_files(j, "hftbacktest", [_hft(tmp_path, [(T0 + 100, _frame(1)), (T0 + 2 * S + 1, _frame(2))], "a")])
    # b starts exactly at the journal's last receive time: allowed (not before it)
    summary = import_files(j, "hftbacktest", [_hft(tmp_path, [(T0 + 2 * S + 1, _frame(3)), (T0 + 4 * S, _frame(4))],
                                                   "b")])
    recs = list(JournalReader(j).records())
    _check_ticks(recs)
    assert summary["recv_ns_held"] == 0 and summary["seq"][0] == 6  # session, trade, tick, tick, trade before
    assert recs[5].kind == Kind.SESSION and recs[5].payload["symbols"] == ["SOLUSDT"]  # the journal's symbols
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1))


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_an_overlapping_import_is_refused_and_the_journal_untouched(tmp_path: Path) -> None:
    from gateway_bridge.importer import ImportRefused

    j = tmp_path / "j"
    a = _hft(tmp_path, [(T0 + 100, _frame(1)), (T0 + 2 * S + 1, _frame(2))], "a")
    import_files(str(j), "hftbacktest", [a])
    before = _tree(j)
    b = _hft(tmp_path, [(T0 + S, _frame(3)), (T0 + 4 * S, _frame(4))], "b")
    with pytest.raises(ImportRefused) as e:
        import_files(str(j), "hftbacktest", [b])
    msg = str(e.value)
    # both ranges, hand-formatted: T0 = 2026-08-09T21:26:59Z
    assert "capture " + b + " (2026-08-09T21:27:00.000Z to 2026-08-09T21:27:03.000Z)" in msg
    assert "(journal " + str(j) + ": 2026-08-09T21:26:59.000Z to 2026-08-09T21:27:01.000Z)" in msg
    assert "--skip-overlap" in msg and e.value.status == 1
    with pytest.raises(ImportRefused):  # the same capture again
        import_files(str(j), "hftbacktest", [a])
    assert _tree(j) == before


def test_skip_overlap_imports_only_what_lies_after_and_reruns_add_nothing(tmp_path: Path) -> None:
    from journal.reader import JournalReader

    j = tmp_path / "j"
    a = _hft(tmp_path, [(T0 + 100, _frame(1)), (T0 + 2 * S + 1, _frame(2))], "a")
    import_files(str(j), "hftbacktest", [a], skip_overlap=True)
    before = _tree(j)
    again = import_files(str(j), "hftbacktest", [a], skip_overlap=True)
    assert again["seq"] is None and again["records"] == {} and again["skipped"] == {"overlap": 2}
    assert _tree(j) == before
    # a longer capture of the same session: only the frames after T0 + 2 s + 1 ns go in
    longer = _hft(tmp_path, [(T0 + 100, _frame(1)), (T0 + 2 * S + 1, _frame(2)), (T0 + 3 * S + 7, _frame(5))], "l")
    s = import_files(str(j), "hftbacktest", [longer], skip_overlap=True)
    assert s["skipped"] == {"overlap": 2} and s["frames"] == 1
    trades = [r.ts for r in JournalReader(j).records() if r.kind == Kind.TRADES]
    assert trades == [1, 2, 5]


def test_captures_out_of_time_order_are_refused(tmp_path: Path) -> None:
    from gateway_bridge.importer import ImportRefused

    a = _hft(tmp_path, [(T0 + 100, _frame(1)), (T0 + 3 * S, _frame(2))], "a")
    b = _hft(tmp_path, [(T0 + S, _frame(3))], "b")
    with pytest.raises(ImportRefused, match=f"capture {b} .* starts before the end of capture {a} "):
        import_files(str(tmp_path / "j"), "hftbacktest", [a, b])
    assert not (tmp_path / "j").exists()


def _envelope(tmp_path: Path, category: str, name: str = "e.jsonl", ts: int = 1_786_310_819) -> str:
    url = f"wss://stream.bybit.com/v5/public/{category}"
    lines = [orjson.dumps({"t": "connect", "conn": "BYBIT.ws.1", "ts": ts, "addr": url}),
             orjson.dumps({"t": "recv", "conn": "BYBIT.ws.1", "ts": ts + 1, "data": _frame(ts * 1000).decode()})]
    p = tmp_path / name
    p.write_bytes(b"\n".join(lines) + b"\n")
    return str(p)


def test_category_comes_from_the_capture_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    from gateway_bridge.importer import ImportRefused
    from journal.reader import JournalReader

    j = tmp_path / "j"
    spot = _envelope(tmp_path, "spot", "spot.jsonl")
    with pytest.raises(ImportRefused, match=f"capture {spot} is a spot capture .* but --category is linear") as e:
        import_files(str(j), "auto", [spot], category="linear")
    assert e.value.status == 2 and not j.exists()
    s = import_files(str(j), "auto", [_envelope(tmp_path, "linear", "lin.jsonl")])
    assert s["category"] == "linear" and s["format"] == "cryptofeed"
    assert [r.payload["category"] for r in JournalReader(j).records(kinds=[Kind.SESSION])] == ["linear"]
    before = _tree(j)
    later_spot = _envelope(tmp_path, "spot", "spot2.jsonl", ts=1_786_310_900)
    with pytest.raises(ImportRefused, match=f"journal {j} holds linear records; capture {later_spot} is spot"):
        import_files(str(j), "auto", [later_spot])
    with pytest.raises(ImportRefused, match=f"journal {j} holds linear records; --category is inverse"):
        import_files(str(j), "hftbacktest", [_hft(tmp_path, [(T0 + 100 * S, _frame(9))], "h")], category="inverse")
    assert _tree(j) == before


def test_a_capture_naming_two_categories_is_refused(tmp_path: Path) -> None:
    from gateway_bridge.importer import ImportRefused

    a, b = _envelope(tmp_path, "linear", "a.jsonl"), _envelope(tmp_path, "spot", "b.jsonl", ts=1_786_310_900)
    with pytest.raises(ImportRefused, match="several market categories: linear .*, spot"):
        import_files(str(tmp_path / "j"), "auto", [a, b])


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown capture format"):
        import_files(str(tmp_path / "j"), "csv", [])


def test_shared_cryptofeed_capture_imports_like_the_frames_file(shared_bybit: Path, tmp_path: Path) -> None:
    from journal.reader import JournalReader

    summary = import_files(str(tmp_path / "j"), "cryptofeed", [str(shared_bybit / SOL_DOGE_ENVELOPE)])
    recs = list(JournalReader(str(tmp_path / "j")).records())
    _check_ticks(recs)
    assert summary["bad_frames"] == {} and summary["skipped"] == {"decoder_ack": 17, "not_recv": 11}
    assert summary["records"] == {"book_delta": 761, "book_snapshot": 2, "kline": 37, "ticker": 357, "trades": 74,
                                  "tick": summary["ticks"], "session": 1}  # the head names every symbol
    (session,) = [r for r in recs if r.kind == Kind.SESSION]
    assert session.payload["symbols"] == ["DOGEUSDT", "SOLUSDT"] and session.payload["category"] == "linear"
    bare = [r for r in import_records("frames", [str(shared_bybit / SOL_DOGE_FRAMES)]) if r.kind != Kind.TICK]
    market = [r for r in recs if r.kind not in (Kind.TICK, Kind.SESSION)]
    assert [(r.kind, r.symbol, r.ts, r.cts) for r in market] == [(r.kind, r.symbol, r.ts, r.cts) for r in bare]
    line = next(x for x in (shared_bybit / SOL_DOGE_ENVELOPE).read_bytes().splitlines()
                if b'"t":"recv"' in x and b'\\"topic\\"' in x)
    ts_text = re.search(rb'"ts":([0-9.]+),', line).group(1).decode()  # type: ignore[union-attr]
    assert market[0].recv_ns == int(Decimal(ts_text) * 10**9)  # exact, from the envelope's text


def test_shared_archive_imports_with_gz(shared_bybit: Path, tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "xrp.data.gz"
    gz.write_bytes(gzip.compress((shared_bybit / XRP_OB500).read_bytes()))
    summary = import_files(str(tmp_path / "j"), "frames", [str(gz)], symbols=["XRPUSDT"])
    assert summary["records"] == {"book_delta": 49, "book_snapshot": 1, "tick": 5, "session": 1}


def test_a_silence_in_the_capture_journals_gateway_down_and_up_like_a_live_shard(tmp_path: Path) -> None:
    rows = [(T0 + 100, _frame(1)), (T0 + 7 * S + 300, _frame(2))]  # 7 s apart; silence_ms is 5000
    recs = list(import_records("hftbacktest", [_hft(tmp_path, rows)]))
    assert [(r.kind, r.recv_ns) for r in recs] == [
        (Kind.TRADES, T0 + 100), (Kind.TICK, T0 + S), (Kind.TICK, T0 + 2 * S), (Kind.TICK, T0 + 3 * S),
        (Kind.TICK, T0 + 4 * S), (Kind.TICK, T0 + 5 * S), (Kind.GATEWAY_DOWN, T0 + 5 * S + 100),
        (Kind.TICK, T0 + 6 * S), (Kind.TICK, T0 + 7 * S), (Kind.GATEWAY_UP, T0 + 7 * S + 300),
        (Kind.TRADES, T0 + 7 * S + 300)]
    assert recs[6].payload == {"reason": "silence", "silent_ms": 5000}
    assert recs[9].payload == {"reason": "traffic", "silent_ms": 7000}


def test_frames_a_year_apart_import_in_milliseconds_with_one_gap_record(tmp_path: Path) -> None:
    import time

    year = 365 * 86_400 * S
    path = _hft(tmp_path, [(T0 + 100, _frame(1)), (T0 + year + 100, _frame(2))])
    t = time.perf_counter()
    summary = import_files(str(tmp_path / "j"), "hftbacktest", [path])
    assert time.perf_counter() - t < 2.0
    assert summary["records"] == {"gateway_down": 1, "gateway_up": 1, "tick": 5 + 60 + 1, "tick_gap": 1, "trades": 2,
                                  "session": 1}


def test_extra_head_goes_before_the_first_imported_record_with_its_stamp(tmp_path: Path) -> None:
    from journal.reader import JournalReader

    session = Record(0, 0, Kind.SESSION, "", 0, 0, {"shard": "import", "category": "linear"})
    j = str(tmp_path / "j")
    import_files(j, "hftbacktest", [_hft(tmp_path, [(T0 + 100, _frame(1))])], category="linear",
                 extra_head=[session])
    recs = list(JournalReader(j).records())
    # the import's own SESSION (naming the capture's symbol), the extra head, the trade
    assert [(r.kind, r.recv_ns) for r in recs] == [(Kind.SESSION, T0 + 100)] * 2 + [(Kind.TRADES, T0 + 100)]
    assert recs[0].payload["symbols"] == [recs[2].symbol] and recs[1].payload == session.payload


def test_a_symbol_missing_from_the_head_gets_a_session_before_its_first_record(tmp_path: Path) -> None:
    """An execution's symbol is not in any topic: the journal names it before its first record."""
    from gateway_bridge.importer import Sessions
    from tools.registry_file import default_registry

    sessions = Sessions("linear", default_registry(), ["SOLUSDT"])
    rows = [(T0 + 100, _frame(1)), (T0 + 200, _frame(2, "DOGEUSDT"))]
    recs = list(import_records("hftbacktest", [_hft(tmp_path, rows)], sessions=sessions))
    assert [r.kind for r in recs] == [Kind.SESSION, Kind.TRADES, Kind.SESSION, Kind.TRADES]
    assert recs[0].payload["symbols"] == ["SOLUSDT"] and recs[2].payload["symbols"] == ["DOGEUSDT", "SOLUSDT"]


def test_a_full_disk_half_way_says_what_went_in_and_a_rerun_with_skip_overlap_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    from gateway_bridge import importer
    from gateway_bridge.importer import ImportRefused
    from journal.reader import JournalReader

    rows = [(T0 + i * S // 4, _frame(i)) for i in range(40)]
    capture = _hft(tmp_path, rows)
    monkeypatch.setattr(importer, "BATCH", 8)
    real_write, calls = os.write, [0]

    def write(fd: int, data: bytes) -> int:
        calls[0] += 1
        if calls[0] > 3:  # segment header, two batches: then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    j = tmp_path / "j"
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(ImportRefused) as e:
        import_files(str(j), "hftbacktest", [capture])
    monkeypatch.setattr(os, "write", real_write)
    msg = str(e.value)
    assert "No space left on device" in msg and "--skip-overlap" in msg
    journaled = list(JournalReader(j).records())
    assert f"stopped after seq {len(journaled)} " in msg and len(journaled) >= 16
    import_files(str(j), "hftbacktest", [capture], skip_overlap=True)
    full = list(JournalReader(j).records())
    # cut only between receive times: the first record of the re-run is later than the last one before it
    assert full[len(journaled)].recv_ns > journaled[-1].recv_ns
    trades = [r.ts for r in JournalReader(j).records() if r.kind == Kind.TRADES]
    assert trades == list(range(40))  # every frame once


def test_skip_overlap_goes_by_the_latest_receive_time_so_far(tmp_path: Path) -> None:
    """A frame received out of order after the journal's end is still imported (it was not journaled)."""
    from journal.reader import JournalReader

    j = str(tmp_path / "j")
    import_files(j, "hftbacktest", [_hft(tmp_path, [(T0, _frame(1)), (T0 + 10, _frame(2))], "a")])
    jittered = _hft(tmp_path, [(T0, _frame(1)), (T0 + 10, _frame(2)), (T0 + 20, _frame(3)), (T0 + 5, _frame(4))], "b")
    s = import_files(j, "hftbacktest", [jittered], skip_overlap=True)
    assert s["skipped"] == {"overlap": 2} and s["frames"] == 2 and s["recv_ns_held"] == 1
    assert [r.ts for r in JournalReader(j).records() if r.kind == Kind.TRADES] == [1, 2, 3, 4]


def test_symbols_the_capture_does_not_name_are_refused(tmp_path: Path) -> None:
    from gateway_bridge.importer import ImportRefused

    capture = _hft(tmp_path, [(T0, _frame(1)), (T0 + 1, _frame(2, "DOGEUSDT"))])
    with pytest.raises(ImportRefused, match=r"--symbols solusdt: not in the captures \(their symbols: DOGEUSDT, "
                                            r"SOLUSDT\)") as e:
        import_files(str(tmp_path / "j"), "hftbacktest", [capture], symbols=["solusdt", "DOGEUSDT"])
    assert e.value.status == 2 and not (tmp_path / "j").exists()
