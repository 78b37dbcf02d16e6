"""Checkpoint → restore → continue equals an uninterrupted run, bit for bit (real and long synthetic data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.engine import Engine
from engine.record import Kind, Record
from tests.conftest import SOL_DOGE_ENVELOPE, XRP_OB500
from tools.registry_file import default_registry
from tools.sim.synthetic_records import records as synthetic


def run_vectors(engine: Engine, recs: list[Record]) -> list[tuple[int, str, int, bytes]]:
    """Apply every record; return each vector as comparable bytes."""
    out = []
    for r in recs:
        for v in engine.apply(r).vectors:
            out.append((v.ts_ns, v.symbol, v.book_valid, v.values.tobytes()))
    return out


def run_with_restarts(recs: list[Record], symbols: list[str], cuts: list[int]) -> tuple[list, bytes]:
    """Run with checkpoint + restore (through bytes only) at every cut index."""
    engine = Engine(default_registry(), symbols)
    out, start = [], 0
    for cut in [*cuts, len(recs)]:
        out += run_vectors(engine, recs[start:cut])
        engine = Engine.restore(engine.checkpoint())
        start = cut
    return out, engine.checkpoint()


def assert_restart_identical(recs: list[Record], symbols: list[str], cuts: list[int]) -> None:
    """Vectors and final state with restarts at `cuts` equal those of one uninterrupted run."""
    straight = Engine(default_registry(), symbols)
    expected = run_vectors(straight, recs)
    got, final = run_with_restarts(recs, symbols, cuts)
    assert len(got) == len(expected) > 0
    assert got == expected
    assert final == straight.checkpoint()


def numbered(recs: list[Record]) -> list[Record]:
    return [r.with_seq(i + 1) for i, r in enumerate(recs)]


def test_long_synthetic_run_survives_restarts() -> None:
    recs = numbered(list(synthetic(["AAAUSDT", "BBBUSDT"], seconds=420, events_per_s=100, seed=5)))
    rng = np.random.default_rng(1)
    cuts = sorted(int(c) for c in rng.choice(len(recs), size=6, replace=False))
    assert_restart_identical(recs, ["AAAUSDT", "BBBUSDT"], cuts)


def test_restore_right_after_a_tick_and_before_the_first_record() -> None:
    recs = numbered(list(synthetic(["AAAUSDT"], seconds=20, events_per_s=50, seed=9)))
    first_tick = next(i for i, r in enumerate(recs) if r.kind == Kind.TICK)
    assert_restart_identical(recs, ["AAAUSDT"], [0, first_tick + 1])


@pytest.mark.parametrize("capture,fmt,symbols", [
    (SOL_DOGE_ENVELOPE, "cryptofeed", ["DOGEUSDT", "SOLUSDT"]),
    (XRP_OB500, "frames", ["XRPUSDT"]),
])
def test_shared_recordings_survive_restarts(shared_bybit: Path, tmp_path: Path, capture: str, fmt: str,
                                            symbols: list[str]) -> None:
    from gateway_bridge.importer import import_files
    from journal.reader import JournalReader

    import_files(str(tmp_path / "j"), fmt, [str(shared_bybit / capture)])
    recs = list(JournalReader(str(tmp_path / "j")).records())
    cuts = [len(recs) // 5, len(recs) // 2, len(recs) - 3]
    assert_restart_identical(recs, symbols, cuts)


def test_checkpoint_is_deterministic_bytes() -> None:
    recs = numbered(list(synthetic(["AAAUSDT"], seconds=30, events_per_s=80, seed=3)))
    a, b = Engine(default_registry(), ["AAAUSDT"]), Engine(default_registry(), ["AAAUSDT"])
    run_vectors(a, recs)
    run_vectors(b, recs)
    assert a.checkpoint() == b.checkpoint()
