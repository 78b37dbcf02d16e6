"""`feature-service demo` as a user runs it: a real simulator and shard, output through a pipe.

The full run is checked against what the test reads itself (the Parquet files replay wrote, the
data dir); the refusals leave every byte of what they were pointed at unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

MARKER = ".feature-service-demo"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
LINE_RE = re.compile(r"^\[\s*(\d+)s\] gateway (up|down|\?) .*")


def demo(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``feature-service demo ARGS`` in `cwd` with stdout a pipe (not a terminal)."""
    return subprocess.run([sys.executable, "-m", "tools.cli", "demo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under `root` (itself included) with its content hash, or 'dir'."""
    out = {".": "dir" if root.is_dir() else hashlib.sha256(root.read_bytes()).hexdigest()}
    if root.is_dir():
        for p in sorted(root.rglob("*")):
            out[str(p.relative_to(root))] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def latest_json(stdout: str) -> dict:
    """The pretty JSON printed after the ``GET .../features/latest`` line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("GET http://127.0.0.1:"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i] == "}")
    return json.loads("\n".join(lines[start + 1:end + 1]))


@pytest.mark.timeout(90)
def test_demo_runs_end_to_end_in_a_pipe(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "stale").mkdir(parents=True)  # left by an earlier demo run: the marker says it is ours
    (data / "stale" / "old.seg").write_bytes(b"x" * 100)
    (data / MARKER).write_text("made by the demo\n")

    r = demo("--duration", "6", "--data-dir", str(data), cwd=tmp_path)

    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    # One plain line per second (no terminal: no live table), each naming every symbol.
    lines = [line for line in r.stdout.splitlines() if LINE_RE.match(line)]
    assert [int(LINE_RE.match(line).group(1)) for line in lines] == [1, 2, 3, 4, 5, 6], r.stdout
    for line in lines:
        for sym in SYMBOLS:
            assert re.search(rf"{sym} mid=\S+ book=(valid|INVALID|\?) gaps=\d+ resyncs=\d+", line), line
    assert "gateway up" in lines[-1] and "mid=–" not in lines[-1]
    assert "\x1b[" not in r.stdout  # no terminal control codes in a pipe
    # One GET /features/latest answer as JSON.
    body = latest_json(r.stdout)
    assert set(body) == {"ts", "ts_ns", "symbol", "registry_hash", "book_valid", "features"}
    assert body["symbol"] == "BTCUSDT" and body["book_valid"] in (0, 1)
    assert isinstance(body["features"]["mid_price"], float) and body["features"]["mid_price"] > 0
    # Both children stopped by SIGINT with exit 0.
    assert "both stopped cleanly (exit 0)" in r.stdout
    # The dataset: the row count printed is what the Parquet files hold; every symbol has rows.
    files = sorted((data / "features").glob("*.parquet"))
    assert files, r.stdout
    tables = [pq.read_table(f) for f in files]
    rows = sum(t.num_rows for t in tables)
    m = re.search(r"^dataset built: (\d+) rows × \d+ columns in (\d+) file\(s\); registry ([0-9a-f]{12})",
                  r.stdout, re.M)
    assert m, r.stdout
    assert int(m.group(1)) == rows and int(m.group(2)) == len(files)
    assert body["registry_hash"].startswith(m.group(3))
    symbols = {s for t in tables for s in t.column("symbol").to_pylist()}
    assert symbols == set(SYMBOLS)
    assert rows >= 3 * 5  # at least five ticks per symbol in six seconds
    assert "last row per symbol" in r.stdout and "mid_price" in r.stdout.split("last row per symbol")[1]
    assert "live = replay" in r.stdout
    # What the run leaves: the marker, the shard's files and logs; the stale files are gone.
    assert (data / MARKER).is_file()
    assert not (data / "stale").exists()
    for name in ("journal", "checkpoints", "feature_log", "shard.log", "gateway-sim.log"):
        assert (data / name).exists(), name
    assert any((data / "journal").glob("*.seg"))


def _refused(r: subprocess.CompletedProcess[str], named: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and named in err[0], r.stderr
    assert "refusing" in err[0] or "cannot" in err[0]


def test_refuses_a_non_empty_directory_without_the_marker(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("keep me\n")
    (target / "sub" / "data.bin").write_bytes(bytes(range(256)))
    before = tree_digest(target)
    _refused(demo("--data-dir", str(target), cwd=tmp_path), str(target))
    assert tree_digest(target) == before
    assert not (target / MARKER).exists()


def test_refuses_data_dir_from_the_config_file(tmp_path: Path) -> None:
    """issue 7: `out_dir: .` once deleted the current directory's contents."""
    (tmp_path / "demo.yaml").write_text("demo:\n  data_dir: .\n")
    (tmp_path / "precious.txt").write_text("keep me\n")
    before = tree_digest(tmp_path)
    _refused(demo("--config", "demo.yaml", cwd=tmp_path), str(tmp_path))
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("given", [".", ".."])
def test_refuses_the_current_directory_and_its_parent_even_when_empty(tmp_path: Path, given: str) -> None:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    before = tree_digest(tmp_path)
    _refused(demo("--data-dir", given, cwd=cwd), str((cwd / given).resolve()))
    assert tree_digest(tmp_path) == before


def test_refuses_root(tmp_path: Path) -> None:
    _refused(demo("--data-dir", "/", cwd=tmp_path), "'/'")


def test_refuses_the_home_directory_even_when_empty(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    _refused(demo("--data-dir", "~", cwd=tmp_path, env=env), str(home))
    assert list(home.iterdir()) == []


def test_refuses_a_file_and_a_path_below_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("not a directory\n")
    _refused(demo("--data-dir", str(f), cwd=tmp_path), str(f))
    _refused(demo("--data-dir", str(f / "below"), cwd=tmp_path), str(f / "below"))
    assert f.read_text() == "not a directory\n"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "ports.yaml").write_text("shard_config:\n  api: {port: 8080}\n")
    r = demo("--config", "ports.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "shard_config.api.port" in r.stderr and "Traceback" not in r.stderr
    r = demo("--duration", "1", cwd=tmp_path)
    assert r.returncode == 2 and "--duration" in r.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "ports.yaml"]  # nothing made


def test_a_child_that_dies_early_fails_the_demo_with_its_log(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-registry.yaml"
    (tmp_path / "bad.yaml").write_text(f"shard_config:\n  registry: {missing}\n")
    r = demo("--config", "bad.yaml", "--data-dir", "d", cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the shard exited early with status" in r.stderr
    assert "no-such-registry.yaml" in r.stderr  # the shard's own message, from the tail of its log
    assert (tmp_path / "d" / MARKER).is_file()
