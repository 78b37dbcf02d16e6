"""`feature-service bench offline` prints every figure; the synthetic journal replays with the records written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.record import NS_PER_S, Kind
from journal.reader import JournalReader
from tools.bench.synthetic_journal import START_NS, write_journal
from tools.cli import main
from tools.offline.replay import ReplaySummary, replay
from tools.sim.synthetic_records import records

STREAM = ("records", "ticks", "features", "symbols", "engine_s", "engine_records_per_s", "engine_runs_s",
          "engine_runs_records_per_s", "pandas_s", "pandas_records_per_s", "naive_s", "naive_records_per_s",
          "engine_vs_pandas", "engine_runs_vs_pandas", "engine_vs_naive")
STORE = ("journal_records", "journal_mib", "level_updates", "compaction_s", "compaction_records_per_s",
         "store_replay_s", "store_replay_records_per_s", "store_replay_level_updates_per_s", "journal_replay_s",
         "journal_replay_records_per_s", "store_vs_journal_replay")
SCALING = ("replay_s", "records_per_s", "start_rss_mib", "peak_rss_mib", "rss_growth_bytes_per_record")
GOALS = ("engine_vs_pandas", "store_replay_records_per_s", "store_replay_level_updates_per_s", "compaction_records_per_s")


def _number_or_not_available(v: object) -> bool:
    return (isinstance(v, int | float) and v >= 0) or (isinstance(v, str) and v.startswith("not available yet"))


@pytest.mark.timeout(240)
def test_bench_offline_prints_every_figure_with_a_number_or_not_available(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out_json = tmp_path / "offline.json"
    assert main(["bench", "offline", "--seconds", "20", "--repeats", "1", "--scale", "1", "--dir", str(tmp_path),
                 "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    for section, names in (("stream", STREAM), ("store", STORE)):
        for name in names:
            v = doc[section][name]
            assert _number_or_not_available(v), (section, name, v)
            line = re.search(rf"^  {name} +(.+)$", text, re.M)
            assert line is not None, name
            assert re.fullmatch(r"[\d,.]+|not available yet.*", line.group(1)), (name, line.group(1))
    assert doc["stream"]["records"] == 20 * 200 + 2 + 20  # snapshot, ticker, events, ticks
    assert doc["stream"]["pandas_uncovered"] == "none"
    assert doc["store"]["journal_records"] == doc["stream"]["records"] + 1  # plus the SESSION record
    assert [(r["scale"], r["path"]) for r in doc["scaling"]] == [(1, "journal"), (1, "store")]
    for row in doc["scaling"]:
        assert row["records"] == doc["store"]["journal_records"]
        if "status" in row:
            assert row["status"].startswith("not available yet"), row
        else:
            assert all(isinstance(row[k], float) and row[k] >= 0 for k in SCALING), row
            assert row["peak_rss_mib"] >= row["start_rss_mib"] > 10
            assert row["vectors"] == 20
    assert set(doc["goals"]) == set(GOALS)
    assert list(tmp_path.iterdir()) == [out_json]  # scratch journals and stores are gone


@pytest.mark.parametrize(("argv", "needle"), [
    (["--scale", "1000"], "--allow-1000x"),
    (["--scale", "1,x"], "--scale '1,x'"),
    (["--scale", "0"], "must be >= 1"),
    (["--seconds", "1"], "--seconds 1"),
    (["--seconds", "86400", "--symbols", "100"], "records in memory"),
    (["--dir", "/nonexistent/x"], "--dir /nonexistent/x"),
])
def test_bench_offline_mistakes_are_one_line_exit_2(argv: list[str], needle: str, capsys) -> None:  # noqa: ANN001
    assert main(["bench", "offline", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_synthetic_journal_replays_with_the_records_written(tmp_path: Path) -> None:
    symbols, rate, block = ["BTCUSDT", "ETHUSDT"], 40, 10
    info = write_journal(tmp_path, symbols, 25, rate=rate, seed=3, block_s=block)
    # 25 s from a 10 s block: two whole repeats and the first 5 s of a third, plus the SESSION record
    one = list(records(symbols, block, rate * len(symbols), seed=3, start_ns=START_NS))
    half = [r for r in one if r.recv_ns <= START_NS + 5 * NS_PER_S]
    assert info.records == 1 + 2 * len(one) + len(half)
    summary = ReplaySummary()
    vectors = list(replay(str(tmp_path), summary=summary))
    assert summary.records == info.records
    assert [v.ts_ns for v in vectors[::2]] == [START_NS + i * NS_PER_S for i in range(1, 26)]
    assert all(v.book_valid for v in vectors)  # every repeat's snapshot keeps the books valid
    assert set(summary.notices) <= {"recovered"}  # the first snapshots only: no gap, no crossed book
    recs = list(JournalReader(str(tmp_path)).records())
    ids = [i for r in recs if r.kind == Kind.TRADES for i in r.payload["id"]]
    assert len(ids) == len(set(ids))
    assert info.level_updates == sum(len(r.payload["b"]) + len(r.payload["a"]) for r in recs
                                     if r.kind in (Kind.BOOK_DELTA, Kind.BOOK_SNAPSHOT))
    for s in symbols:
        us = [r.payload["u"] for r in recs if r.symbol == s and r.kind in (Kind.BOOK_DELTA, Kind.BOOK_SNAPSHOT)]
        assert us == list(range(us[0], us[0] + len(us)))  # update ids contiguous across repeats
