"""Where a fresh book snapshot comes from: one protocol, its answers and its failures (SPEC C.5).

Two transports implement `SnapshotSource`: the gateway's ZMQ control endpoint (the gateway says
"ok" and the snapshot arrives on the stream: `Accepted`) and a Bybit-shaped REST endpoint (the answer
body *is* the snapshot: `Snapshot`). The resync policy (`gateway_bridge.resync.Resyncer`) is written
against this protocol only; every implementation passes the contract suite in
`tests/gateway_bridge/test_snapshot_sources.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Longest peer reply kept in an error or event detail (a hostile peer cannot bloat the logs).
MAX_DETAIL = 200


@dataclass(frozen=True)
class Accepted:
    """The gateway accepted the request; the snapshot will arrive on the stream."""


@dataclass(frozen=True)
class Snapshot:
    """The snapshot itself: the raw answer body (the shard's ingest journals and decodes it)."""

    body: bytes


Answer = Accepted | Snapshot


class ResyncError(Exception):
    """A snapshot request failed; `reason` is one short line for logs and events."""

    kind = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ResyncTimeout(ResyncError):
    """No answer within the timeout (the transport has already dropped its connection)."""

    kind = "timeout"


class ResyncRejected(ResyncError):
    """The peer answered, but not with a snapshot or an "ok"; `reply` is what it said (capped)."""

    kind = "rejected"

    def __init__(self, reply: str) -> None:
        self.reply = reply[:MAX_DETAIL]
        super().__init__(f"rejected: {self.reply}")


class ResyncTransportError(ResyncError):
    """The request could not be carried out (connection refused, HTTP status, closed source)."""

    kind = "error"


@runtime_checkable
class SnapshotSource(Protocol):
    """Asks the gateway for a fresh snapshot of one book; one event loop, no threads."""

    #: ``"zmq"`` or ``"http"``: journaled with the resync request and shown in events.
    via: str

    async def fetch(self, symbol: str, depth: int, timeout_s: float) -> Answer:
        """Ask for a snapshot of ``symbol`` at ``depth`` levels; raise a `ResyncError` on failure."""
        ...

    async def close(self) -> None:
        """Release the transport (idempotent); a later `fetch` raises `ResyncTransportError`."""
        ...


def clip(text: str) -> str:
    """Return ``text`` capped at `MAX_DETAIL` characters, for details taken from a peer."""
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + "…"
