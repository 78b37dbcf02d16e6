"""The subscriber example in api/wire.py's docstring runs as written against a real publisher and API."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import numpy as np
import zmq

import api.wire
from api.publisher import Publisher
from engine.engine import Vector
from tests.api.fakes import FakeView, serve

REPO = Path(__file__).resolve().parents[2]
TS = 1_700_000_000_000_000_000


def example_code() -> str:
    """Return the code block that follows 'A subscriber' in the module docstring."""
    doc = api.wire.__doc__ or ""
    after = doc[doc.index("A subscriber"):]
    block = after[after.index("::\n\n") + 4:]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip("\n")


def test_example_is_at_most_ten_lines() -> None:
    code = example_code()
    assert code.startswith("import ") and 5 <= len(code.splitlines()) <= 10


def test_example_prints_named_features() -> None:
    view = FakeView()
    vector = Vector(TS, "BTCUSDT", 1, np.array([100.5, np.nan, -0.0]), view.current)

    async def main() -> str:
        ctx = zmq.Context()
        pub = Publisher("tcp://127.0.0.1:*", ctx)
        try:
            async with serve(view) as client:
                code = (example_code().replace("tcp://127.0.0.1:5560", pub.bound)
                        .replace("http://127.0.0.1:8080", client.url))
                proc = await asyncio.create_subprocess_exec(sys.executable, "-u", "-c", code, cwd=REPO,
                                                            stdout=asyncio.subprocess.PIPE)
                try:
                    return await first_line(proc, pub, vector)
                finally:
                    proc.kill()
                    await proc.wait()
        finally:
            pub.close()
            ctx.term()

    line = asyncio.run(main())
    assert line == f"{TS} BTCUSDT 1 {{'mid_price': 100.5, 'spread_abs': nan, 'vwap_3s': -0.0}}"


async def first_line(proc: asyncio.subprocess.Process, pub: Publisher, vector: Vector) -> str:
    """Publish `vector` every 50 ms until the subscriber prints a line (it joins late); return it."""
    assert proc.stdout is not None
    read = asyncio.ensure_future(proc.stdout.readline())
    for _ in range(300):
        pub.publish([vector])
        done, _ = await asyncio.wait({read}, timeout=0.05)
        if done:
            return read.result().decode().rstrip("\n")
    read.cancel()
    raise AssertionError("the example subscriber printed nothing in 15 s")
