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
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zmq
from rich.console import Console

from api.metrics import ShardMetrics
from api.wire import TOPIC_PREFIX, WireVector, encode
from tools.sim.demo_table import Watch, plain_line, table

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

    r = demo("--duration", "16", "--data-dir", str(data), cwd=tmp_path)  # a model needs 16 ticks to split

    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    # One plain line per second (no terminal: no live table), each naming every symbol.
    lines = [line for line in r.stdout.splitlines() if LINE_RE.match(line)]
    assert [int(LINE_RE.match(line).group(1)) for line in lines] == list(range(1, 17)), r.stdout
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
    assert rows >= 3 * 15  # at least fifteen ticks per symbol in sixteen seconds
    assert "last row per symbol" in r.stdout and "mid_price" in r.stdout.split("last row per symbol")[1]
    assert "live = replay" in r.stdout
    # The training dataset of the run, its manifest and its report.
    m = re.search(r"^training dataset ([0-9a-f]{16}): (\d+) rows", r.stdout, re.M)
    assert m, r.stdout
    path = data / "datasets" / m.group(1)
    manifest = json.loads((path / "_manifest.json").read_text())
    assert manifest["rows_total"] == int(m.group(2)) == pq.ParquetDataset(path).read().num_rows > 0
    assert set(manifest["label_balance"]) == {"1s", "5s", "10s"} and "label_5s: down" in r.stdout
    assert (path / "_report" / "report.html").is_file() and "report.html" in r.stdout
    # model-service trained on that dataset, activated the model, and scored the restarted shard's vectors.
    m = re.search(r"^model ([0-9a-f]{16}): (logistic|hist_gradient_boosting) ", r.stdout, re.M)
    assert m, r.stdout
    meta = json.loads((data / "models" / m.group(1) / "metadata.json").read_text())
    assert meta["dataset_id"] == manifest["dataset_id"] and meta["registry_hash"] == manifest["registry_hash"]
    assert f"activated {m.group(1)}" in r.stdout
    scored = [line for line in r.stdout.splitlines() if re.match(r"^  t\+\ds ", line)]
    assert len(scored) == 5 and all(sym in scored[-1] for sym in SYMBOLS), scored
    latest = json.loads(r.stdout.split("/model/predict/latest?symbol=BTCUSDT\n", 1)[1].split("\n}\n", 1)[0] + "\n}")
    assert latest["model_id"] == m.group(1) and latest["symbol"] == "BTCUSDT"
    assert abs(sum(latest["probabilities"].values()) - 1) < 1e-9
    # What the run leaves: the marker, the shard's files and logs; the stale files are gone.
    assert (data / MARKER).is_file()
    assert not (data / "stale").exists()
    for name in ("journal", "checkpoints", "feature_log", "shard.log", "gateway-sim.log", "model-service.log"):
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


