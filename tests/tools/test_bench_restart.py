"""bench restart: the synthetic journal and its checkpoint, then one tiny real restart with and without it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from engine.record import NS_PER_S, Kind
from journal.checkpoints import CheckpointStore
from journal.reader import JournalReader
from tools.bench import restart
from tools.cli import UsageError


def test_the_journal_starts_with_a_session_and_ticks_every_second(tmp_path: Path) -> None:
    got = restart.build_journal(tmp_path / "journal", hours=0.01, rate=5)  # 36 s
    recs = list(JournalReader(tmp_path / "journal").records())
    assert got["records"] == len(recs) and got["seconds"] == 36
    assert recs[0].kind == Kind.SESSION and recs[0].payload["symbols"] == [restart.SYMBOL]
    assert recs[0].payload["shard"] == "bench" and recs[0].payload["registry"]
    ticks = [r.recv_ns for r in recs if r.kind == Kind.TICK]
    assert len(ticks) == 36 and all(b - a == NS_PER_S for a, b in zip(ticks, ticks[1:], strict=False))
    market = sum(1 for r in recs if r.kind in (Kind.BOOK_DELTA, Kind.TRADES, Kind.TICKER))
    assert 36 * 5 - 5 <= market <= 36 * 5 + 5  # 5 events/s (+ the opening ticker snapshot)


def test_fold_and_checkpoint_saves_what_the_node_restores(tmp_path: Path) -> None:
    restart.build_journal(tmp_path / "journal", hours=0.01, rate=5)
    n = sum(1 for _ in JournalReader(tmp_path / "journal").records())
    got = restart.fold_and_checkpoint(tmp_path)
    assert got["records"] == n and got["seq"] == n
    assert got["vectors"] == 36  # one symbol, one vector per tick
    ckpt = CheckpointStore(tmp_path / "checkpoints").load_newest()
    assert ckpt is not None and ckpt.seq == n and ckpt.meta["shard"] == "bench"


def test_bad_options_are_usage_errors() -> None:
    p = argparse.ArgumentParser()
    restart.add_arguments(p)
    with pytest.raises(UsageError, match="--hours"):
        restart.run(p.parse_args(["--hours", "0"]))


def test_a_tiny_run_restores_the_checkpoint_and_folds_without_it(tmp_path: Path) -> None:
    p = argparse.ArgumentParser()
    restart.add_arguments(p)
    out = tmp_path / "restart.json"
    args = p.parse_args(["--hours", "0.01", "--rate", "5", "--repeats", "1", "--json", str(out), "--dir", str(tmp_path)])
    assert restart.run(args) == 0
    doc = json.loads(out.read_text())
    (with_ckpt,), (without,) = doc["with_checkpoint"], doc["without_checkpoint"]
    assert with_ckpt["restored_from_seq"] == doc["fold"]["seq"]
    assert with_ckpt["fold_records"] == 0  # the checkpoint covers the whole journal
    assert without["restored_from_seq"] is None and without["fold_records"] > doc["journal"]["records"]
    for r in (with_ckpt, without):
        # Ticks due while it started are published before its shard_started line: no order between those two.
        assert 0 < r["live_s"] < 60 and 0 < r["first_vector_s"] <= r["first_live_vector_s"] < 60
    assert set(doc["summary"]["with_checkpoint"]) >= {"live_s", "first_vector_s", "fold_s"}
