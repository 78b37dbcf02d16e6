"""The shard process's composition root: journal → engine → outputs in ONE asyncio loop.

Start-up and crash recovery are one path (crash-only): open the journal (exclusive lock, torn tail
cut), restore the newest readable checkpoint and fold only the journal after it, journal a SESSION
record (category, symbols, registry) and the restart-as-reconnect GATEWAY_DOWN, then loop:

    bridge.next_batch()  →  writer.append (append before apply)  →  fold.batch (the engine)
        →  vectors: features.live PUB, latest per symbol, feature log
        →  notices: logs and metrics; books needing a snapshot → resync requests (journaled)

The engine never calls back: it returns notices, and this loop carries out what they ask. No second
thread touches engine state (the feature log and checkpoint writes get immutable bytes/vectors).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog
import zmq
import zmq.asyncio

from api.metrics import ShardMetrics
from api.publisher import Publisher
from api.view import ReloadResult
from engine.engine import Engine, Notice, Vector
from engine.record import NS_PER_S, Kind, Record, session
from engine.replay import Fold
from gateway_bridge.bridge import Bridge
from gateway_bridge.resync import Resyncer, source_for
from journal.checkpoints import CheckpointStore
from journal.feature_log import FeatureLog
from journal.reader import JournalReader
from journal.writer import JournalWriter
from registry import Registry, load_registry_text
from registry.packaged import default_registry
from tools.offline.replay import open_engine
from tools.shard.config import ShardConfig
from tools.shard.events import ShardEvents
from tools.shard.gcpolicy import GcPolicy
from tools.shard.systemd import Heartbeat

log = structlog.get_logger("feature_service.shard")


class ShardNode:
    """One shard: see the module docstring. Build it, then run it as a background of the API app."""

    def __init__(self, cfg: ShardConfig, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.cfg = cfg
        self.clock_ns = clock_ns
        self.metrics = ShardMetrics()
        self.events = ShardEvents(self.metrics)
        self.latest: dict[str, Vector] = {}
        self.configured = self.read_registry(None)  # the configured file (validated before anything opens)
        self.writer = JournalWriter(cfg.journal, fsync=self._timed_fsync)
        self.checkpoints = CheckpointStore(cfg.data / "checkpoints", keep=cfg.checkpoint.keep)
        self.last_checkpoint: tuple[int, int] | None = None  # (seq, wall ns)
        self.journal_bytes = journal_bytes(Path(cfg.journal.dir))
        self.fold = Fold(self._warm_engine())
        self.registry = self._registry_in_force()
        self.feature_log = FeatureLog(cfg.data / "feature_log", cfg.feature_log.flush_interval_s) \
            if cfg.feature_log.enabled else None
        self.actx = zmq.asyncio.Context()
        self.ctx = zmq.Context()
        self.bridge = Bridge(cfg.gateway, cfg.ticks, cfg.shard.symbols, last_recv_ns=self.writer.last_recv_ns,
                             ctx=self.actx, clock_ns=clock_ns)
        self.publisher: Publisher | None = None
        source = source_for(cfg.gateway, self.actx, category=cfg.shard.category)
        self.via = source.via if source is not None else "none"
        self.resyncer = Resyncer(source, cfg.gateway.resync, on_snapshot=self.bridge.rest_snapshot,
                                 on_event=self.events.resync_event) if source is not None else None
        #: Beaten every loop turn (at least once a second: the loop wakes at each tick boundary);
        #: the systemd watchdog is fed only while it beats.
        self.heartbeat: Heartbeat | None = None
        self.stopped = asyncio.Event()
        self.exit_code = 0
        #: Records waited for (by identity) until the loop has journaled them (registry reloads).
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._disconnects = 0  # gateway connections ZMQ dropped (MAXMSGSIZE overrun, peer gone)
        self.gc = GcPolicy()
        self._next_checkpoint = time.monotonic() + cfg.checkpoint.interval_s

    # --- start: restore, then fold the journal tail ---------------------------------------------
    def _warm_engine(self) -> Engine:
        """The engine as of the journal's last record: newest good checkpoint + the records after it."""
        last_seq = self.writer.next_seq - 1
        ckpt = self.checkpoints.load_newest(max_seq=last_seq)
        engine, from_seq = None, 1
        if ckpt is not None:
            try:
                engine, from_seq = Engine.restore(ckpt.data), ckpt.seq + 1
                self.last_checkpoint = (ckpt.seq, int(ckpt.meta.get("created_ns", 0)))
            except (ValueError, KeyError, TypeError) as e:
                log.error("checkpoint_unusable", file=str(ckpt.path), error=str(e), fallback="whole journal")
        if engine is None:
            engine = open_engine(self.cfg.journal.dir)
        t0 = time.perf_counter()
        fold = Fold(engine)
        reader = JournalReader(self.cfg.journal.dir)
        batch: list[Record] = []
        for rec in reader.records(from_seq=from_seq):
            batch.append(rec)
            if len(batch) >= 4096:
                fold.batch(batch)
                batch.clear()
        fold.batch(batch)
        log.info("engine_warm", from_checkpoint=ckpt.seq if ckpt is not None and from_seq > 1 else None,
                 records=fold.records, seconds=round(time.perf_counter() - t0, 3), next_seq=self.writer.next_seq)
        return engine

    def _registry_in_force(self) -> Registry:
        """The registry this start journals: the one in force, unless the configured file changed.

        A restart must not silently undo a reload through the API, nor ignore an edited file: the
        last SESSION records the file's hash at its start, and only a different file now wins.
        """
        engine = self.fold.engine
        last = engine.session
        if last is None or last.get("configured") != self.configured.content_hash:
            return self.configured
        return engine.pending_registry or engine.registry

    def _session(self) -> Record:
        """The SESSION record: what this run's engine must know, journaled at every start."""
        s, reg = self.cfg.shard, self.registry
        return session(0, s.name, s.category, s.symbols, reg.canonical, reg.content_hash,
                       self.configured.content_hash)

    async def start(self) -> None:
        """Open the sockets, journal the restart and the session, start the loop and the resync task."""
        # Plain PUB semantics: a stuck subscriber loses its own vectors, never anyone else's.
        self.publisher = Publisher(self.cfg.publish.endpoint, self.ctx, self.cfg.publish.sndhwm,
                                   nodrop=False)
        await self.bridge.open()
        self.commit(self.bridge.restart() + self.bridge.ingest.control([self._session()]))
        self._tasks = [asyncio.create_task(self._loop(), name="shard-loop")]
        if self.resyncer is not None:
            self._tasks.append(asyncio.create_task(self.resyncer.run(), name="resync"))
        self.gc.start()
        log.info("shard_started", shard=self.cfg.shard.name, symbols=list(self.cfg.shard.symbols),
                 registry=self.registry.content_hash[:12], journal=self.cfg.journal.dir,
                 gateway=self.cfg.gateway.endpoint, publish=self.publisher.bound, resync_via=self.via)

    async def background(self, app: object) -> AsyncIterator[None]:
        """aiohttp cleanup_ctx: start with the app, stop (checkpoint, close) with it."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    # --- the loop --------------------------------------------------------------------------------
    async def _loop(self) -> None:
        try:
            while True:
                records = await self.bridge.next_batch()
                if self.heartbeat is not None:
                    self.heartbeat.beat()
                if records:
                    ticked = self.commit(records)
                    self.writer.maybe_sync()  # group commit after the vectors are out, not before
                    if ticked:
                        self._sync_counters()
                        self.gc.after_tick()
                        if time.monotonic() >= self._next_checkpoint:
                            await self.checkpoint()
                else:
                    self.writer.maybe_sync()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a runtime failure (socket, disk): end the process, systemd restarts it
            log.error("shard_failed", error=f"{type(e).__name__}: {e}")
            self.exit_code = 1
            self.stopped.set()

    def commit(self, records: list[Record]) -> bool:
        """Journal `records`, apply what the journal took, carry out the outputs; True if vectors came out."""
        numbered = self.writer.append(records, defer_sync=True)
        if self._acks:
            for rec in records:
                fut = self._acks.pop(id(rec), None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
        folded = self.fold.batch(numbered)
        self.events.records(numbered)
        if folded.vectors:
            self._publish(folded.vectors)
        for n in folded.notices:
            self._on_notice(n)
        return bool(folded.vectors)

    def _publish(self, vectors: list[Vector]) -> None:
        assert self.publisher is not None
        sent = self.publisher.publish(vectors)
        now = self.clock_ns()
        self.metrics.count_published(sent, len(vectors) - sent)
        # The newest tick's lateness (a restart's backfilled ticks would only measure the downtime).
        self.metrics.observe_tick_to_publish(max(0, now - vectors[-1].ts_ns) / NS_PER_S)
        for v in vectors:
            self.latest[v.symbol] = v
            if not v.book_valid:
                self.metrics.add_book_invalid_seconds(v.symbol, 1.0)
        if self.feature_log is not None:
            self._log_vectors(vectors)

    def _log_vectors(self, vectors: list[Vector]) -> None:
        """Hand the vectors to the feature log, one run per registry (a batch can span a switch)."""
        assert self.feature_log is not None
        registries = self.fold.engine.registries
        start = 0
        for i in range(1, len(vectors) + 1):
            if i == len(vectors) or vectors[i].registry_hash != vectors[start].registry_hash:
                self.feature_log.append(vectors[start:i], registries[vectors[start].registry_hash])
                start = i

    def _sync_counters(self) -> None:
        """Once a tick: carry the bridge's receive-side losses into the metrics (as deltas)."""
        lost = self.bridge.counters.get("peer_disconnects", 0)
        if lost > self._disconnects:
            self.metrics.count_receive_dropped("disconnect", lost - self._disconnects)
            self._disconnects = lost

    def _on_notice(self, n: Notice) -> None:
        """Log a notice; a book that needs a snapshot gets a journaled resync request; a recovery ends one."""
        self.events.notice(n)
        if n.resync:
            self._request_resync(n.symbol, n.depth, n.event)
        elif n.event in ("recovered", "reset") and self.resyncer is not None:  # a snapshot made it valid
            seconds = self.resyncer.done(n.symbol, n.depth)
            if seconds is not None:
                self.events.resync_completed(n.symbol, n.depth, self.via, seconds)

    def _request_resync(self, symbol: str, depth: int, reason: str) -> None:
        if self.resyncer is not None and not self.resyncer.request(symbol, depth, reason):
            return  # already queued or in flight: the policy owes it, nothing new to journal
        self.bridge.request_resync(symbol, depth, reason, self.via)
        self.events.resync_requested(symbol, depth, reason, self.via)

    # --- registry reload (API) ---------------------------------------------------------------
    def read_registry(self, text: str | None) -> Registry:
        """Validate `text`, or re-read the configured file (the packaged default when none)."""
        if text is not None:
            return load_registry_text(text, source="POST /feature-registry/reload")
        path = self.cfg.registry
        if not path:
            return default_registry()
        from tools.registry_file import load_registry_file

        return load_registry_file(path)

    async def reload_registry(self, text: str | None) -> ReloadResult:
        """Journal a validated registry as REGISTRY_CHANGED; it applies from the next tick."""
        registry = self.read_registry(text)
        payload = {"hash": registry.content_hash, "content": registry.canonical}
        if text is None:  # the configured file, re-read: a restart keeps it unless the file changes again
            payload["configured"] = registry.content_hash
        change = Record(0, 0, Kind.REGISTRY_CHANGED, "", 0, 0, payload)
        records = self.bridge.ingest.control([change])  # stamped now, after every record already queued
        journaled = asyncio.get_running_loop().create_future()
        self._acks[id(records[-1])] = journaled
        self.bridge.queue(records)  # the loop journals it in order with the rest; answer once it has
        await journaled
        self.registry = registry
        if text is None:
            self.configured = registry
        effective = (records[-1].recv_ns // NS_PER_S + 1) * NS_PER_S
        log.info("registry_reloaded", registry=registry.content_hash[:12], effective_ns=effective,
                 features=len(registry.names))
        return ReloadResult(registry.content_hash, effective, registry.names)

    # --- checkpoints and stop ------------------------------------------------------------------
    async def checkpoint(self) -> None:
        """Write an engine checkpoint (serialised here, written on a worker thread)."""
        engine = self.fold.engine
        seq, data = engine.last_seq, engine.checkpoint()
        created = self.clock_ns()
        self._next_checkpoint = time.monotonic() + self.cfg.checkpoint.interval_s
        self.writer.sync()  # a checkpoint never covers records the disk may not have
        path = await asyncio.to_thread(self.checkpoints.save, seq, data, {"created_ns": created,
                                                                          "shard": self.cfg.shard.name})
        self.last_checkpoint = (seq, created)
        self.journal_bytes = journal_bytes(Path(self.cfg.journal.dir))
        self.metrics.set_journal_bytes(self.journal_bytes)
        log.info("checkpoint_written", seq=seq, bytes=len(data), file=path.name)

    async def stop(self) -> None:
        """Stop the loop and the resync task, checkpoint, and close everything (clean stop)."""
        self.gc.stop()
        for task in getattr(self, "_tasks", []):
            task.cancel()
        for task in getattr(self, "_tasks", []):
            try:
                await task
            except asyncio.CancelledError:
                pass
        try:
            await self.bridge.close()
            if self.resyncer is not None:
                await self.resyncer.source.close()
            if self.writer.next_seq > 1:
                await self.checkpoint()
        finally:
            self.close()

    def close(self) -> None:
        """Close sockets, the feature log and the journal (idempotent)."""
        if self.feature_log is not None:
            self.feature_log.close()
            self.feature_log = None
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
        self.writer.close()
        self.ctx.destroy(linger=0)
        self.actx.destroy(linger=0)

    def _timed_fsync(self, fd: int) -> None:
        t0 = time.perf_counter()
        os.fsync(fd)
        self.metrics.observe_fsync(time.perf_counter() - t0)


def journal_bytes(journal_dir: Path) -> int:
    """Bytes of the journal's segment files."""
    return sum(p.stat().st_size for p in journal_dir.glob("*.seg"))