def test_refuses_a_marked_directory_another_demo_is_using(tmp_path: Path) -> None:
    import fcntl

    target = tmp_path / "busy"
    target.mkdir()
    (target / MARKER).write_text("made by the demo\n")
    (target / "journal.seg").write_bytes(b"live data")
    before = tree_digest(target)
    with (target / MARKER).open("r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running demo holds
        _refused(demo("--data-dir", str(target), cwd=tmp_path), "another demo run is using it")
    assert tree_digest(target) == before


def test_a_symlink_is_not_a_marker(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not the demo's\n")
    target = tmp_path / "linked"
    target.mkdir()
    (target / MARKER).symlink_to(outside)
    before = tree_digest(tmp_path)
    _refused(demo("--data-dir", str(target), cwd=tmp_path), "no .feature-service-demo marker")
    assert tree_digest(tmp_path) == before


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
    (tmp_path / "symbols.yaml").write_text("shard_config:\n  shard: {symbols: [DOGEUSDT]}\n")
    r = demo("--config", "symbols.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "shard_config.shard.symbols: DOGEUSDT is not simulated" in r.stderr
    r = demo("--duration", "1", cwd=tmp_path)
    assert r.returncode == 2 and "--duration" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ports.yaml", "symbols.yaml"]  # nothing made


def test_a_child_that_dies_early_fails_the_demo_with_its_log(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-registry.yaml"
    (tmp_path / "bad.yaml").write_text(f"shard_config:\n  registry: {missing}\n")
    r = demo("--config", "bad.yaml", "--data-dir", "d", cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the shard exited early with status" in r.stderr
    assert "no-such-registry.yaml" in r.stderr  # the shard's own message, from the tail of its log
    assert (tmp_path / "d" / MARKER).is_file()


# --- the live view against a real HTTP server and real ZMQ sockets ------------------------------
HASH = "ab" * 32
NAMES = ["mid_price", "spread_rel", "trade_count_3s"]


@pytest.fixture
def fake_shard() -> Iterator[tuple[str, dict, ShardMetrics]]:
    """A real HTTP server answering /health, /metrics and /features/schema like a shard."""
    health = {"gateway": {"up": True}, "journal": {"next_seq": 101},
              "books": {"BTCUSDT": {"valid": True}, "ETHUSDT": {"valid": True}}}
    metrics = ShardMetrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == "/metrics":
                body = metrics.render()
            elif self.path == "/health":
                body = json.dumps(health).encode()
            elif self.path == f"/features/schema?registry_hash={HASH}":
                body = json.dumps({"registry_hash": HASH, "names": NAMES}).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", health, metrics
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _send_until_seen(w: Watch, pub: zmq.Socket, sub: zmq.Socket, v: WireVector) -> None:
    """Publish `v` until the view has it (the SUB's subscription takes a moment to arrive)."""
    end = time.monotonic() + 5
    while time.monotonic() < end:
        pub.send_multipart(encode(v))
        w.drain(sub, time.monotonic() + 0.05)
        if w.latest.get(v.symbol) is not None and w.latest[v.symbol].ts_ns == v.ts_ns:
            return
    raise AssertionError("vector never arrived")


def test_live_view_shows_vectors_gaps_resyncs_and_book_state(fake_shard) -> None:
    api, health, metrics = fake_shard
    ctx = zmq.Context()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    try:
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        sub.connect(f"tcp://127.0.0.1:{port}")
        sub.subscribe(TOPIC_PREFIX)
        w = Watch(api, ("BTCUSDT", "ETHUSDT"))
        w.t = 1
        _send_until_seen(w, pub, sub, WireVector(10**18, "BTCUSDT", 1, np.array([100.5, 1e-4, 7.0]), HASH))
        w.poll_api()
        assert w.value("BTCUSDT", "mid_price") == 100.5 and w.value("ETHUSDT", "mid_price") is None
        assert w.events == {}
        line = plain_line(w)
        assert line.startswith("[  1s] gateway up · ") and "journal 100 records" in line
        assert "BTCUSDT mid=100.5 book=valid gaps=0 resyncs=0 | ETHUSDT mid=– book=valid" in line

        metrics.count_book_gap("BTCUSDT")
        metrics.count_resync("BTCUSDT", "zmq", "requested")  # asked, not completed: not a resync yet
        metrics.count_resync("BTCUSDT", "zmq", "completed")
        metrics.observe_resync_duration(0.0025)
        w.t = 2
        w.poll_api()
        assert w.events == {"BTCUSDT": "gap→resynced 2.5ms @2s"}
        assert "BTCUSDT mid=100.5 book=valid gaps=1 resyncs=1" in plain_line(w)
        assert plain_line(w).endswith("| last book event: BTCUSDT gap→resynced 2.5ms @2s")

        w.t = 3
        _send_until_seen(w, pub, sub, WireVector(2 * 10**18, "BTCUSDT", 0, np.array([np.nan, np.nan, 3.0]), HASH))
        health["books"]["BTCUSDT"]["valid"] = False
        w.poll_api()
        assert w.events["BTCUSDT"] == "book invalid @3s" and w.book_state("BTCUSDT") == "INVALID"
        console = Console(record=True, width=120, force_terminal=False)
        console.print(table(w, 20))
        text = console.export_text()
        for expected in ("3s of 20s", "BTCUSDT", "ETHUSDT", "INVALID", "trade_count_3s", "1 / 1",
                         "book invalid @3s", "gateway up"):
            assert expected in text, text
        assert "depth_imbalance_top5" not in text  # not in this registry: not shown
    finally:
        ctx.destroy(linger=0)
