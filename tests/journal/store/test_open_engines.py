"""The compacted store opens in pyarrow.dataset, pandas, polars and duckdb with date/symbol recognised."""

from __future__ import annotations

from pathlib import Path

import pytest

from journal.config import JournalConfig
from journal.store.compact import compact
from journal.store.config import StoreConfig
from journal.writer import JournalWriter
from tests.journal.store.recs import faulted_run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("engines")
    with JournalWriter(JournalConfig(dir=str(d / "j"), fsync="never")) as w:
        w.append(faulted_run())
    compact(d / "j", StoreConfig(dir=str(d / "store"), checkpoints=False))
    return d / "store"


# The faulted run, counted by hand: SOLUSDT book deltas in their table (the seq 1.5 one goes to control).
DELTAS = [(11, 50), (13, 50), (31, 50)]  # (u, depth)
DELTA_LEVELS = [("b", 77.5, 0.0), ("a", 77.7, 3.0), ("b", 1.0, 2.0)]


def test_pyarrow_dataset(store: Path) -> None:
    import pyarrow.dataset as ds

    t = ds.dataset(store / "raw_orderbook_deltas", format="parquet", partitioning="hive").to_table()
    assert set(t.column_names) >= {"seq", "recv_time", "bid_price", "date", "symbol"}
    assert t.column("symbol").to_pylist() == ["SOLUSDT"] * 3
    assert sorted(zip(t.column("u").to_pylist(), t.column("depth").to_pylist(), strict=True)) == DELTAS
    trades = ds.dataset(store / "raw_trades", format="parquet", partitioning="hive").to_table()
    assert sorted(set(trades.column("symbol").to_pylist())) == ["DOGEUSDT", "SOLUSDT"]


def test_pandas(store: Path) -> None:
    import pandas as pd

    df = pd.read_parquet(store / "raw_trades")
    assert {"date", "symbol"} <= set(df.columns)
    sol = df[df["symbol"] == "SOLUSDT"].sort_values(["seq", "index"])
    assert sol["price"].tolist() == [77.55, 77.6] and sol["side"].tolist() == [1, -1]
    assert str(df["recv_time"].dtype) == "datetime64[ns, UTC]"


def test_polars(store: Path) -> None:
    import polars as pl

    lf = pl.scan_parquet(str(store / "raw_orderbook_deltas" / "**" / "*.parquet"), hive_partitioning=True)
    df = lf.filter(pl.col("symbol") == "SOLUSDT").select("u", "bid_price", "date").collect().sort("u")
    assert df["u"].to_list() == [11, 13, 31]
    assert [str(d) for d in df["date"].to_list()] == ["2026-08-09"] * 3
    levels = df.explode("bid_price")["bid_price"].drop_nulls().to_list()
    assert levels == [77.5, 1.0]


def test_duckdb_unnest_gives_levels(store: Path) -> None:
    import duckdb

    glob = f"{store}/raw_orderbook_deltas/**/*.parquet"
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT u, side, price, size FROM (
          SELECT u, 'b' AS side, UNNEST(bid_price) AS price, UNNEST(bid_size) AS size
          FROM read_parquet('{glob}', hive_partitioning=true) WHERE symbol = 'SOLUSDT'
          UNION ALL
          SELECT u, 'a', UNNEST(ask_price), UNNEST(ask_size)
          FROM read_parquet('{glob}', hive_partitioning=true) WHERE symbol = 'SOLUSDT')
        ORDER BY u""").fetchall()
    assert [(s, p, z) for _, s, p, z in rows] == DELTA_LEVELS
    dates = con.execute(f"SELECT DISTINCT CAST(date AS VARCHAR), symbol FROM read_parquet('{glob}', "
                        "hive_partitioning=true)").fetchall()
    assert dates == [("2026-08-09", "SOLUSDT")]
    control = con.execute(f"SELECT kind_name, count(*) FROM read_parquet('{store}/control/**/*.parquet', "
                          "hive_partitioning=true) GROUP BY kind_name ORDER BY kind_name").fetchall()
    counts = dict(control)
    assert counts["tick"] == 2 and counts["bad_frame"] == 1 and counts["book_delta"] == 1
