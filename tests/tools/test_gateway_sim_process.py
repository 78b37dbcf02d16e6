"""`feature-service gateway-sim` as a process: bad endpoints and busy ports end it at once with one
line naming the endpoint and the OS reason; SIGTERM and SIGINT stop it cleanly (exit 0)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
import zmq

#: A failed start must end well within this (the brief: about a second; slack for a loaded box).
START_FAIL_S = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback TCP port held by a listening socket for the test's duration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _write(tmp_path: Path, **cfg) -> Path:
    base = {"endpoint": f"ipc://{tmp_path}/pub", "control_endpoint": f"ipc://{tmp_path}/ctl",
            "wait_for_subscriber": False, "linger_ms": 0,
            "synthetic": {"symbols": ["SOLUSDT"], "depth": 50, "rate_hz": 500}}
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({**base, **cfg}))
    return path


def _cmd(path: Path) -> list[str]:
    return [sys.executable, "-m", "tools.cli", "gateway-sim", "--config", str(path)]


def _run_failing(path: Path) -> tuple[int, str, float]:
    t0 = time.monotonic()
    p = subprocess.run(_cmd(path), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr, time.monotonic() - t0


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and " INFO " not in ln]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("key", ["endpoint", "control_endpoint", "http_endpoint"])
def test_port_in_use_exits_1_with_one_line(tmp_path: Path, busy_port: int, key: str) -> None:
    value = f"127.0.0.1:{busy_port}" if key == "http_endpoint" else f"tcp://127.0.0.1:{busy_port}"
    code, err, took = _run_failing(_write(tmp_path, **{key: value}))
    line = _one_line(err)
    assert code == 1 and key in line and value in line and "Address already in use" in line, err
    assert took < START_FAIL_S, f"took {took:.2f} s"


@pytest.mark.timeout(60)
def test_unbindable_ipc_path_exits_1_naming_it(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/no/such/dir/pub"
    code, err, took = _run_failing(_write(tmp_path, endpoint=endpoint))
    line = _one_line(err)
    assert code == 1 and endpoint in line and "No such file or directory" in line, err
    assert took < START_FAIL_S


@pytest.mark.timeout(60)
@pytest.mark.parametrize("key, value", [
    ("endpoint", "tcp://nonsense"),
    ("endpoint", "tcp://127.0.0.1:99999"),
    ("control_endpoint", "tcp://0.0.0.0:5557"),
    ("http_endpoint", "0.0.0.0:8080"),
    ("http_endpoint", "127.0.0.1:http"),
])
def test_bad_endpoint_is_a_config_error_exit_2(tmp_path: Path, key: str, value: str) -> None:
    code, err, took = _run_failing(_write(tmp_path, **{key: value}))
    line = _one_line(err)
    assert code == 2 and f"{key}: {value!r}" in line, err
    assert took < START_FAIL_S


def _ping(endpoint: str, timeout_s: float = 10.0) -> None:
    """Wait until the simulator's control endpoint answers ``ping``."""
    ctx = zmq.Context()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.LINGER, 0)
            req.setsockopt(zmq.RCVTIMEO, 300)
            req.connect(endpoint)
            try:
                req.send(b"ping")
                if req.recv() == b"pong":
                    return
            except zmq.Again:
                pass
            finally:
                req.close()
        raise AssertionError(f"no pong from {endpoint}")
    finally:
        ctx.term()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    path = _write(tmp_path, http_endpoint=f"127.0.0.1:{_free_port()}")
    p = subprocess.Popen(_cmd(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _ping(f"ipc://{tmp_path}/ctl")
        time.sleep(0.2)
        p.send_signal(sig)
        code = p.wait(10)
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
    assert code == 0 and "Traceback" not in err and "status=stopped" in err, err


@pytest.mark.timeout(60)
def test_missing_recording_exits_1_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.frames.jsonl"
    path = _write(tmp_path, source="recording", recording={"files": [str(missing)], "speed": 0})
    code, err, took = _run_failing(path)
    line = _one_line(err)
    assert code == 1 and str(missing) in line and "No such file or directory" in line, err
    assert took < START_FAIL_S
