"""HTTP snapshot source: Bybit-shaped ``GET /v5/market/orderbook`` (SPEC C.5, issue 6 §4).

The answer body is returned as is (`Snapshot`); only ``retCode`` is read, to tell a rejection from a
snapshot. Prices are never parsed here: the shard's ingest journals the body as a snapshot record.
One `aiohttp.ClientSession`, made lazily inside the running loop, serves every book, so several
books can be in flight at once. A request that times out loses its connection (aiohttp closes a
connection whose response was not read), so the next request goes out on a fresh one.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from yarl import URL

from gateway_bridge.snapshot_source import (
    Answer,
    ResyncRejected,
    ResyncTimeout,
    ResyncTransportError,
    Snapshot,
    clip,
)

#: Path of the order book endpoint under the base URL (Bybit v5 market data).
ORDERBOOK_PATH = "/v5/market/orderbook"
#: Largest answer body read (a 1000-level book is about 60 KiB); beyond it the answer is an error.
MAX_BODY = 16 * 1024 * 1024
#: Config key named when the base URL is malformed.
URL_KEY = "gateway.resync.http_url"


def parse_base_url(base_url: str, key: str = URL_KEY) -> URL:
    """Return the base URL as a `URL`; raise ``ValueError("KEY: …")`` if it is malformed.

    A config dataclass validating the same value passes its relative key (``key="http_url"``).
    """
    try:
        url = URL(base_url)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{key}: not a URL: {base_url!r} ({e})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{key}: expected http(s)://host[:port][/prefix], got {base_url!r}")
    if url.query_string or url.fragment:
        raise ValueError(f"{key}: a base URL has no query or fragment, got {base_url!r}")
    return url


class HttpSnapshotSource:
    """`SnapshotSource` over a Bybit-shaped REST endpoint; the answer body is the snapshot."""

    via = "http"

    def __init__(self, base_url: str, category: str = "linear", max_limit: int = 1000) -> None:
        if max_limit < 1:
            raise ValueError(f"gateway.resync.http_max_limit: must be >= 1, got {max_limit}")
        base = parse_base_url(base_url)
        self.url = base.with_path(base.path.rstrip("/") + ORDERBOOK_PATH)
        self.category = category
        self.max_limit = max_limit
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def params(self, symbol: str, depth: int) -> dict[str, str]:
        """Return the query of a request for this book (``limit`` capped at `max_limit`)."""
        return {"category": self.category, "symbol": symbol, "limit": str(min(depth, self.max_limit))}

    async def fetch(self, symbol: str, depth: int, timeout_s: float) -> Answer:
        """GET the book; raise `ResyncTimeout`, `ResyncRejected` or `ResyncTransportError`."""
        session = self._open()
        try:
            async with asyncio.timeout(timeout_s):
                async with session.get(self.url, params=self.params(symbol, depth)) as resp:
                    body = await _read_capped(resp)
                    status = resp.status
        except TimeoutError:
            raise ResyncTimeout(f"no answer from {self.url} within {timeout_s:g} s") from None
        except aiohttp.ClientError as e:
            raise ResyncTransportError(f"GET {self.url}: {clip(str(e) or type(e).__name__)}") from None
        if status != 200:
            raise ResyncTransportError(f"GET {self.url}: HTTP {status}")
        _check_answer(body)
        return Snapshot(body)

    async def close(self) -> None:
        """Close the session if one was made; idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        """Return the session, making it in the running loop on first use."""
        if self._closed:
            raise ResyncTransportError("http snapshot source is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Accept": "application/json"})
        return self._session


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """Read the whole body, refusing more than `MAX_BODY` bytes."""
    if resp.content_length is not None and resp.content_length > MAX_BODY:
        raise ResyncTransportError(f"answer of {resp.content_length} bytes exceeds {MAX_BODY}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise ResyncTransportError(f"answer exceeds {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_answer(body: bytes) -> None:
    """Raise `ResyncRejected` unless the body is a JSON object with ``retCode`` 0."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ResyncRejected(f"answer is not JSON: {body[:80]!r}") from None
    if not isinstance(doc, dict) or "retCode" not in doc:
        raise ResyncRejected("answer has no retCode")
    if doc["retCode"] != 0:
        raise ResyncRejected(f"retCode {doc['retCode']}: {doc.get('retMsg', '')}")
