"""End-to-end helpers: the simulator, shards and a features.live recorder as real subprocesses.

Everything binds loopback: ZMQ on ``ipc://`` paths under the test's tmp dir, the API on a free TCP
port. Run as ``python -m tests.e2e.harness record OUT ENDPOINT...`` it is the SUB client process:
every features.live message it receives is appended to OUT as length-prefixed frames.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `cond` until it returns something truthy (returned) or fail after `timeout` s naming `what`."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


# --- configs ---------------------------------------------------------------------------------

def sim_config(tmp: Path, symbols: list[str], name: str = "sim", *, rate_hz: float = 300, seed: int = 1,
               messages: int = 0, faults: dict | None = None, http: bool = False, **extra: Any) -> Path:
    """Write a synthetic-market simulator config (50-level books) and return its path."""
    doc: dict[str, Any] = {"endpoint": f"ipc://{tmp}/{name}.gw", "control_endpoint": f"ipc://{tmp}/{name}.ctl",
                           "source": "synthetic", "wait_for_subscriber": False, "log_interval_s": 1.0,
                           "synthetic": {"symbols": symbols, "depth": 50, "seed": seed, "rate_hz": rate_hz,
                                         "messages": messages},
                           "faults": faults or {}, **extra}
    if http:
        doc["http_endpoint"] = f"127.0.0.1:{free_port()}"
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def shard_config(tmp: Path, sim_cfg: Path, symbols: list[str], name: str = "shard", **extra: Any) -> Path:
    """Write a shard config fed by the simulator of `sim_cfg`; `extra` sections merge over the defaults."""
    sim = yaml.safe_load(sim_cfg.read_text())
    doc: dict[str, Any] = {
        "data_dir": str(tmp / f"{name}-data"),
        "shard": {"name": name, "symbols": symbols},
        "gateway": {"endpoint": sim["endpoint"], "control_endpoint": sim["control_endpoint"], "poll_ms": 20,
                    "silence_ms": 1000, "reconnect": {"initial_ms": 50, "max_ms": 400},
                    "resync": {"timeout_ms": 500, "backoff": {"initial_ms": 100, "max_ms": 1000}}},
        "publish": {"endpoint": f"ipc://{tmp}/{name}.pub"},
        "api": {"port": free_port()},
        "checkpoint": {"interval_s": 2.0},
        "feature_log": {"flush_interval_s": 0.2},
    }
    for key, value in extra.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) and isinstance(doc.get(key), dict) else value
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def log_ns(event: dict[str, Any]) -> int:
    """Epoch ns of a JSON log line's ISO ``timestamp`` (microsecond precision)."""
    from datetime import datetime

    return int(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() * 1e6) * 1000


def load(path: Path) -> dict[str, Any]:
    """A config file's YAML document."""
    return yaml.safe_load(path.read_text())


# --- processes -------------------------------------------------------------------------------

