"""stats and cat, checked against the written records with naive counting and stdlib JSON."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.record import Kind, Record
from journal.cat import cat
from journal.config import JournalConfig
from journal.errors import JournalCorruption
from journal.stats import journal_stats
from journal.writer import JournalWriter
from tests.journal import make_records, segment_files

NAMES = {1: "book_snapshot", 2: "book_delta", 3: "trades", 4: "kline", 5: "ticker", 6: "funding", 7: "execution",
         32: "tick", 33: "resync_request", 34: "gateway_up", 35: "gateway_down", 36: "registry_changed",
         37: "bad_frame"}
LONG_SYMBOL = "X" * 40 + "USDT"  # longer than a msgpack fixstr


def write(d: Path, recs: list[Record], max_bytes: int = 4096) -> list[Record]:
    with JournalWriter(JournalConfig(dir=str(d), fsync="never", segment_max_bytes=max_bytes)) as w:
        return [r for i in range(0, len(recs), 5) for r in w.append(recs[i : i + 5])]


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    d = tmp_path_factory.mktemp("journal")
    recs = make_records(800, seed=41)
    recs[100] = recs[100]._replace(symbol=LONG_SYMBOL)
    recs[200] = recs[200]._replace(symbol="ΔΣ")  # non-ASCII
    return d, write(d, recs)


def iso(ns: int) -> str:
    return str(np.datetime64(ns, "ns")) + "Z"


def test_stats_match_naive_counts(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    s = json.loads(json.dumps(journal_stats(d)))  # plain JSON types only
    segs = segment_files(d)
    assert s["records"] == len(written)
    assert s["kinds"] == {NAMES[k]: n for k, n in Counter(int(r.kind) for r in written).items()}
    assert list(s["kinds"]) == [NAMES[k] for k in sorted({int(r.kind) for r in written})]
    assert s["symbols"] == dict(Counter(r.symbol for r in written))
    assert s["symbols"][LONG_SYMBOL] == 1 and s["symbols"]["ΔΣ"] == 1
    assert s["seq"] == {"first": 1, "last": len(written)}
    lo, hi = min(r.recv_ns for r in written), max(r.recv_ns for r in written)
    assert s["recv_ns"] == {"min": lo, "max": hi}
    assert s["recv_utc"] == {"min": iso(lo), "max": iso(hi)}
    assert s["segments"] == len(segs) > 5
    assert s["bytes"] == sum(p.stat().st_size for p in segs)
    assert [x["file"] for x in s["segment_list"]] == [p.name for p in segs]
    assert [x["first_seq"] for x in s["segment_list"]] == [int(p.stem) for p in segs]
    assert sum(x["records"] for x in s["segment_list"]) == len(written)
    assert s["tail"] is None


def test_stats_of_an_empty_journal(tmp_path: Path) -> None:
    s = journal_stats(tmp_path)
    assert (s["records"], s["segments"], s["seq"], s["recv_ns"], s["kinds"]) == (0, 0, None, None, {})


def test_stats_report_a_torn_tail(tmp_path: Path) -> None:
    written = write(tmp_path, make_records(20, seed=42), max_bytes=1 << 20)
    seg = segment_files(tmp_path)[0]
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(b"\x40\x00")
    s = journal_stats(tmp_path)
    assert s["records"] == len(written)
    assert s["tail"] == {"file": seg.name, "offset": size, "reason": "incomplete frame"}


def test_stats_raise_on_a_damaged_closed_segment(tmp_path: Path) -> None:
    d = tmp_path / "j"
    write(d, make_records(100, seed=43))
    first = segment_files(d)[0]
    data = bytearray(first.read_bytes())
    data[100] ^= 1
    first.write_bytes(bytes(data))
    with pytest.raises(JournalCorruption):
        journal_stats(d)


def naive_json(r: Record) -> dict[str, Any]:
    """What a cat line must hold for `r`: arrays as lists, bytes as base64, NaN/inf as null."""
    def conv(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return conv(v.tolist())
        if isinstance(v, bytes):
            return {"b64": base64.b64encode(v).decode()}
        if isinstance(v, float):
            return None if not math.isfinite(v) else v
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return {"seq": r.seq, "recv_ns": r.recv_ns, "kind": NAMES[int(r.kind)], "symbol": r.symbol, "ts": r.ts,
            "cts": r.cts, "payload": conv(r.payload)}


def run_cat(d: Path, **kw: Any) -> tuple[int, list[dict[str, Any]]]:
    out = io.BytesIO()
    code = cat(str(d), out=out, **kw)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_cat_prints_every_record(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    code, lines = run_cat(d)
    assert code == 0
    assert lines == [naive_json(r) for r in written]
    assert list(lines[0]) == ["seq", "recv_ns", "kind", "symbol", "ts", "cts", "payload"]
    assert any(line["kind"] == "funding" and line["payload"]["rate"] is None for line in lines)
    assert any(line["kind"] == "bad_frame" for line in lines)


def test_cat_filters_and_limits(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    code, lines = run_cat(d, from_seq=300, kinds=["trades", "TICK"], limit=25)
    want = [r for r in written if r.seq >= 300 and r.kind in (Kind.TRADES, Kind.TICK)][:25]
    assert code == 0 and lines == [naive_json(r) for r in want]


def test_cat_rejects_an_unknown_kind(journal: tuple[Path, list[Record]], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_cat(journal[0], kinds=["nope"])
    assert (code, lines) == (2, [])
    assert "nope" in capsys.readouterr().err


def test_cat_reports_corruption(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, make_records(100, seed=44))
    first = segment_files(tmp_path)[0]
    data = bytearray(first.read_bytes())
    data[200] ^= 1
    first.write_bytes(bytes(data))
    code, _ = run_cat(tmp_path)
    assert code == 1 and first.name in capsys.readouterr().err


def test_cat_follow_prints_new_records_until_stopped(tmp_path: Path) -> None:
    recs = make_records(300, seed=45)
    done = threading.Event()

    def produce() -> None:
        write(tmp_path, recs)
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    code, lines = run_cat(tmp_path, follow=True, stop=done.is_set, poll_s=0.001)
    t.join()
    assert code == 0 and [line["seq"] for line in lines] == list(range(1, 301))


def test_cat_filters_by_symbol_and_receive_time(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    lo, hi = written[150].recv_ns, written[420].recv_ns
    code, lines = run_cat(d, symbols=["SOLUSDT", "XRPUSDT"], from_ns=lo, to_ns=hi)
    want = [r for r in written if r.symbol in ("SOLUSDT", "XRPUSDT") and lo <= r.recv_ns <= hi]
    assert code == 0 and lines == [naive_json(r) for r in want] and len(want) > 50
    code, lines = run_cat(d, from_ns=hi, to_ns=hi, kinds=["trades", "book_delta"], limit=2)
    assert code == 0 and lines == [naive_json(r) for r in written if r.recv_ns == hi
                                   and r.kind in (Kind.TRADES, Kind.BOOK_DELTA)][:2]


def test_cat_refuses_from_after_to(journal: tuple[Path, list[Record]], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_cat(journal[0], from_ns=2, to_ns=1)
    assert (code, lines) == (2, []) and "--from is after --to" in capsys.readouterr().err


@pytest.mark.parametrize(("layout", "message"), [("missing", "no such directory"), ("file", "is a file"),
                                                 ("plain", "not a journal (no segment files in it)")])
def test_check_journal_dir_names_what_is_wrong(tmp_path: Path, layout: str, message: str) -> None:
    from journal.errors import JournalError
    from journal.reader import check_journal_dir

    d = tmp_path / "j"
    if layout == "file":
        d.write_bytes(b"x")
    elif layout == "plain":
        d.mkdir()
    with pytest.raises(JournalError, match="^" + re.escape(f"journal {d}: {message}")):
        check_journal_dir(d)
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if layout == "missing" else ["j"])


def test_check_journal_dir_accepts_an_empty_journal(tmp_path: Path) -> None:
    from journal.reader import check_journal_dir

    JournalWriter(JournalConfig(dir=str(tmp_path), fsync="never")).close()  # a lock file, no segment yet
    assert check_journal_dir(tmp_path) == tmp_path
