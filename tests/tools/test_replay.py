"""Replay on the shared recordings: import → journal → replay → Parquet, checked against the raw frames."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gateway_bridge.importer import import_files
from tests.conftest import SOL_DOGE_ENVELOPE
from tools.offline.feature_table import META_HASH
from tools.registry_file import default_registry

NS = 1_000_000_000


@pytest.fixture(scope="module")
def sol_doge(shared_bybit: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The SOL/DOGE cryptofeed capture imported into a journal, and its replayed feature file."""
    tmp = tmp_path_factory.mktemp("replay")
    journal, out = tmp / "journal", tmp / "features.parquet"
    import_files(str(journal), "cryptofeed", [str(shared_bybit / SOL_DOGE_ENVELOPE)])
    cmd = [sys.executable, "-m", "tools.cli", "replay", "--journal", str(journal), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return shared_bybit / SOL_DOGE_ENVELOPE, out


def raw_frames(envelope: Path) -> list[tuple[int, dict]]:
    """(recv_ns, frame) of every recv line, recv time exact from its decimal text, made non-decreasing."""
    out, last = [], 0
    for line in envelope.read_text().splitlines():
        doc = json.loads(line, parse_float=Decimal)
        if doc.get("t") != "recv":
            continue
        frame = json.loads(doc["data"])
        if "topic" not in frame:
            continue
        last = max(last, int(doc["ts"] * NS))
        out.append((last, frame))
    return out


def test_replay_writes_every_registry_column(sol_doge: tuple[Path, Path]) -> None:
    _, out = sol_doge
    table = pq.read_table(out)
    registry = default_registry()
    assert table.column_names == ["ts", "symbol", "book_valid", *[f.name for f in registry.features]]
    assert str(table.schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    assert table.schema.metadata[META_HASH].decode() == registry.content_hash
    for f in registry.features:
        assert str(table.schema.field(f.name).type) == "double"


def test_one_row_per_tick_and_symbol(sol_doge: tuple[Path, Path]) -> None:
    envelope, out = sol_doge
    frames = raw_frames(envelope)
    first, last = frames[0][0], frames[-1][0]
    expected_ticks = list(range(-(-first // NS) * NS, last // NS * NS + 1, NS))
    table = pq.read_table(out)
    ts = table.column("ts").cast("int64").to_numpy()
    symbols = table.column("symbol").to_pylist()
    assert sorted(set(symbols)) == ["DOGEUSDT", "SOLUSDT"]
    for sym in ("DOGEUSDT", "SOLUSDT"):
        assert [int(t) for t, s in zip(ts, symbols, strict=True) if s == sym] == expected_ticks


def test_trade_features_match_raw_trades(sol_doge: tuple[Path, Path]) -> None:
    envelope, out = sol_doge
    trades: dict[str, list[tuple[int, float, float, int, str]]] = {"SOLUSDT": [], "DOGEUSDT": []}
    seen: set[str] = set()
    for recv_ns, frame in raw_frames(envelope):
        if frame["topic"].startswith("publicTrade."):
            for t in frame["data"]:
                if t["i"] not in seen:
                    seen.add(t["i"])
                    side = 1 if t["S"] == "Buy" else -1
                    trades[t["s"]].append((recv_ns, float(t["p"]), float(t["v"]), side, t["i"]))
    rows = pq.read_table(out).to_pylist()
    checked = 0
    for row in rows:
        t = int(row["ts"].timestamp()) * NS
        window3 = [x for x in trades[row["symbol"]] if t - 3 * NS < x[0] <= t]
        window60 = [x for x in trades[row["symbol"]] if t - 60 * NS < x[0] <= t]
        assert row["trade_count_3s"] == len(window3)
        assert row["vol_3s"] == pytest.approx(sum(x[2] for x in window3), rel=1e-12, abs=1e-12)
        assert row["signed_volume_1m"] == pytest.approx(sum(x[3] * x[2] for x in window60), rel=1e-12, abs=1e-9)
        if window3:
            vwap = sum(x[1] * x[2] for x in window3) / sum(x[2] for x in window3)
            assert row["vwap_3s"] == pytest.approx(vwap, rel=1e-12)
            checked += 1
        else:
            assert math.isnan(row["vwap_3s"])
    assert checked > 10


def test_mid_matches_naive_book_rebuild(sol_doge: tuple[Path, Path]) -> None:
    envelope, out = sol_doge
    frames = raw_frames(envelope)
    rows = pq.read_table(out).to_pylist()
    books: dict[str, tuple[dict, dict]] = {}
    i = 0
    compared = 0
    for row in sorted(rows, key=lambda r: r["ts"]):
        t = int(row["ts"].timestamp()) * NS
        while i < len(frames) and frames[i][0] < t:
            recv_ns, fr = frames[i]
            i += 1
            if fr["topic"].startswith("orderbook."):
                sym = fr["data"]["s"]
                if fr["type"] == "snapshot":
                    books[sym] = ({}, {})
                for side, key in ((0, "b"), (1, "a")):
                    for p, s in fr["data"][key]:
                        if float(s) == 0:
                            books[sym][side].pop(float(p), None)
                        else:
                            books[sym][side][float(p)] = float(s)
        if row["symbol"] in books:
            bids, asks = books[row["symbol"]]
            assert row["mid_price"] == (max(bids) + min(asks)) / 2
            assert row["book_valid"] == 1
            compared += 1
        else:
            assert row["book_valid"] == 0 and math.isnan(row["mid_price"])
    assert compared > 40


def test_funding_from_ticker(sol_doge: tuple[Path, Path]) -> None:
    _, out = sol_doge
    table = pq.read_table(out).to_pylist()
    sol = [r for r in table if r["symbol"] == "SOLUSDT" and not math.isnan(r["funding_rate"])]
    # README: SOL funding 0.00000876 in the snapshot, 0.00000952 from a delta at 21:27:03.780Z on.
    assert {r["funding_rate"] for r in sol} <= {0.00000876, 0.00000952}
    assert sol[-1]["funding_rate"] == 0.00000952
    t = int(sol[-1]["ts"].timestamp()) * NS
    assert sol[-1]["time_to_funding"] == (1786320000000 * 1_000_000 - t) / (60 * NS)
    assert np.all(np.diff([r["time_to_funding"] for r in sol]) < 0)


def test_time_range_and_symbol_filter_give_the_same_rows_as_the_full_run(sol_doge: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    """--from/--to only cut the output: the engine still warms up from the journal's start."""
    _, full_path = sol_doge
    journal = full_path.parent / "journal"
    full = [r for r in pq.read_table(full_path).to_pylist() if r["symbol"] == "SOLUSDT"]
    lo, hi = full[10]["ts"], full[20]["ts"]
    out = tmp_path / "cut.parquet"
    cmd = [sys.executable, "-m", "tools.cli", "replay", "--journal", str(journal), "--out", str(out),
           "--symbols", "SOLUSDT", "--from", lo.isoformat(), "--to", hi.isoformat()]
    subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    cut = pq.read_table(out).to_pylist()
    assert [r["ts"] for r in cut] == [r["ts"] for r in full[10:20]]
    for got, want in zip(cut, full[10:20], strict=True):
        for k, v in want.items():
            assert got[k] == v or (isinstance(v, float) and math.isnan(v) and math.isnan(got[k])), k


def test_bad_time_argument_is_a_clear_error(sol_doge: tuple[Path, Path], tmp_path: Path) -> None:
    journal = sol_doge[1].parent / "journal"
    cmd = [sys.executable, "-m", "tools.cli", "replay", "--journal", str(journal), "--out", str(tmp_path / "x.parquet"),
           "--from", "yesterday"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "--from: 'yesterday' is not a time" in done.stderr