class Proc:
    """One `feature-service COMMAND --config FILE` subprocess, stderr+stdout appended to `log`."""

    def __init__(self, command: str, config: Path, log: Path, *args: str) -> None:
        self.log = log
        with log.open("ab") as f:
            self.p = subprocess.Popen([sys.executable, "-m", "tools.cli", command, "--config", str(config), *args],
                                      stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        self.started = time.monotonic()

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.p.poll() is None

    def kill9(self) -> None:
        """SIGKILL and reap."""
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def stop(self, timeout: float = 20) -> int:
        """SIGINT, wait; SIGKILL if it does not stop. Returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                return self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
                raise AssertionError(f"{self.log.name}: did not stop on SIGINT within {timeout} s") from None
        return self.p.returncode

    def text(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


def start_sim(cfg: Path, log: Path) -> Proc:
    """Start the simulator and wait until its control endpoint answers ping."""
    sim = Proc("gateway-sim", cfg, log)
    endpoint = load(cfg)["control_endpoint"]
    wait_for(lambda: not sim.alive() or control(endpoint, "ping", 0.3) == "pong", 20, "the simulator")
    assert sim.alive(), sim.text()
    return sim


def start_shard(cfg: Path, log: Path, timeout: float = 30) -> Proc:
    """Start a shard and wait until its API answers /health."""
    shard = Proc("shard", cfg, log)
    port = load(cfg)["api"]["port"]
    wait_for(lambda: not shard.alive() or get(port, "/health")[0] == 200, timeout, "the shard API")
    assert shard.alive(), shard.text()
    return shard


def model_service_config(tmp: Path, shard_cfgs: list[Path], name: str = "model", **extra: Any) -> Path:
    """Write a model-service config subscribed to the shards of `shard_cfgs` (datasets of the first)."""
    shards = [load(c) for c in shard_cfgs]
    doc: dict[str, Any] = {
        "data_dir": str(tmp / f"{name}-data"),
        "datasets_dir": str(Path(shards[0]["data_dir"]) / "datasets"),
        "subscribe": {"endpoints": [s["publish"]["endpoint"] for s in shards]},
        "publish": {"endpoint": f"ipc://{tmp}/{name}.pub"},
        "api": {"port": free_port()},
    }
    for key, value in extra.items():
        doc[key] = {**doc[key], **value} if isinstance(value, dict) and isinstance(doc.get(key), dict) else value
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class ModelProc(Proc):
    """A `model-service serve --config FILE` subprocess."""

    def __init__(self, config: Path, log: Path) -> None:  # noqa: D107 - same as Proc, another program
        self.log = log
        with log.open("ab") as f:
            self.p = subprocess.Popen([sys.executable, "-m", "model_service.cli", "serve", "--config", str(config)],
                                      stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
        self.started = time.monotonic()


def start_model_service(cfg: Path, log: Path, timeout: float = 30) -> ModelProc:
    """Start model-service and wait until its API answers /health."""
    proc = ModelProc(cfg, log)
    port = load(cfg)["api"]["port"]
    wait_for(lambda: not proc.alive() or get(port, "/health")[0] == 200, timeout, "the model-service API")
    assert proc.alive(), proc.text()
    return proc


def control(endpoint: str, request: str, timeout_s: float = 2.0) -> str | None:
    """One request to the simulator's control REP socket (None when unanswered)."""
    import zmq

    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        s.send_string(request)
        if s.poll(int(timeout_s * 1000)):
            return s.recv_string()
        return None
    finally:
        s.close()


def sim_stats(endpoint: str) -> dict[str, int]:
    """The simulator's counters (``stats`` control request)."""
    reply = control(endpoint, "stats") or ""
    return {k: int(v) for k, _, v in (w.partition("=") for w in reply.split()) if v.lstrip("-").isdigit()}


# --- HTTP ------------------------------------------------------------------------------------

def request(port: int, path: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, bytes]:
    """One HTTP request to the API on 127.0.0.1:`port`: (status, body); (0, b"") when refused."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def get(port: int, path: str) -> tuple[int, bytes]:
    """GET `path`: (status, body bytes)."""
    return request(port, path)


def get_json(port: int, path: str) -> tuple[int, Any]:
    """GET `path`: (status, parsed JSON body or None)."""
    status, body = request(port, path)
    return status, (json.loads(body) if body else None)


def post_registry(port: int, text: str | None, token: str | None = None) -> tuple[int, Any]:
    """POST /feature-registry/reload with `text` as YAML (no body when None)."""
    headers = {"Content-Type": "application/yaml"} if text is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    status, body = request(port, "/feature-registry/reload", "POST",
                           None if text is None else text.encode(), headers, timeout=15)
    return status, (json.loads(body) if body else None)


def metric(text: str, name: str) -> float:
    """Sum of every sample line of metric `name` (any labels) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Poller:
    """A thread polling ``GET /features/latest`` for each symbol every `every` s; keeps 200 bodies."""

    def __init__(self, port: int, symbols: list[str], every: float = 0.25) -> None:
        self.port, self.symbols, self.every = port, symbols, every
        self.bodies: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for sym in self.symbols:
                status, body = get_json(self.port, f"/features/latest?symbol={sym}")
                if status == 200:
                    self.bodies.append(body)

    def stop(self) -> list[dict[str, Any]]:
        """Stop polling; return the 200 bodies collected."""
        self._stop.set()
        self._t.join(10)
        return self.bodies


# --- the features.live recorder (another process) ----------------------------------------------

class Recorder:
    """The SUB client subprocess; `messages()` decodes everything it has written so far."""

    def __init__(self, tmp: Path, endpoints: list[str], name: str = "sub") -> None:
        self.out = tmp / f"{name}.bin"
        ready = tmp / f"{name}.ready"
        with (tmp / f"{name}.log").open("ab") as err:
            self.p = subprocess.Popen([sys.executable, "-m", "tests.e2e.harness", "record", str(self.out),
                                       str(ready), *endpoints], cwd=ROOT, stderr=err)
        wait_for(ready.exists, 20, "the SUB recorder")

    def messages(self) -> list[list[bytes]]:
        """Every multipart message recorded so far."""
        return list(read_frames(self.out))

    def vectors(self) -> list:
        """Every message recorded so far, decoded (`api.wire.WireVector`)."""
        from api.wire import decode

        return [decode(m) for m in self.messages()]

    def stop(self) -> None:
        """SIGTERM the recorder and reap it (it flushes every message as it arrives)."""
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(10)


def read_frames(path: Path) -> Iterator[list[bytes]]:
    """The multipart messages of a recorder file (a torn last one is skipped)."""
    data = path.read_bytes() if path.exists() else b""
    i = 0
    while i + 4 <= len(data):
        (nparts,) = struct.unpack_from("<I", data, i)
        j, parts = i + 4, []
        for _ in range(nparts):
            if j + 4 > len(data):
                return
            (n,) = struct.unpack_from("<I", data, j)
            if j + 4 + n > len(data):
                return
            parts.append(data[j + 4:j + 4 + n])
            j += 4 + n
        yield parts
        i = j


def _record(out: str, ready: str, endpoints: list[str]) -> None:
    """SUB to every endpoint; append each message to `out` (flushed at once) until SIGTERM."""
    import zmq

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.subscribe(b"features.live.")
    for ep in endpoints:
        sub.connect(ep)
    Path(ready).touch()
    with open(out, "ab") as f:
        while not stop.is_set():
            if not sub.poll(100):
                continue
            while True:
                try:
                    parts = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                f.write(struct.pack("<I", len(parts)) + b"".join(struct.pack("<I", len(p)) + p for p in parts))
            f.flush()
    sub.close(0)
    ctx.term()


# --- journal and replay ------------------------------------------------------------------------

def journal_records(journal: Path) -> list:
    from journal.reader import JournalReader

    return list(JournalReader(journal).records())


def replay_cli(journal: Path, out: Path) -> dict[tuple[str, int, str], tuple[int, bytes]]:
    """Run ``feature-service replay --journal --out DIR``; rows keyed (registry_hash, ts, symbol)."""
    import pyarrow.parquet as pq

    r = subprocess.run([sys.executable, "-m", "tools.cli", "replay", "--journal", str(journal), "--out", str(out)],
                       cwd=ROOT, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    files = json.loads(r.stdout)["files"]
    rows: dict[tuple[str, int, str], tuple[int, bytes]] = {}
    for h, path in files.items():
        t = pq.read_table(path)
        rows.update(table_rows(t, h))
    return rows


def table_rows(t: Any, registry_hash: str) -> dict[tuple[str, int, str], tuple[int, bytes]]:
    """(hash, ts ns, symbol) → (book_valid, float64 LE bytes of the feature columns) of a vector table."""
    import numpy as np

    names = [n for n in t.column_names if n not in ("ts", "symbol", "book_valid", "registry_hash")]
    ts = t.column("ts").cast("int64").to_numpy()
    syms = t.column("symbol").to_pylist()
    valid = t.column("book_valid").to_numpy()
    values = np.column_stack([t.column(n).to_numpy(zero_copy_only=False).astype("<f8") for n in names]) \
        if names else np.empty((len(ts), 0))
    return {(registry_hash, int(ts[i]), syms[i]): (int(valid[i]), values[i].tobytes()) for i in range(len(ts))}


def vector_key(v: Any) -> tuple[str, int, str]:
    """(registry hash, ts ns, symbol) of a vector: the key of `table_rows`."""
    return (v.registry_hash, int(v.ts_ns), v.symbol)


def vector_value(v: Any) -> tuple[int, bytes]:
    """(book_valid, float64 LE bytes of the values) of a vector: the value of `table_rows`."""
    import numpy as np

    return (int(v.book_valid), np.ascontiguousarray(v.values, dtype="<f8").tobytes())


def check_journal(recs: list) -> None:
    """Seq gap-free from 1, recv_ns non-decreasing, a TICK at every second from the first to the last."""
    from engine.record import Kind

    assert [r.seq for r in recs] == list(range(1, len(recs) + 1)), "journal seq is not gap-free from 1"
    assert all(a.recv_ns <= b.recv_ns for a, b in zip(recs, recs[1:], strict=False)), "recv_ns went backwards"
    ticks = [r.recv_ns for r in recs if r.kind == Kind.TICK]
    assert ticks and ticks == list(range(ticks[0], ticks[-1] + 1, NS)), "a second without a tick"


def unanswered_resyncs(recs: list, settle_ns: int = NS) -> list:
    """RESYNC_REQUESTs (older than `settle_ns` before the last record) with no later snapshot of their book."""
    from engine.record import Kind

    last_snapshot: dict[str, int] = {}
    for r in recs:
        if r.kind == Kind.BOOK_SNAPSHOT:
            last_snapshot[f"orderbook.{r.payload['depth']}.{r.symbol}"] = r.seq
    end = recs[-1].recv_ns - settle_ns
    return [r for r in recs if r.kind == Kind.RESYNC_REQUEST and r.recv_ns < end
            and last_snapshot.get(r.payload["topic"], 0) < r.seq]


def fold_steps(journal: Path) -> list[tuple[Any, list, bool | None]]:
    """Fold the journal one record at a time: (record, its notices, its symbol's book valid after it)."""
    from engine.replay import Fold
    from journal.reader import JournalReader
    from tools.offline.replay import open_engine

    fold = Fold(open_engine(str(journal)))
    out = []
    for rec in JournalReader(journal).records():
        notices = fold.batch((rec,)).notices
        state = fold.engine.states.get(rec.symbol) if rec.symbol else None
        out.append((rec, notices, None if state is None else bool(state.book_valid())))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["record"]:
        _record(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(f"usage: python -m tests.e2e.harness record OUT READY ENDPOINT... (got {sys.argv[1:]})")
    os._exit(0)
