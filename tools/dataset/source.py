"""The shard data a dataset is built from: its config, the tick times stored, the shard's name.

Ticks (seq, time) come from the store's control table and the journal tail; the seq of the last
tick a build reads fixes its source (the journal is append-only and gap-free, so records 1..seq
never change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from engine.record import Kind
from tools.offline.replay import ConfigSource


@dataclass
class ShardData:
    """One shard's store + journal, as a dataset build reads them."""

    config_path: str
    source: ConfigSource
    data_dir: Path
    shard: str
    #: Read records up to this seq only (None: all): a build fixed by an earlier request (`fingerprint`).
    through_seq: int | None = None
    _ticks: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, config_path: str) -> ShardData:
        """Load the shard config (errors name the file and key) and its store."""
        from tools.shard.config import load_shard_config

        cfg = load_shard_config(config_path)
        return cls(config_path, ConfigSource.open(config_path), cfg.data, cfg.shard.name)

    @property
    def datasets_dir(self) -> Path:
        """`<data_dir>/datasets`."""
        return self.data_dir / "datasets"

    def symbols(self) -> tuple[str, list[str]]:
        """(what holds them, the symbols a replay can compute)."""
        return self.source.known_symbols()

    def ticks(self) -> tuple[np.ndarray, np.ndarray]:
        """(seq, ts_ns) of every stored tick, in seq order: the store's control table, then the journal tail.

        Read once per `ShardData` (a build asks for them a few times).
        """
        if self._ticks is None:
            seq, ts = self._read_ticks()
            keep = seq <= self.through_seq if self.through_seq is not None else slice(None)
            self._ticks = seq[keep], ts[keep]
        return self._ticks

    def _read_ticks(self) -> tuple[np.ndarray, np.ndarray]:
        from journal.reader import JournalReader
        from journal.store.layout import CONTROL_TABLE
        from journal.store.replay import store_files

        reader = self.source._reader()
        seqs, times = [], []
        for ref in sorted(store_files(reader.roots, reader.manifest), key=lambda r: r.first_seq):
            if ref.table == CONTROL_TABLE:
                t = pq.read_table(ref.path, columns=["seq", "recv_ns", "kind"], filters=[("kind", "=", int(Kind.TICK))])
                seqs.append(t.column("seq").to_numpy().astype(np.int64))
                times.append(t.column("recv_ns").cast("int64").to_numpy())
        through = reader.manifest.compacted_through
        if self.source.journal.is_dir():
            tail = [(r.seq, r.recv_ns) for r in JournalReader(self.source.journal).records(
                from_seq=through + 1, kinds=[Kind.TICK])]
            if tail:
                seqs.append(np.array([s for s, _ in tail], np.int64))
                times.append(np.array([t for _, t in tail], np.int64))
        if not seqs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(seqs), np.concatenate(times)

    def fingerprint(self, until_ns: int) -> dict[str, Any]:
        """The source of a build reading ticks before `until_ns`: the shard and the seq of its last such tick."""
        seq, ts = self.ticks()
        before = seq[ts < until_ns]
        return {"shard": self.shard, "through_seq": int(before.max()) if len(before) else 0}

    def replay_end(self, until_ns: int) -> int:
        """Where a build reading ticks before `until_ns` stops: just after the last such tick stored.

        While a shard runs, later ticks arrive; stopping at the ticks the fingerprint names makes a
        build started later (the API's build process) read exactly what its request saw.
        """
        seq, ts = self.ticks()
        before = ts[ts < until_ns]
        return min(until_ns, int(before.max()) + 1) if len(before) else until_ns
