"""`feature-service journal …` as a user runs it: every mistake is one line, a non-zero exit, and no change.

Each case runs the real CLI in a subprocess and checks: the exit status (2 usage, 1 runtime), no
traceback, exactly one line on stderr naming the offending thing, and every file of the journal
directory (and of any path the command was given) byte for byte as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.record import NS_PER_S
from journal.config import JournalConfig
from journal.writer import JournalWriter
from tests.conftest import INSTRUMENTS, SOL_DOGE_ENVELOPE, SOL_DOGE_FRAMES
from tests.journal import frame_ends, make_records, segment_files

REPO = Path(__file__).resolve().parents[2]
T0 = 1_786_310_819 * NS_PER_S  # 2026-08-09T21:26:59Z


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "journal", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def tree_hash(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (by relative path); {} if it does not exist, marked if a file."""
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def trade(ts_ms: int, sym: str = "SOLUSDT") -> dict[str, Any]:
    return {"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": ts_ms,
            "data": [{"T": ts_ms, "s": sym, "S": "Buy", "v": "1", "p": "77.3", "i": str(ts_ms), "BT": False}]}


def frames_capture(path: Path, start_ns: int, n: int, step_ns: int = NS_PER_S // 2) -> Path:
    """A `frames` capture of `n` trades, alternating SOLUSDT/DOGEUSDT, `step_ns` apart from `start_ns`."""
    lines = [orjson.dumps({"recv_ns": start_ns + i * step_ns,
                           "frame": trade((start_ns + i * step_ns) // 1_000_000, ("SOLUSDT", "DOGEUSDT")[i % 2])})
             for i in range(n)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def envelope(path: Path, category: str, start_s: int) -> Path:
    """A cryptofeed format-2 capture connected to the `category` endpoint, three trades."""
    url = f"wss://stream.bybit.com/v5/public/{category}"
    lines = [orjson.dumps({"t": "connect", "conn": "BYBIT.ws.1", "ts": start_s, "addr": url})]
    lines += [orjson.dumps({"t": "recv", "conn": "BYBIT.ws.1", "ts": start_s + i,
                            "data": orjson.dumps(trade((start_s + i) * 1000)).decode()}) for i in range(1, 4)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A linear journal from a capture (T0 .. T0 + 9.5 s), a corrupt 3-segment journal, a file, captures."""
    root = tmp_path_factory.mktemp("cli")
    capture = frames_capture(root / "capture.jsonl", T0, 20)
    proc = cli("import", "--journal", str(root / "journal"), str(capture))
    assert proc.returncode == 0, proc.stderr
    corrupt = root / "corrupt"
    recs = make_records(600, seed=3)
    with JournalWriter(JournalConfig(dir=str(corrupt), fsync="never", segment_max_bytes=8000)) as w:
        for i in range(0, len(recs), 5):
            w.append(recs[i : i + 5])
    mid = segment_files(corrupt)[1]
    data = bytearray(mid.read_bytes())
    data[frame_ends(mid)[3] + 9] ^= 1
    mid.write_bytes(bytes(data))
    (root / "afile").write_bytes(b"not a journal\n")
    (root / "junk.txt").write_bytes(b"hello world\nthis is not a capture\n")
    (root / "empty.jsonl").write_bytes(b"\n\n")
    envelope(root / "spot.jsonl", "spot", T0 // NS_PER_S + 100)
    envelope(root / "linear.jsonl", "linear", T0 // NS_PER_S + 100)
    return {"root": root, "journal": root / "journal", "capture": capture, "corrupt": corrupt, "mid": mid,
            "afile": root / "afile", "junk": root / "junk.txt", "empty": root / "empty.jsonl", "spot": root / "spot.jsonl",
            "linear": root / "linear.jsonl"}


# (case id, argv builder over `world` -> (argv, the path that must stay unchanged), exit status, needles in stderr)
Case = tuple[str, Callable[[dict[str, Path]], tuple[list[str], Path]], int, list[str]]
CASES: list[Case] = [
    ("import_overlap", lambda w: (["import", "--journal", str(w["journal"]),
                                   str(frames_capture(w["root"] / "early.jsonl", T0 + 3 * NS_PER_S, 4))], w["journal"]),
     1, ["early.jsonl (2026-08-09T21:27:02.000Z to 2026-08-09T21:27:03.500Z) starts before the journal's last record",
         "2026-08-09T21:26:59.000Z to 2026-08-09T21:27:08.500Z", "--skip-overlap"]),
    ("import_twice", lambda w: (["import", "--journal", str(w["journal"]), str(w["capture"])], w["journal"]),
     1, ["capture.jsonl", "starts before the journal's last record"]),
    ("import_spot_into_linear", lambda w: (["import", "--journal", str(w["journal"]), str(w["spot"])], w["journal"]),
     1, ["holds linear records", "spot.jsonl is spot"]),
    ("import_category_contradicted", lambda w: (["import", "--journal", str(w["root"] / "new1"), "--category", "spot",
                                                 str(w["linear"])], w["root"] / "new1"),
     2, ["linear.jsonl is a linear capture", "--category is spot"]),
    ("import_wrong_format", lambda w: (["import", "--journal", str(w["root"] / "new2"), "--format", "cryptofeed",
                                        str(w["capture"])], w["root"] / "new2"),
     2, ["capture.jsonl: no cryptofeed frames", "not_recv 20", "looks like frames"]),
    ("import_no_format", lambda w: (["import", "--journal", str(w["root"] / "new3"), str(w["junk"])], w["root"] / "new3"),
     1, ["junk.txt: not in any known capture format"]),
    ("import_missing_capture", lambda w: (["import", "--journal", str(w["root"] / "new4"),
                                           str(w["root"] / "missing.jsonl")], w["root"] / "new4"),
     1, ["missing.jsonl: no such file"]),
    ("import_unknown_symbol", lambda w: (["import", "--journal", str(w["root"] / "new5"), "--symbols", "SOLUSD",
                                          str(w["capture"])], w["root"] / "new5"),
     2, ["--symbols SOLUSD: not in the captures (their symbols: DOGEUSDT, SOLUSDT)"]),
    ("import_empty_capture", lambda w: (["import", "--journal", str(w["root"] / "new6"), str(w["empty"])],
                                        w["root"] / "new6"),
     1, ["empty.jsonl: is empty"]),
    ("import_journal_is_a_file", lambda w: (["import", "--journal", str(w["afile"]), str(w["capture"])], w["afile"]),
     1, ["afile: is a file"]),
    ("import_journal_under_a_file", lambda w: (["import", "--journal", str(w["afile"] / "j"), str(w["capture"])],
                                               w["afile"]),
     1, ["afile/j: cannot be created", "afile is a file"]),
    ("import_into_corrupt", lambda w: (["import", "--journal", str(w["corrupt"]), str(w["capture"])], w["corrupt"]),
     1, ["00000000000000000", "journal repair --journal"]),
    ("stats_missing", lambda w: (["stats", "--journal", str(w["root"] / "nope")], w["root"] / "nope"),
     1, ["nope: no such directory"]),
    ("stats_file", lambda w: (["stats", "--journal", str(w["afile"])], w["afile"]), 1, ["afile: is a file"]),
    ("stats_plain_dir", lambda w: (["stats", "--journal", str(w["root"] / "plain")], w["root"]), 1,
     ["plain: not a journal"]),
    ("stats_corrupt", lambda w: (["stats", "--journal", str(w["corrupt"])], w["corrupt"]),
     1, ["00000000000000000", "journal repair --journal"]),
    ("cat_missing", lambda w: (["cat", "--journal", str(w["root"] / "nope")], w["root"] / "nope"),
     1, ["nope: no such directory"]),
    ("cat_file", lambda w: (["cat", "--journal", str(w["afile"])], w["afile"]), 1, ["afile: is a file"]),
    ("cat_corrupt", lambda w: (["cat", "--journal", str(w["corrupt"])], w["corrupt"]),
     1, ["00000000000000000", "journal repair --journal"]),
    ("cat_bad_time", lambda w: (["cat", "--journal", str(w["journal"]), "--from", "yesterday"], w["journal"]),
     2, ["--from: 'yesterday' is not a time"]),
    ("cat_from_after_to", lambda w: (["cat", "--journal", str(w["journal"]), "--from", "2026-08-09T21:27:05Z",
                                      "--to", "1786310820"], w["journal"]),
     2, ["--from 2026-08-09T21:27:05Z is after --to 1786310820"]),
    ("cat_unknown_symbol", lambda w: (["cat", "--journal", str(w["journal"]), "--symbol", "SOLUSD"], w["journal"]),
     2, ["--symbol SOLUSD: not in journal", "DOGEUSDT, SOLUSDT"]),
    ("cat_unknown_kind", lambda w: (["cat", "--journal", str(w["journal"]), "--kind", "bogus"], w["journal"]),
     2, ["bogus"]),
    ("cat_negative_limit", lambda w: (["cat", "--journal", str(w["journal"]), "--limit", "-1"], w["journal"]),
     2, ["--limit: -1 is negative"]),
    ("repair_missing", lambda w: (["repair", "--journal", str(w["root"] / "nope")], w["root"] / "nope"),
     1, ["nope: no such directory"]),
]


@pytest.mark.parametrize(("argv_of", "status", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_a_status_and_no_change(world: dict[str, Path], argv_of: Callable[..., Any],
                                                       status: int, needles: list[str]) -> None:
    (world["root"] / "plain").mkdir(exist_ok=True)
    argv, watched = argv_of(world)
    before, journal_before = tree_hash(watched), tree_hash(world["journal"])
    existed = watched.exists()
    proc = cli(*argv)
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"feature-service journal {argv[0]}: ")
    for needle in needles:
        assert needle in lines[0]
    if argv[0] == "cat":  # cat streams: the records before the damage came out, whole and in order
        seqs = [json.loads(line)["seq"] for line in proc.stdout.splitlines()]
        assert seqs == list(range(1, len(seqs) + 1))
    else:
        assert proc.stdout == ""
    assert watched.exists() == existed and tree_hash(watched) == before
    assert tree_hash(world["journal"]) == journal_before


def test_a_read_only_journal_dir_is_refused_in_one_line(world: dict[str, Path], tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: directory permissions do not stop root (the writer's test injects EROFS)")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        proc = cli("import", "--journal", str(d), str(world["capture"]))
    finally:
        d.chmod(0o755)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"feature-service journal import: journal {d}: directory is not writable"
    assert list(d.iterdir()) == []


def test_a_locked_journal_is_refused_in_one_line(world: dict[str, Path], tmp_path: Path) -> None:
    j = tmp_path / "j"
    with JournalWriter(JournalConfig(dir=str(j), fsync="never")) as w:
        w.append(make_records(3, start_ns=T0 - 10 * NS_PER_S))
        before = tree_hash(j)
        for argv in (["import", "--journal", str(j), str(world["capture"])], ["repair", "--journal", str(j)]):
            proc = cli(*argv)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr
            assert proc.stderr.strip() == f"feature-service journal {argv[0]}: {j}: journal is open by another writer"
        assert tree_hash(j) == before


def test_skip_overlap_reruns_add_nothing(world: dict[str, Path], tmp_path: Path) -> None:
    j = tmp_path / "j"
    first = cli("import", "--journal", str(j), "--skip-overlap", str(world["capture"]))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["frames"] == 20
    before = tree_hash(j)
    again = cli("import", "--journal", str(j), "--skip-overlap", str(world["capture"]))
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["seq"] is None and summary["frames"] == 0 and summary["skipped"] == {"overlap": 20}
    assert tree_hash(j) == before
    # a capture going on past the journal's end: only the last 5 frames go in
    longer = frames_capture(tmp_path / "longer.jsonl", T0, 25)
    more = json.loads(cli("import", "--journal", str(j), "--skip-overlap", str(longer)).stdout)
    assert more["frames"] == 5 and more["skipped"] == {"overlap": 20}


def test_cat_filters_by_symbol_and_time(world: dict[str, Path]) -> None:
    # trades at T0 + i/2 s, i = 0..19, SOLUSDT for even i; --from T0+2s --to T0+5s (inclusive): i = 4..10
    proc = cli("cat", "--journal", str(world["journal"]), "--symbol", "SOLUSDT", "--kind", "trades",
               "--from", "2026-08-09T21:27:01", "--to", str((T0 + 5 * NS_PER_S) // 1_000_000))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    want = [T0 + i * NS_PER_S // 2 for i in range(4, 11) if i % 2 == 0]
    assert [r["recv_ns"] for r in rows] == want and {r["symbol"] for r in rows} == {"SOLUSDT"}
    both = cli("cat", "--journal", str(world["journal"]), "--symbol", "SOLUSDT", "--symbol", "DOGEUSDT",
               "--kind", "trades", "--from-seq", "0", "--to", f"{T0 + NS_PER_S}")
    assert [json.loads(x)["recv_ns"] for x in both.stdout.splitlines()] == [T0, T0 + NS_PER_S // 2, T0 + NS_PER_S]


def test_repair_from_the_command_line_then_stats_and_cat_work(world: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    j = tmp_path / "c"
    shutil.copytree(world["corrupt"], j)
    proc = cli("repair", "--journal", str(j))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    segs = segment_files(j)
    mid_first, last_first = int(segs[1].name[:20]), int(segs[2].name[:20])
    assert report["repaired"][0]["lost_seq"] == [mid_first + 4, last_first - 1]  # frame 4 (after the 4th frame end) had the flipped byte
    stats = json.loads(cli("stats", "--journal", str(j)).stdout)
    assert stats["records"] == 600 - (last_first - 1 - (mid_first + 4) + 1)
    seqs = [json.loads(x)["seq"] for x in cli("cat", "--journal", str(j)).stdout.splitlines()]
    assert seqs == [s for s in range(1, 601) if not mid_first + 4 <= s < last_first]


def test_format_auto_is_the_default_and_reads_the_shared_envelope(shared_bybit: Path, tmp_path: Path) -> None:
    proc = cli("import", "--journal", str(tmp_path / "j"), str(shared_bybit / SOL_DOGE_ENVELOPE))
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["format"] == "cryptofeed" and s["category"] == "linear" and s["frames"] == 1248


@pytest.mark.parametrize(("fmt", "name", "looks"), [("cryptofeed", SOL_DOGE_FRAMES, "frames"),
                                                     ("frames", SOL_DOGE_ENVELOPE, "cryptofeed"),
                                                     ("tardis", SOL_DOGE_FRAMES, "frames")])
def test_a_shared_capture_in_the_wrong_format_names_the_one_it_looks_like(shared_bybit: Path, tmp_path: Path,
                                                                         fmt: str, name: str, looks: str) -> None:
    proc = cli("import", "--journal", str(tmp_path / "j"), "--format", fmt, str(shared_bybit / name))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"no {fmt} frames" in proc.stderr and f"it looks like {looks}" in proc.stderr
    assert not (tmp_path / "j").exists()


def test_a_json_document_is_not_a_capture(shared_bybit: Path, tmp_path: Path) -> None:
    proc = cli("import", "--journal", str(tmp_path / "j"), str(shared_bybit / INSTRUMENTS))
    assert proc.returncode == 1 and "not in any known capture format" in proc.stderr
    assert not (tmp_path / "j").exists()


def test_progress_bar_only_on_a_terminal(world: dict[str, Path], tmp_path: Path) -> None:
    import pty

    piped = cli("import", "--journal", str(tmp_path / "a"), str(world["capture"]))
    assert "importing" not in piped.stderr and json.loads(piped.stdout)["frames"] == 20
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "tools.cli", "journal", "import", "--journal",
                               str(tmp_path / "b"), str(world["capture"])], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=slave, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO),
                                                              "COLUMNS": "100", "TERM": "xterm"})
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["frames"] == 20  # the JSON summary still on stdout
    assert b"importing" in seen and b"20/20" in seen


@pytest.mark.timeout(90)
def test_a_shard_on_a_corrupt_closed_segment_fails_in_one_line_and_starts_after_repair(world: dict[str, Path],
                                                                                    tmp_path: Path) -> None:
    import shutil

    from tests.e2e import harness as h

    cfg = h.shard_config(tmp_path, h.sim_config(tmp_path, ["SOLUSDT"]), ["SOLUSDT"])
    journal = Path(h.load(cfg)["data_dir"]) / "journal"
    shutil.copytree(world["corrupt"], journal)
    before = tree_hash(journal)
    r = subprocess.run([sys.executable, "-m", "tools.cli", "shard", "--config", str(cfg)], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    err = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(err) == 1, r.stderr
    assert world["mid"].name in err[0] and f"feature-service journal repair --journal {journal}" in err[0]
    assert tree_hash(journal) == before
    assert cli("repair", "--journal", str(journal)).returncode == 0
    shard = h.start_shard(cfg, tmp_path / "shard.log")  # no gateway: it serves /health and waits for one
    assert shard.stop() == 0, shard.text()[-2000:]
