"""sd_notify client against a real unix datagram socket (a path one and an abstract one)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.shard.systemd import Heartbeat, Notifier, watchdog_task


def _bind(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)
    return sock


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd, and its $NOTIFY_SOCKET value."""
    path = tmp_path / "notify.sock"
    short = None
    if len(str(path)) > 100:  # sun_path holds 108 bytes
        short = tempfile.mkdtemp(prefix="fsn", dir="/tmp")
        path = Path(short) / "n.sock"
    sock = _bind(str(path))
    yield sock, str(path)
    sock.close()
    path.unlink(missing_ok=True)
    if short:
        os.rmdir(short)


def _pending(sock: socket.socket) -> list[bytes]:
    """Every datagram already queued on `sock`."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096))
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(2.0)


def test_each_message_arrives_as_one_exact_datagram(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready()
    assert sock.recv(4096) == b"READY=1"
    assert n.ready("live: 3 symbols")
    assert sock.recv(4096) == b"READY=1\nSTATUS=live: 3 symbols"
    assert n.status("warming up\n12% done")
    assert sock.recv(4096) == b"STATUS=warming up 12% done"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    assert n.extend_timeout(2.5)
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=2500000"
    assert (n.sent, n.errors) == (6, 0)
    n.close()


def test_reloading_carries_the_monotonic_clock_in_microseconds(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": path})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = sock.recv(4096).decode().split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC" and before <= int(value) <= after
    n.close()


def test_abstract_namespace_address() -> None:
    name = f"fs-notify-test-{uuid.uuid4().hex}"
    sock = _bind(b"\0" + name.encode())
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.ready("up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"
        assert n.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        n.close()
    finally:
        sock.close()


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1234"},
                                 {"NOTIFY_SOCKET": "@"}])
def test_without_a_socket_every_call_is_a_no_op(env: dict[str, str]) -> None:
    n = Notifier.from_env(env)
    assert not n.enabled
    assert not n.ready("x") and not n.watchdog() and not n.stopping() and not n.status("y")
    assert (n.sent, n.errors) == (0, 0)


def test_send_errors_are_counted_never_raised(tmp_path: Path) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert n.enabled
    assert not n.ready()
    assert not n.watchdog()
    assert (n.sent, n.errors) == (0, 2)
    assert "FileNotFoundError" in n.last_error or "ConnectionRefusedError" in n.last_error
    n.close()


def test_a_receiver_that_went_away_is_counted_and_a_new_one_is_reached(
        listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert n.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
    sock.close()
    os.unlink(path)
    assert not n.watchdog()
    assert n.errors == 1
    again = _bind(path)  # systemd re-executed: same path, new socket
    try:
        assert n.watchdog()
        assert again.recv(4096) == b"WATCHDOG=1"
    finally:
        again.close()
        n.close()


@pytest.mark.parametrize("env,interval", [
    ({"WATCHDOG_USEC": "10000000"}, 10.0),
    ({"WATCHDOG_USEC": "250000", "WATCHDOG_PID": "4242"}, 0.25),
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "4243"}, None),  # another process's watchdog
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "x"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "-5"}, None),
    ({"WATCHDOG_USEC": "ten"}, None),
    ({"WATCHDOG_USEC": ""}, None),
    ({}, None),
])
def test_watchdog_interval_from_the_environment(env: dict[str, str], interval: float | None) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": "/run/systemd/notify", **env}, pid=4242)
    assert n.watchdog_interval_s == interval
    assert n.watchdog_ping_s == (None if interval is None else interval / 2)


def test_watchdog_pid_defaults_to_our_own_pid() -> None:
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(env).watchdog_interval_s == 2.0
    env["WATCHDOG_PID"] = str(os.getpid() + 1)
    assert Notifier.from_env(env).watchdog_interval_s is None


def test_heartbeat_says_alive_only_while_beats_are_recent() -> None:
    now = [100.0]
    hb = Heartbeat(2.0, clock=lambda: now[0])
    assert hb()
    now[0] = 102.0
    assert hb() and hb.age_s() == 2.0
    now[0] = 102.5
    assert not hb()
    hb.beat()
    assert hb() and hb.age_s() == 0.0
    with pytest.raises(ValueError, match="max_age_s"):
        Heartbeat(0)


def test_watchdog_task_pings_while_the_loop_progresses_and_stops_when_it_stalls(
        listener: tuple[socket.socket, str]) -> None:
    """Pings every interval/2 while a worker beats; a stuck worker stops them; recovery resumes them."""
    sock, path = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})  # ping every 50 ms
    hb = Heartbeat(0.08)
    phases: dict[str, list[bytes]] = {}

    async def main() -> None:
        stall = asyncio.Event()
        task = asyncio.create_task(watchdog_task(n, hb))

        async def worker() -> None:
            while True:
                if not stall.is_set():
                    hb.beat()
                await asyncio.sleep(0.01)

        w = asyncio.create_task(worker())
        await asyncio.sleep(0.5)
        phases["live"] = _pending(sock)
        stall.set()
        await asyncio.sleep(0.15)  # the last beat ages past 80 ms
        _pending(sock)
        await asyncio.sleep(0.5)
        phases["stalled"] = _pending(sock)
        stall.clear()
        await asyncio.sleep(0.3)
        phases["recovered"] = _pending(sock)
        for t in (task, w):
            t.cancel()
        await asyncio.gather(task, w, return_exceptions=True)

    asyncio.run(main())
    assert set(phases["live"]) == {b"WATCHDOG=1"} and 6 <= len(phases["live"]) <= 12
    assert phases["stalled"] == []
    assert len(phases["recovered"]) >= 3
    n.close()


def test_watchdog_task_returns_at_once_when_the_watchdog_is_off() -> None:
    async def main() -> None:
        await asyncio.wait_for(watchdog_task(Notifier.from_env({}), lambda: True), 1.0)
        no_interval = Notifier.from_env({"NOTIFY_SOCKET": "/run/systemd/notify"})
        await asyncio.wait_for(watchdog_task(no_interval, lambda: True), 1.0)

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("systemd-notify") is None, reason="systemd-notify is not installed here")
@pytest.mark.parametrize("address_kind", ["path", "abstract"])
def test_datagrams_match_systemd_notify_byte_for_byte(listener: tuple[socket.socket, str],
                                                      address_kind: str) -> None:
    """systemd's own client is the reference: the same message gives the same datagram."""
    sock, address = listener
    if address_kind == "abstract":
        address = f"@fs-notify-ref-{uuid.uuid4().hex}"
        sock = _bind(b"\0" + address[1:].encode())
    n = Notifier.from_env({"NOTIFY_SOCKET": address})
    cases = [(["--ready", "--status=live: 3 symbols"], lambda: n.ready("live: 3 symbols")),
             (["--ready"], n.ready), (["--status=warming up"], lambda: n.status("warming up")),
             (["WATCHDOG=1"], n.watchdog), (["STOPPING=1"], n.stopping)]
    try:
        for args, ours in cases:
            subprocess.run(["systemd-notify", "--no-block", *args], env={"NOTIFY_SOCKET": address},
                           check=True, timeout=10)
            reference = sock.recv(4096)
            assert ours()
            assert sock.recv(4096) == reference, args
    finally:
        n.close()
        if address_kind == "abstract":
            sock.close()
