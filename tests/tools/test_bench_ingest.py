"""bench ingest: a tiny run through the asyncio Bridge journals every message (loss 0) and prints the table,
the in-process pipeline against its floor (synthetic and real recordings), the end-to-end floor and the
tick delays."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from tools.bench import ingest

NUM = r"([\d,]+(?:\.\d+)?)"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def test_a_tiny_run_loses_nothing_and_prints_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    ingest.add_arguments(p)
    args = p.parse_args(["--messages", "3000", "--repeats", "1", "--policies", "never", "--tick-seconds", "3",
                         "--dir", str(tmp_path)])
    assert ingest.run(args) == 0  # 1 when any message is missing from the journal
    out = capsys.readouterr().out
    (row,) = [line.split() for line in out.splitlines() if line.startswith("never ")]
    msgs_s, recv_us, decode_us, append_us, loss, bad = row[1:]
    assert float(msgs_s.replace(",", "")) > 0
    assert float(recv_us) > 0 and float(decode_us) > 0 and float(append_us) > 0
    assert (loss, bad) == ("0", "0")
    assert "naive baseline" in out
    _check_in_process(out)
    _check_end_to_end(out)
    _check_tick_delay(out)


def _check_in_process(out: str) -> None:
    """One line per message set and policy: project µs/msg and msgs/s, floor, their ratio."""
    line = re.compile(rf"in process  (\w+) +fsync (\w+) *: {NUM} µs/msg \({NUM} msgs/s\); "
                      rf"floor {NUM} µs/msg \({NUM} msgs/s\); ratio {NUM}; goal ≤ 5 µs (ok|MISSED)$", re.M)
    found = {(m[1], m[2]): [_num(x) for x in m.groups()[2:7]] for m in line.finditer(out)}
    if os.environ.get("CI") == "true":  # the recordings are part of the CI checkout: never skip them there
        assert ingest.RECORDINGS.is_dir(), f"{ingest.RECORDINGS} is missing"
    sets = ("synthetic", "recordings") if ingest.RECORDINGS.is_dir() else ("synthetic",)
    assert set(found) == {(s, p) for s in sets for p in ("never", "interval_ms")}
    for us, rate, floor_us, floor_rate, ratio in found.values():
        assert us > 0 and floor_us > 0 and rate > 0 and floor_rate > 0
        assert ratio == pytest.approx(us / floor_us, abs=0.01)
    if "recordings" not in sets:
        assert "in process  recordings: skipped" in out


def _check_end_to_end(out: str) -> None:
    """The bare pipeline end to end (loss 0), the receive-only rate, each policy's floor/project ratio."""
    floor = re.search(rf"^end to end  floor .*: {NUM} msgs/s, loss (\d+)$", out, re.M)
    assert floor is not None and _num(floor[1]) > 0 and floor[2] == "0"
    recv = re.search(rf"^end to end  receive only .*: {NUM} msgs/s$", out, re.M)
    assert recv is not None and _num(recv[1]) > 0
    never = re.search(rf"^end to end  never *: {NUM} msgs/s, loss 0; floor/project {NUM}; goal ≤ 1.5 (ok|MISSED)$",
                      out, re.M)
    assert never is not None and _num(never[1]) > 0 and _num(never[2]) > 0


def _check_tick_delay(out: str) -> None:
    """Median and max tick delay at both paced rates, three ticks each (the first is skipped)."""
    for rate in ("10", "10,000"):
        m = re.search(rf"^tick delay  {rate} msgs/s: median {NUM} ms, max {NUM} ms \((\d+) ticks", out, re.M)
        assert m is not None, f"no tick delay line for {rate} msgs/s"
        median, worst = _num(m[1]), _num(m[2])
        assert 0 < median <= worst < 1000 and int(m[3]) == 3


def test_recordings_map_to_gateway_topics_and_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    frames = [b'{"success":true,"ret_msg":"","op":"subscribe"}',
              b'{"topic":"orderbook.50.SOLUSDT","type":"snapshot","data":{"s":"SOLUSDT"}}',
              b'{"topic":"orderbook.50.SOLUSDT","type":"delta","data":{"s":"SOLUSDT"}}',
              b'{"topic":"publicTrade.DOGEUSDT","data":[]}', b'{"topic":"tickers.DOGEUSDT","data":{}}',
              b'{"topic":"kline.1.DOGEUSDT","data":[]}']
    (tmp_path / "a.frames.jsonl").write_bytes(b"\n".join(frames[:4]) + b"\n\n")
    (tmp_path / "2024-12-01_XRPUSDT_ob500.data").write_bytes(b"\n".join(frames[4:]))
    (tmp_path / "ignored.txt").write_bytes(frames[1])
    monkeypatch.setattr(ingest, "RECORDINGS", tmp_path)
    real = ingest._recordings(8)
    assert real is not None
    msgs, symbols = real
    assert symbols == ("DOGEUSDT", "SOLUSDT") and "6 frames of 2 files" in capsys.readouterr().out
    topics = [m[0].decode() for m in msgs]
    # files in path order (the .data file first), acks on the ticker topic, then round again
    assert topics == ["market.ticker", "market.kline.1m", "market.ticker", "market.orderbook.snapshot",
                      "market.orderbook.delta", "market.trades", "market.ticker", "market.kline.1m"]
    assert [m[1] for m in msgs] == [frames[i] for i in (4, 5, 0, 1, 2, 3, 4, 5)]
    monkeypatch.setattr(ingest, "RECORDINGS", tmp_path / "absent")
    assert ingest._recordings(8) is None


def test_unknown_policy_exits_naming_it() -> None:
    p = argparse.ArgumentParser()
    ingest.add_arguments(p)
    with pytest.raises(SystemExit, match="sometimes"):
        ingest.run(p.parse_args(["--policies", "sometimes"]))
