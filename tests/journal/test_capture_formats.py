"""Capture readers: exact time parsing, every format (plain, .gz, .zst), skipped-line accounting."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import orjson
import pytest
import zstandard

from journal import capture_formats as cf
from tests.conftest import (
    OB1_CRYPTOFEED_V1,
    OB1_FRAMES,
    SOL_DOGE_ENVELOPE,
    SOL_DOGE_FRAMES,
    XRP_OB500,
)

F1 = b'{"topic":"publicTrade.SOLUSDT","type":"snapshot","ts":1786310819001,"data":[]}'
F2 = b'{"topic":"orderbook.1.SOLUSDT","type":"snapshot","ts":1786310819002,"data":{"s":"SOLUSDT","b":[],"a":[],"u":1}}'
ACK = b'{"success":true,"ret_msg":"","op":"subscribe"}'


def _write(path: Path, lines: list[bytes]) -> Path:
    data = b"\n".join(lines) + b"\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    elif path.suffix == ".zst":  # two zstd frames back to back: readers must cross frame boundaries
        half = len(data) // 2
        c = zstandard.ZstdCompressor()
        path.write_bytes(c.compress(data[:half]) + c.compress(data[half:]))
    else:
        path.write_bytes(data)
    return path


def _read(fmt: str, path: Path) -> tuple[list[tuple[int, bytes]], Counter[str]]:
    skipped: Counter[str] = Counter()
    return list(cf.read(fmt, path, skipped)), skipped


def test_seconds_to_ns_is_exact() -> None:
    assert cf.seconds_to_ns(b"1786310819.228447") == 1_786_310_819_228_447_000
    assert cf.seconds_to_ns(b"1749833474.2851315") == 1_749_833_474_285_131_500
    assert cf.seconds_to_ns(b"1786310819") == 1_786_310_819_000_000_000
    assert cf.seconds_to_ns(b"1.0000000019") == 1_000_000_001  # past ns: truncated
    assert int(1749833474.2851315 * 1e9) != 1_749_833_474_285_131_500  # why float maths is not used


def test_iso_to_ns_is_exact() -> None:
    assert cf.iso_to_ns(b"2019-10-01T00:00:00.1234567Z") == 1_569_888_000_123_456_700
    assert cf.iso_to_ns(b"2019-10-01T00:00:00Z") == 1_569_888_000_000_000_000
    assert cf.iso_to_ns(b"2024-02-29T23:59:59.999999999Z") == 1_709_251_199_999_999_999
    for bad in (b"2019-10-01", b"2019-13-01T00:00:00Z", b"2019-10-01T00:00:00.1234567890Z", b"2019-10-01T00:00:00+01:00"):
        with pytest.raises(cf.BadLine):
            cf.iso_to_ns(bad)


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_tardis(tmp_path: Path, suffix: str) -> None:
    p = _write(tmp_path / f"t.txt{suffix}", [b"2026-08-09T21:26:59.0531234Z " + F1, b"", b"garbage",
                                             b"2026-08-09T21:26:59.1Z " + F2])
    out, skipped = _read("tardis", p)
    assert out == [(1_786_310_819_053_123_400, F1), (1_786_310_819_100_000_000, F2)]
    assert skipped == {"blank": 1, "bad_line": 1}


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_hftbacktest(tmp_path: Path, suffix: str) -> None:
    p = _write(tmp_path / f"h.txt{suffix}", [b"1786310819053123456 " + F1, b"x " + F2, b"17 " + F2,
                                             b"1786310819053123457 " + F2])
    out, skipped = _read("hftbacktest", p)
    assert out == [(1_786_310_819_053_123_456, F1), (1_786_310_819_053_123_457, F2)]
    assert skipped == {"bad_time": 2}


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_frames_envelope_and_bare(tmp_path: Path, suffix: str) -> None:
    env1 = orjson.dumps({"recv_ns": 1_786_310_819_500_000_001, "frame": orjson.loads(F1)})
    env2 = orjson.dumps({"recv_ns": 1_786_310_819_500_000_002, "frame": F2.decode()})
    p = _write(tmp_path / f"f.jsonl{suffix}", [env1, env2, F2, ACK, b"{broken"])
    out, skipped = _read("frames", p)
    assert out == [(1_786_310_819_500_000_001, orjson.dumps(orjson.loads(F1))),
                   (1_786_310_819_500_000_002, F2),
                   (1_786_310_819_002_000_000, F2),  # bare: ts ms -> ns
                   (1_786_310_819_002_000_000, ACK),  # no ts: previous line's time
                   (1_786_310_819_002_000_000, b"{broken")]  # broken frames go on to the decoder
    assert not skipped


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_cryptofeed_both_formats(tmp_path: Path, suffix: str) -> None:
    v2 = orjson.dumps({"t": "recv", "conn": "c", "ts": 1786310819.2284470, "data": F1.decode()})
    lines = [b'{"t":"header","format":2}', b'{"t":"send","ts":1786310819.1,"data":"{}"}', v2,
             b"wss://stream.bybit.com/v5/public/linear <-> 1749833471.8455276",
             b"wss://stream.bybit.com/v5/public/linear <- 1749833474.000351: " + ACK,
             b"1749833474.2851315: " + F2]
    out, skipped = _read("cryptofeed", _write(tmp_path / f"c.txt{suffix}", lines))
    assert out == [(1_786_310_819_228_447_000, F1), (1_749_833_474_285_131_500, F2)]
    assert skipped == {"not_recv": 2, "connection": 2}


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown capture format"):
        list(cf.read("pcap", _write(tmp_path / "x", [F1])))


def test_cryptofeed_envelope_yields_the_frames_file(shared_bybit: Path) -> None:
    frames = [line for line in (shared_bybit / SOL_DOGE_FRAMES).read_bytes().splitlines() if line]
    got, skipped = _read("cryptofeed", shared_bybit / SOL_DOGE_ENVELOPE)
    assert [f for _, f in got] == frames and skipped == {"not_recv": 11}
    assert all(a <= b for (a, _), (b, _) in zip(got, got[1:], strict=False))
    v1, skipped = _read("cryptofeed", shared_bybit / OB1_CRYPTOFEED_V1)
    assert [f for _, f in v1] == [line for line in (shared_bybit / OB1_FRAMES).read_bytes().splitlines() if line]
    assert v1[0][0] == 1_749_833_474_285_131_500


def test_bybit_archive_as_bare_frames(shared_bybit: Path) -> None:
    out, skipped = _read("frames", shared_bybit / XRP_OB500)
    assert len(out) == 50 and not skipped and out[0][0] == 1_733_011_200_691 * 1_000_000


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
@pytest.mark.parametrize(("fmt", "lines"), [
    ("frames", [orjson.dumps({"recv_ns": 1_786_310_819_000_000_000, "frame": F1.decode()}), ACK]),
    ("frames", [F1, F2, ACK]),  # bare frames, as in Bybit's archive
    ("tardis", [b"2026-08-09T21:26:59.1234567Z " + F1, b"2026-08-09T21:26:59.2Z " + F2]),
    ("hftbacktest", [b"1786310819000000000 " + F1, b"1786310819000000001 " + F2]),
    ("cryptofeed", [b'{"t":"header","format":2}', orjson.dumps({"t": "recv", "ts": 1786310819.5, "data": "{}"})]),
    ("cryptofeed", [b"wss://stream.bybit.com/v5/public/linear <-> 1749833471.8455276", b"1749833474.2851315: " + F2]),
])
def test_sniff_names_the_format_and_auto_reads_it(tmp_path: Path, fmt: str, lines: list[bytes], suffix: str) -> None:
    path = _write(tmp_path / f"c{suffix}", [b"", *lines])
    assert cf.sniff(path) == fmt
    assert _read("auto", path) == _read(fmt, path)


@pytest.mark.parametrize("lines", [[], [b"hello world", b"not a capture"], [b"[1, 2, 3]"], [b'{"retCode":0}'],
                                   [b"12:00 " + F1]])
def test_sniff_finds_no_format_in_other_files(tmp_path: Path, lines: list[bytes]) -> None:
    assert cf.sniff(_write(tmp_path / "x", lines)) is None


def test_sniff_goes_by_the_majority_of_the_first_lines(tmp_path: Path) -> None:
    lines = [b"1786310819000000000 " + F1] * 3 + [b"junk"] * 2  # 3 of 5 fit hftbacktest
    assert cf.sniff(_write(tmp_path / "x", lines)) == "hftbacktest"
    assert cf.sniff(_write(tmp_path / "y", lines[:2] + [b"junk"] * 3)) is None  # 2 of 5: no majority


def test_sniff_and_categories_of_the_shared_recordings(shared_bybit: Path) -> None:
    want = {SOL_DOGE_FRAMES: ("frames", set()), SOL_DOGE_ENVELOPE: ("cryptofeed", {"linear"}),
            OB1_FRAMES: ("frames", set()), OB1_CRYPTOFEED_V1: ("cryptofeed", {"linear"}), XRP_OB500: ("frames", set())}
    for name, (fmt, categories) in want.items():
        assert (cf.sniff(shared_bybit / name), cf.categories(shared_bybit / name)) == (fmt, categories), name


def test_categories_come_from_connection_urls(tmp_path: Path) -> None:
    lines = [orjson.dumps({"t": "connect", "ts": 1.0, "addr": "wss://stream.bybit.com/v5/public/spot"}),
             b"wss://stream-testnet.bybit.com/v5/public/option <-> 1749833471.8",
             b'{"t":"recv","ts":2.0,"data":"{\\"topic\\":\\"v5/public/inverse\\"}"}',  # not a URL
             b"ws://x/v5/public/linearx"]  # not a category
    assert cf.categories(_write(tmp_path / "c", lines)) == {"spot", "option"}
