"""What the API reads from the shard: a `ShardView` protocol the shard implements.

Handlers only read through it (and ask for a registry reload); they never touch engine state.
Every method is called on the event loop thread and must not block.

`health()` returns a JSON-ready dict of this shape (``Health``; documented in /openapi.json)::

    {"shard": "a",                      # this shard's name
     "status": "ok" | "degraded",       # degraded: gateway down or a book invalid
     "gateway": {"up": bool, "since": ISO-8601 UTC str, "since_ns": int},
     "books": {symbol: {"valid": bool, "last_event_age_s": float | None}},
     "journal": {"next_seq": int, "lag_records": int, "bytes": int},
     "checkpoint": {"seq": int, "age_s": float} | None}
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, TypedDict, runtime_checkable

from engine.engine import Vector
from registry import Registry


class ReloadResult(NamedTuple):
    """A reload accepted: the new registry's hash, the tick it applies from, its feature names."""

    registry_hash: str
    effective_ns: int
    names: tuple[str, ...]


class GatewayHealth(TypedDict):
    """Whether the gateway is sending, and since when (wall clock)."""

    up: bool
    since: str
    since_ns: int


class BookHealth(TypedDict):
    """One symbol's feature book: valid or resyncing, seconds since its last event (None: never)."""

    valid: bool
    last_event_age_s: float | None


class JournalHealth(TypedDict):
    """The journal's next seq, records journaled but not yet applied, and bytes on disk."""

    next_seq: int
    lag_records: int
    bytes: int


class CheckpointHealth(TypedDict):
    """The newest checkpoint: the journal seq it covers and its age in seconds."""

    seq: int
    age_s: float


class Health(TypedDict):
    """The body of GET /health."""

    shard: str
    status: str
    gateway: GatewayHealth
    books: dict[str, BookHealth]
    journal: JournalHealth
    checkpoint: CheckpointHealth | None


@runtime_checkable
class ShardView(Protocol):
    """The shard state the API serves."""

    name: str

    def symbols(self) -> tuple[str, ...]:
        """Return the symbols this shard owns."""
        ...

    def latest(self, symbol: str) -> Vector | None:
        """Return the newest vector of `symbol` (None before its first tick)."""
        ...

    def owner_of(self, symbol: str) -> tuple[str, str] | None:
        """Return (shard name, API base URL) owning `symbol` per the cluster config, None if unknown."""
        ...

    def registry(self, registry_hash: str | None = None) -> Registry | None:
        """Return the registry with `registry_hash` (None: the one in force); None if unknown."""
        ...

    def registry_hashes(self) -> tuple[str, ...]:
        """Return every registry hash this journal has used, oldest first."""
        ...

    def health(self) -> Health | dict:
        """Return the health dict described in the module docstring."""
        ...

    async def reload_registry(self, text: str | None) -> ReloadResult:
        """Validate and journal a new registry (None: re-read the configured file).

        Raise `registry.RegistryError` when it is invalid (the old registry stays in force).
        """
        ...
