"""The API's read side of a running shard (`api.view.ShardView`), answered from the node's state."""

from __future__ import annotations

from api.app import iso_ns
from api.view import ReloadResult
from engine.engine import Vector
from registry import Registry
from tools.shard.node import ShardNode

NS = 1_000_000_000


class NodeView:
    """What `GET /features/*`, `/health` and the reload endpoint see of a `ShardNode`."""

    def __init__(self, node: ShardNode, owners: dict[str, tuple[str, str]] | None = None) -> None:
        self.node = node
        self.name = node.cfg.shard.name
        self._owners = owners or {}

    def symbols(self) -> tuple[str, ...]:
        return self.node.cfg.shard.symbols

    def latest(self, symbol: str) -> Vector | None:
        return self.node.latest.get(symbol)

    def owner_of(self, symbol: str) -> tuple[str, str] | None:
        return self._owners.get(symbol)

    def registry(self, registry_hash: str | None = None) -> Registry | None:
        engine = self.node.fold.engine
        if registry_hash is None:
            return engine.registry
        return engine.registries.get(registry_hash)

    def registry_hashes(self) -> tuple[str, ...]:
        return tuple(self.node.fold.engine.registries)

    async def reload_registry(self, text: str | None) -> ReloadResult:
        return await self.node.reload_registry(text)

    def health(self) -> dict:
        """Gateway, books, journal and checkpoint state right now (see the OpenAPI `Health` schema)."""
        node, now = self.node, self.node.clock_ns()
        ev, engine = node.events, node.fold.engine
        books = {}
        for sym in self.symbols():
            state = engine.states.get(sym)
            last = ev.last_event_ns.get(sym)
            books[sym] = {"valid": bool(state is not None and state.book_valid()),
                          "last_event_age_s": None if last is None else round((now - last) / NS, 3)}
        ckpt = node.last_checkpoint
        ok = ev.gateway_up and all(b["valid"] for b in books.values())
        return {
            "shard": self.name,
            "status": "ok" if ok else "degraded",
            "gateway": {"up": ev.gateway_up, "since": iso_ns(ev.gateway_since_ns) if ev.gateway_since_ns else "",
                        "since_ns": ev.gateway_since_ns},
            "books": books,
            "journal": {"next_seq": node.writer.next_seq, "lag_records": 0,
                        "bytes": node.journal_bytes},
            "checkpoint": None if ckpt is None else {"seq": ckpt[0], "age_s": round((now - ckpt[1]) / NS, 3)},
        }
