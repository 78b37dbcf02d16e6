"""Shared fixtures: the recorded Bybit data in ../shared (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_BYBIT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bybit"

SOL_DOGE_FRAMES = "bybit_v5_linear_SOLUSDT_DOGEUSDT_20260809T2126Z.frames.jsonl"
SOL_DOGE_ENVELOPE = "bybit_v5_linear_SOLUSDT_DOGEUSDT_20260809T2126Z.cryptofeed-envelope.jsonl"
OB1_FRAMES = "bybit_v5_linear_orderbook1_20250613T1651Z.frames.jsonl"
OB1_CRYPTOFEED_V1 = "bybit_v5_linear_orderbook1_20250613T1651Z.cryptofeed-v1.txt"
XRP_OB500 = "2024-12-01_XRPUSDT_ob500.data"
INSTRUMENTS = "bybit_v5_rest_instruments_info_linear_20260809T2126Z.json"


@pytest.fixture(scope="session", autouse=True)
def compiled_decoder() -> None:
    """Compile the decoder's kernels into numba's on-disk cache before any test starts a shard: a cold
    compile (~15 s) inside a subprocess would otherwise run into the tests' start-up timeouts."""
    from gateway_bridge.decoder import Decoder

    Decoder.warm_up()


@pytest.fixture(scope="session")
def shared_bybit() -> Path:
    """Return ../shared/data/bybit; skip when absent locally, fail when absent under CI=true."""
    if not SHARED_BYBIT.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the shared recordings are missing at {SHARED_BYBIT}")
        pytest.skip(f"shared recordings not found at {SHARED_BYBIT}")
    return SHARED_BYBIT
