"""bench ingest: a tiny run through the asyncio Bridge journals every message (loss 0) and prints the table."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tools.bench import ingest


def test_a_tiny_run_loses_nothing_and_prints_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    ingest.add_arguments(p)
    args = p.parse_args(["--messages", "3000", "--repeats", "1", "--policies", "never", "--dir", str(tmp_path)])
    assert ingest.run(args) == 0  # 1 when any message is missing from the journal
    out = capsys.readouterr().out
    (row,) = [line.split() for line in out.splitlines() if line.startswith("never ")]
    msgs_s, recv_us, decode_us, append_us, loss, bad = row[1:]
    assert float(msgs_s.replace(",", "")) > 0
    assert float(recv_us) > 0 and float(decode_us) > 0 and float(append_us) > 0
    assert (loss, bad) == ("0", "0")
    assert "naive baseline" in out


def test_unknown_policy_exits_naming_it() -> None:
    p = argparse.ArgumentParser()
    ingest.add_arguments(p)
    with pytest.raises(SystemExit, match="sometimes"):
        ingest.run(p.parse_args(["--policies", "sometimes"]))
