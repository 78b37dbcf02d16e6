"""The simulated ws-gateway: XPUB of Bybit frames on gateway topics, a REP control endpoint and
an optional HTTP snapshot endpoint shaped like Bybit's REST orderbook (`tools.sim.gateway.http`).

Usage in process: ``sim = GatewaySim(cfg); sim.start(); ...; sim.stop()`` (or ``run(stop)`` on the
caller's thread). The XPUB socket behaves like PUB for subscribers but lets the simulator wait until
one has subscribed to every topic before it publishes, so nothing is lost to the slow-joiner race.

One lock guards the synthetic market: the publishing loop holds it while it makes a frame and sends
what the fault injector turns it into, and the HTTP thread holds it while it copies a book, so a REST
snapshot's ``u`` is exactly the last ``u`` made for that book and later deltas continue at ``u + 1``.
A socket that cannot be bound raises `SimError` naming the endpoint and the OS reason; every socket
is closed (linger 0) before the context is terminated, so a failed start never hangs.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import zmq

from tools.sim.gateway.config import SimConfig
from tools.sim.gateway.faults import FaultInjector
from tools.sim.gateway.playback import playback
from tools.sim.gateway.rest import RestServer
from tools.sim.gateway.store_source import StoreSource, open_store, store_playback
from tools.sim.gateway.synthetic import Frame, SyntheticMarket

log = logging.getLogger("gateway_sim")

#: Frames published between two checks of the control socket when running flat out.
SERVICE_EVERY = 256
#: A paced frame due within this many seconds is sent now (the poll clock has 1 ms resolution;
#: busy-waiting for the exact instant would burn a core at 10 000 msgs/s).
EARLY_S = 0.001


class SimError(RuntimeError):
    """The simulator cannot run: a socket could not be bound or a recording could not be read (the
    message names the endpoint or file and the OS reason; the CLI prints it as one line, exit 1)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GatewaySim:
    """A ws-gateway stand-in publishing synthetic or recorded frames, with faults and control."""

    def __init__(self, cfg: SimConfig, frames: Sequence[Frame] | None = None) -> None:
        self.cfg = cfg
        self._frames = frames
        self.market: SyntheticMarket | None = None
        if cfg.source == "synthetic" and frames is None:
            self.market = SyntheticMarket(cfg.synthetic, cfg.topics, _now_ms())
            if cfg.synthetic.pregenerate:
                self._frames = [self.market.next(_now_ms()) for _ in range(cfg.synthetic.messages)]
        self.faults = FaultInjector(cfg.faults, self.market, cfg.synthetic.depth)
        self.counters: Counter[str] = Counter()
        self.status = "new"
        self.error: BaseException | None = None
        self.ready = threading.Event()
        #: Guards the market between the publishing loop (make + send) and the HTTP thread (copy).
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: list[zmq.Socket] = []
        self._pub: zmq.Socket | None = None
        self._rep: zmq.Socket | None = None
        self._rest: RestServer | None = None
        self._store: StoreSource | None = None  # source "store": checked before the sockets bind
        self._poller = zmq.Poller()
        self._subscribed: set[bytes] = set()

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> GatewaySim:
        """Run the simulator on a daemon thread; returns once its sockets are bound.

        Raises `SimError` (naming the endpoint and the OS reason) when a socket cannot be bound.
        """
        self._thread = threading.Thread(target=self._run_thread, name="gateway-sim", daemon=True)
        self._thread.start()
        self.ready.wait(10)
        if self.status == "error":
            if isinstance(self.error, SimError):
                raise self.error
            raise SimError(f"gateway simulator failed to start: {self.error}")
        return self

    def _run_thread(self) -> None:
        """`run` on the thread of `start`; errors are kept in `error`, not raised into the thread."""
        try:
            self.run(self._stop)
        except SimError as e:  # kept in status/error; start() raises it when it happens at bind
            log.error("gateway_sim failed: %s", e)
        except BaseException:  # noqa: BLE001 - reported through status/error and the log
            log.exception("gateway_sim failed")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread started by `start` and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread started by `start` to finish on its own (source exhausted)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, stop: threading.Event) -> str:
        """Publish until the source ends, `stop` is set or a kill fault fires; return the status.

        Raises `SimError` when a socket cannot be bound (after closing everything it opened).
        """
        ctx = zmq.Context()
        try:
            self._open(ctx)
            self.ready.set()
            self.status = self._serve(stop)
        except BaseException as e:
            self.status, self.error = "error", e
            raise
        finally:
            self._close(ctx)
            self.ready.set()
        log.info("gateway_sim stopped status=%s %s", self.status, _kv(self.all_counters()))
        return self.status

    def _open(self, ctx: zmq.Context) -> None:
        """Bind the XPUB, the control REP and the HTTP endpoint; `SimError` names a failing one."""
        cfg = self.cfg
        if cfg.source == "store" and self._frames is None:
            try:
                self._store = open_store(cfg.store)
            except (OSError, ValueError) as e:
                raise SimError(f"cannot play {e}") from None
        self._pub = self._bind(ctx, zmq.XPUB, "endpoint", cfg.endpoint)
        self._poller.register(self._pub, zmq.POLLIN)
        if cfg.control_endpoint:
            self._rep = self._bind(ctx, zmq.REP, "control_endpoint", cfg.control_endpoint)
            self._poller.register(self._rep, zmq.POLLIN)
        if cfg.http_endpoint:
            try:
                self._rest = RestServer(self, cfg.http_endpoint, cfg.faults)
            except OSError as e:
                raise SimError(f"cannot bind http_endpoint {cfg.http_endpoint}: "
                               f"{e.strerror or e}") from None
        log.info("gateway_sim bound endpoint=%s control=%s http=%s source=%s", cfg.endpoint,
                 cfg.control_endpoint or "-", cfg.http_endpoint or "-", cfg.source)

    def _bind(self, ctx: zmq.Context, kind: int, key: str, endpoint: str) -> zmq.Socket:
        """Return a socket of `kind` bound to `endpoint` (kept for `_close` even when binding fails)."""
        sock = ctx.socket(kind)
        self._sockets.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        if kind == zmq.XPUB:
            sock.setsockopt(zmq.SNDHWM, self.cfg.sndhwm)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as e:
            raise SimError(f"cannot bind {key} {endpoint}: {zmq.strerror(e.errno)}") from None
        return sock

    def _close(self, ctx: zmq.Context) -> None:
        """Stop the HTTP server and close every socket before terminating the context (never hangs
        on an unclosed socket; flushes unsent frames for up to `linger_ms` after a clean run)."""
        if self._rest is not None:
            self._rest.close()
        clean = self.status in ("done", "stopped")
        for sock in self._sockets:
            sock.close(linger=self.cfg.linger_ms if clean and sock is self._pub else 0)
        ctx.term()

    # --- main loop --------------------------------------------------------------------------
    def _serve(self, stop: threading.Event) -> str:
        if self.cfg.wait_for_subscriber and not self._wait_for_subscriber(stop):
            return "stopped"
        if self._frames is not None and self.cfg.synthetic.rate_hz == 0 and not self.faults.active \
                and not self.cfg.faults.kill_after:
            return self._blast(self._frames, stop)
        next_log = time.monotonic() + self.cfg.log_interval_s
        for make in self._source(stop):
            pause = self.faults.pause()
            if pause is not None:
                self._sleep_until(time.monotonic() + pause.ms / 1000, stop)
            with self.lock:  # make and send as one step: a REST snapshot sees all or none of it
                if self._emit(make()):
                    log.warning("gateway_sim kill fault published=%d", self.counters["published"])
                    return "killed"
            if time.monotonic() >= next_log:
                log.info("gateway_sim counters %s", _kv(self.all_counters()))
                next_log = time.monotonic() + self.cfg.log_interval_s
        if stop.is_set():
            return "stopped"
        with self.lock:
            for item in self.faults.flush():
                self._publish(item)
        return "done"

    def _emit(self, frame: Frame) -> bool:
        """Publish what the faults make of `frame`; return True once the kill fault is due."""
        kill_after = self.cfg.faults.kill_after
        for item in self.faults.apply(frame, _now_ms()):
            self._publish(item)
            if kill_after and self.counters["published"] >= kill_after:
                return True
        return False

    def _blast(self, frames: Sequence[Frame], stop: threading.Event) -> str:
        """Publish pre-generated frames flat out (no faults, no pacing): the benchmark's sender."""
        assert self._pub is not None
        send = self._pub.send_multipart
        for i in range(0, len(frames), SERVICE_EVERY):
            if stop.is_set():
                return "stopped"
            self._service(0)
            chunk = frames[i:i + SERVICE_EVERY]
            for f in chunk:
                send((f.topic, f.payload))
            self.counters["published"] += len(chunk)
        return "done"

    def _publish(self, frame: Frame) -> None:
        assert self._pub is not None
        self._pub.send(frame.topic, zmq.SNDMORE)
        self._pub.send(frame.payload)
        self.counters["published"] += 1
        self.counters[frame.kind] += 1

    def _source(self, stop: threading.Event) -> Iterator[Callable[[], Frame]]:
        """Yield a maker per frame once its time has come (paced here so a resubscribe snapshot
        served while waiting is never overtaken by an older delta); the caller makes the frame."""
        t0 = time.monotonic()
        for i, (due, make) in enumerate(self._schedule()):
            if due is not None and t0 + due - time.monotonic() > EARLY_S:
                self._sleep_until(t0 + due, stop)
            elif i % SERVICE_EVERY == 0:
                self._service(0)
            if stop.is_set():
                return
            yield make

    def _schedule(self) -> Iterator[tuple[float | None, Callable[[], Frame]]]:
        """Yield ``(due_s, make_frame)``: seconds from start (None: now) and how to make the frame."""
        cfg = self.cfg
        if self._store is not None:
            try:
                for due, frame in store_playback(cfg.store, cfg.topics, self._store):
                    yield due, _const(frame)
            except (OSError, ValueError) as e:  # a store file gone or unreadable mid-play: end with one line
                raise SimError(f"cannot play store: {e}") from None
            return
        if cfg.source == "recording" and self._frames is None:
            try:
                for due, frame in playback(cfg.recording, cfg.topics):
                    yield due, _const(frame)
            except (OSError, ValueError) as e:  # a missing or unreadable capture: end with one line
                where = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else str(e)
                raise SimError(f"cannot play recording.files: {where}") from None
            return
        rate = cfg.synthetic.rate_hz
        if self._frames is not None:
            makers: Iterator[Callable[[], Frame]] = (_const(f) for f in self._frames)
        else:
            market = self.market
            assert market is not None
            limit = cfg.synthetic.messages or None
            makers = (lambda: market.next(_now_ms()) for _ in itertools.islice(itertools.count(), limit))
        for i, make in enumerate(makers):
            yield (i / rate if rate > 0 else None), make

    def _wait_for_subscriber(self, stop: threading.Event) -> bool:
        """Block until every configured topic is subscribed (or stop / timeout); return success."""
        wanted = {t.encode() for t in self.cfg.topics.names()}
        deadline = time.monotonic() + self.cfg.wait_timeout_ms / 1000 if self.cfg.wait_timeout_ms else None
        while not wanted <= self._subscribed:
            if stop.is_set():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("gateway_sim no subscriber after %d ms; publishing anyway", self.cfg.wait_timeout_ms)
                return True
            self._service(50)
        log.info("gateway_sim subscriber ready topics=%d", len(wanted))
        return True

    def _sleep_until(self, when: float, stop: threading.Event) -> None:
        """Wait until about monotonic time `when` (at most `EARLY_S` early), answering control
        requests meanwhile."""
        while not stop.is_set():
            left = when - time.monotonic()
            if left <= EARLY_S:
                return
            self._service(max(1, int(min(left, 0.05) * 1000)))

    # --- REST snapshots ---------------------------------------------------------------------
    def rest_book(self, symbol: str, limit: int) -> dict | None:
        """Return `symbol`'s current book as a REST ``result`` (``None``: unknown symbol or no book)."""
        if self.market is None:
            return None
        with self.lock:
            return self.market.rest_state(symbol, limit)

    def all_counters(self) -> Counter[str]:
        """Return the publishing counters plus the HTTP endpoint's (a copy, safe to iterate)."""
        out = Counter(self.counters)
        if self._rest is not None:
            out.update(self._rest.counter_copy())
        return out

    # --- control and subscriptions ----------------------------------------------------------
    def _service(self, timeout_ms: float) -> None:
        """Read subscription messages and answer control requests, waiting up to `timeout_ms`."""
        events = dict(self._poller.poll(timeout_ms))
        if self._pub in events:
            self._read_subscriptions()
        if self._rep is not None and self._rep in events:
            request = self._rep.recv()
            self._rep.send(self.handle_control(request).encode())

    def _read_subscriptions(self) -> None:
        assert self._pub is not None
        while True:
            try:
                msg = self._pub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if msg[:1] == b"\x01":
                self._subscribed.add(msg[1:])
                self.counters["subscribe"] += 1
            elif msg[:1] == b"\x00":
                self._subscribed.discard(msg[1:])
                self.counters["unsubscribe"] += 1

    def handle_control(self, request: bytes) -> str:
        """Answer one control request: ``ping``, ``stats``, ``resubscribe SYMBOL DEPTH`` or
        ``http_stall MS [EVERY]`` (change the HTTP stall fault at run time; MS 0 ends it)."""
        words = request.decode("utf-8", "replace").replace("/", " ").split()
        self.counters["control"] += 1
        if words == ["ping"]:
            return "pong"
        if words == ["stats"]:
            return _kv(self.all_counters())
        if len(words) == 3 and words[0] == "resubscribe" and words[2].isdigit():
            return self._resubscribe(words[1], int(words[2]))
        if words[:1] == ["http_stall"] and len(words) in (2, 3):
            return self._set_http_stall(words[1:])
        log.warning("gateway_sim bad control request=%r", request[:100])
        return "error bad request"

    def _resubscribe(self, symbol: str, depth: int) -> str:
        """Publish a fresh snapshot of the current book (new ``u`` continuing the sequence)."""
        if self.market is None:
            return "error no live book (recording source)"
        with self.lock:
            frame = self.market.snapshot(symbol, depth, _now_ms())
            if frame is None:
                return f"error unknown book {symbol} {depth}"
            self._publish(frame)
            self.counters["resubscribe"] += 1
        log.info("gateway_sim resubscribe symbol=%s depth=%d", symbol, depth)
        return "ok"

    def _set_http_stall(self, args: list[str]) -> str:
        """Set the HTTP stall fault from ``MS [EVERY]`` (MS -1: never answer; 0: off)."""
        if self._rest is None:
            return "error no http_endpoint"
        try:
            ms, every = int(args[0]), int(args[1]) if len(args) > 1 else 1
        except ValueError:
            return "error http_stall MS [EVERY] takes integers"
        if not -1 <= ms <= 600_000 or every < 1:
            return "error http_stall MS must be within [-1, 600000] and EVERY >= 1"
        self._rest.set_stall(ms, every)
        log.info("gateway_sim http_stall ms=%d every=%d", ms, every)
        return "ok"


def _const(frame: Frame) -> Callable[[], Frame]:
    """Return a maker of an already built frame."""
    return lambda: frame


def _kv(counters: Counter[str]) -> str:
    """Return counters as ``key=value`` pairs (structured log lines)."""
    return " ".join(f"{k}={v}" for k, v in sorted(counters.items()))
