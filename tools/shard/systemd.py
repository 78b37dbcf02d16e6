"""sd_notify client: tell systemd we are ready, stopping or alive, so a hung event loop is restarted.

The protocol is one datagram of ``KEY=VALUE`` lines to the unix socket named by ``$NOTIFY_SOCKET``
(a leading ``@`` means Linux's abstract namespace). Outside systemd the variable is unset and every
call is a no-op. A failed send is counted, never raised: the shard must not die because systemd or
journald hiccups. The watchdog interval comes from ``$WATCHDOG_USEC`` (for us only when
``$WATCHDOG_PID`` is unset or names our pid); ping at half of it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping


class Notifier:
    """Sends sd_notify datagrams to one address; a notifier without an address does nothing."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        #: Socket address as given in ``$NOTIFY_SOCKET`` (``/path`` or ``@abstract``), or None.
        self.address = address
        self._watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        #: Datagrams handed to the kernel, and sends that failed (counted, never raised).
        self.sent = 0
        self.errors = 0
        self.last_error = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, pid: int | None = None) -> Notifier:
        """Return a notifier for ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` (disabled when absent)."""
        address = environ.get("NOTIFY_SOCKET", "")
        if not address.startswith(("/", "@")) or len(address) < 2:
            address = ""  # unset, empty, or a transport we do not speak (vsock:)
        return cls(address or None, _watchdog_usec(environ, os.getpid() if pid is None else pid))

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """The watchdog timeout systemd enforces, in seconds; None when the watchdog is off."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 1e6

    @property
    def watchdog_ping_s(self) -> float | None:
        """How often to ping: half the timeout, as sd_watchdog_enabled(3) recommends."""
        interval = self.watchdog_interval_s
        return None if interval is None else interval / 2

    def ready(self, status: str = "") -> bool:
        """Report start-up finished (``READY=1``), optionally with a status line."""
        return self.notify("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        """Set the one-line status ``systemctl status`` shows."""
        return self.notify(*_status(text))

    def watchdog(self) -> bool:
        """Ping the watchdog (``WATCHDOG=1``)."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """Report a clean stop has begun (``STOPPING=1``)."""
        return self.notify("STOPPING=1")

    def reloading(self) -> bool:
        """Report a reload has begun (``RELOADING=1`` with the CLOCK_MONOTONIC stamp systemd wants)."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (``EXTEND_TIMEOUT_USEC``), e.g. during a long warm-up."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * 1e6))}")

    def notify(self, *lines: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines; return True when the kernel took it."""
        if self.address is None or not lines:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never stall the event loop on a full socket
            self._sock.sendto("\n".join(lines).encode(), _sockaddr(self.address))
        except OSError as e:
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        """Close the socket (a later send opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Heartbeat:
    """Proof of progress: the loop calls `beat()` each turn; calling the object says it beat recently."""

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_age_s <= 0:
            raise ValueError("max_age_s: must be > 0")
        self.max_age_s = max_age_s
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        """Record that the watched loop just made progress."""
        self._last = self._clock()

    def age_s(self) -> float:
        """Seconds since the last beat."""
        return self._clock() - self._last

    def __call__(self) -> bool:
        """True when the last beat is at most ``max_age_s`` old."""
        return self.age_s() <= self.max_age_s


async def watchdog_task(notifier: Notifier, is_alive: Callable[[], bool]) -> None:
    """Ping the watchdog every half interval while `is_alive()` holds; return at once when it is off.

    A loop that stops making progress stops the pings, so systemd kills and restarts the shard
    after ``WatchdogSec``; pings resume by themselves if progress does.
    """
    period = notifier.watchdog_ping_s
    if period is None or not notifier.enabled:
        return
    while True:
        if is_alive():
            notifier.watchdog()
        await asyncio.sleep(period)


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    """Parse ``$WATCHDOG_USEC`` (positive int) for `pid`, honouring ``$WATCHDOG_PID``."""
    try:
        owner = environ.get("WATCHDOG_PID", "")
        if owner and int(owner) != pid:
            return None
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


def _status(text: str) -> tuple[str, ...]:
    """One ``STATUS=`` line (newlines would start new keys, so they become spaces), or none."""
    return (f"STATUS={' '.join(text.splitlines())}",) if text else ()


def _sockaddr(address: str) -> str | bytes:
    """The sendto() address: a path, or a NUL-prefixed name for the abstract namespace."""
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address
