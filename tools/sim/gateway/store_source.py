"""``source: store``: a shard's raw store (hot + archive) played as Bybit frames into the simulator.

The frames are exactly what ``feature-service store export --format frames`` writes
(`tools.offline.cmd_store.stored_frames`: each stored market record through
`gateway_bridge.encoder.record_to_frame`), timed by their receive times and routed to gateway
topics by the recording playback (`tools.sim.gateway.playback.playback`), so stored history can be
played into a live shard at real speed, ×N, or flat out, once or in loops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from gateway_bridge.config import TopicsConfig
from journal.store.layout import StoreRoots
from tools.sim.gateway.config import RecordingConfig, StoreSourceConfig
from tools.sim.gateway.playback import playback
from tools.sim.gateway.synthetic import Frame


class StoreSource(NamedTuple):
    """A checked store to play: its roots, committed files, range and symbols."""

    roots: StoreRoots
    files: list[Any]
    from_ns: int | None
    to_ns: int | None
    symbols: tuple[str, ...] | None


def open_store(cfg: StoreSourceConfig) -> StoreSource:
    """Resolve and check the configured store; ValueError (one line naming the key) when unusable."""
    from tools.offline.cmd_store import committed_files, store_roots, store_symbols

    if cfg.config:
        from tools.shard.config import load_shard_config

        try:
            shard = load_shard_config(cfg.config)
        except ValueError as e:
            raise ValueError(f"store.config: {e}") from None
        roots = store_roots(shard.store.dir, shard.store.archive_dir)
    else:
        roots = store_roots(cfg.dir, cfg.archive_dir)
    if not roots.hot.is_dir():
        raise ValueError(f"store: {roots.hot} is not a directory")
    try:
        files = committed_files(roots)
    except ValueError as e:
        raise ValueError(f"store: {e}") from None
    known = store_symbols(files)
    missing = [s for s in cfg.symbols if s not in known]
    if missing:
        raise ValueError(f"store.symbols: {', '.join(missing)} not in the store {roots.hot}; "
                         f"its symbols: {', '.join(sorted(known)) or 'none'}")
    from_ns, to_ns = cfg.range_ns()
    return StoreSource(roots, files, from_ns, to_ns, tuple(cfg.symbols) or None)


def store_frames(src: StoreSource) -> Iterator[tuple[int, bytes]]:
    """``(recv_ns, frame_bytes)`` of every stored market record of `src`, in journal order."""
    from tools.offline.cmd_store import stored_frames

    return stored_frames(src.roots, src.from_ns, src.to_ns, src.symbols, files=src.files)


def store_playback(cfg: StoreSourceConfig, topics: TopicsConfig,
                   src: StoreSource | None = None) -> Iterator[tuple[float | None, Frame]]:
    """Yield ``(due_s, frame)`` for each routed stored frame, `cfg.loops` times (0: forever), paced by `cfg.speed`."""
    src = src if src is not None else open_store(cfg)
    one_pass = RecordingConfig(speed=cfg.speed, loops=1)
    offset = 0.0
    loop = 0
    while cfg.loops == 0 or loop < cfg.loops:
        last = 0.0
        sent = 0
        for due, frame in playback(one_pass, topics, reader=store_frames(src)):
            sent += 1
            if due is not None:
                last = due
                due += offset
            yield due, frame
        if sent == 0:  # nothing in range: looping forever would spin
            return
        offset += last
        loop += 1


def describe(src: StoreSource) -> dict[str, Any]:
    """What is being played (for the simulator's start log line)."""
    return {"store": str(src.roots.hot), "archive": str(src.roots.archive) if src.roots.archive else None,
            "files": len(src.files), "symbols": list(src.symbols or ()),
            "from_ns": src.from_ns, "to_ns": src.to_ns}

