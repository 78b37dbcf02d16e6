"""The packaged default registry: exactly the SPEC C.6 features, in column order, as specified."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import Normalise, Registry
from tools.registry_file import DEFAULT_SOURCE, default_registry, load_registry_file

S = 1_000_000_000
M = 60 * S
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "registry" / "default.yaml"

# name, function, window_ns, params, inputs, z-score n — written from SPEC C.6, not from the file.
EXPECTED: list[tuple[str, str, int | None, dict[str, object], tuple[str, ...], int | None]] = [
    ("mid_price", "mid_price", None, {}, (), None),
    ("spread_abs", "spread_abs", None, {}, (), None),
    ("spread_rel", "spread_rel", None, {}, (), None),
    ("return_1s", "log_return", None, {"seconds": 1}, (), None),
    ("return_3s", "log_return", None, {"seconds": 3}, (), None),
    ("return_1m", "log_return", None, {"seconds": 60}, (), None),
    ("vwap_3s", "vwap", 3 * S, {}, (), None),
    ("vwap_15s", "vwap", 15 * S, {}, (), None),
    ("vwap_1m", "vwap", M, {}, (), None),
    ("vol_3s", "volume", 3 * S, {}, (), None),
    ("vol_15s", "volume", 15 * S, {}, (), None),
    ("vol_1m", "volume", M, {}, (), None),
    ("volatility_1m", "volatility", None, {"seconds": 60}, (), None),
    ("volatility_5m", "volatility", None, {"seconds": 300}, (), None),
    ("signed_volume_3s", "signed_volume", 3 * S, {}, (), None),
    ("signed_volume_15s", "signed_volume", 15 * S, {}, (), None),
    ("signed_volume_1m", "signed_volume", M, {}, (), None),
    ("buy_sell_ratio_1m", "buy_sell_ratio", M, {}, (), None),
    ("trade_count_3s", "trade_count", 3 * S, {}, (), None),
    ("net_aggressor_pressure_1m", "net_aggressor_pressure", M, {}, (), None),
    ("depth_bid_top5", "depth", None, {"side": "bid", "levels": 5}, (), None),
    ("depth_ask_top5", "depth", None, {"side": "ask", "levels": 5}, (), None),
    ("depth_imbalance_top5", "depth_imbalance", None, {"levels": 5}, (), None),
    ("depth_bid_top10", "depth", None, {"side": "bid", "levels": 10}, (), None),
    ("depth_ask_top10", "depth", None, {"side": "ask", "levels": 10}, (), None),
    ("slope_bid", "slope", None, {"side": "bid", "levels": 10}, (), None),
    ("slope_ask", "slope", None, {"side": "ask", "levels": 10}, (), None),
    ("orderbook_churn_rate_1m", "churn_rate", M, {}, (), None),
    ("local_liquidity_density_10bps", "liquidity_density", None, {"bps": 10.0}, (), None),
    ("funding_rate", "funding_rate", None, {}, (), None),
    ("time_to_funding", "time_to_funding", None, {}, (), None),
    ("time_of_day", "time_of_day", None, {}, (), None),
    ("spread_rel_z300", "ref", None, {}, ("spread_rel",), 300),
    ("signed_volume_1m_z300", "ref", None, {}, ("signed_volume_1m",), 300),
    ("depth_imbalance_top5_z300", "ref", None, {}, ("depth_imbalance_top5",), 300),
]

SOURCES = {"trades": ("trades",), "funding_rate": ("funding", "ticker"), "time_to_funding": ("funding", "ticker"),
           "time_of_day": ("clock",), "ref": ("features",)}
TRADE_FUNCTIONS = {"vwap", "volume", "signed_volume", "buy_sell_ratio", "trade_count", "net_aggressor_pressure"}


@pytest.fixture(scope="module")
def reg() -> Registry:
    """The packaged default registry."""
    return default_registry()


def test_default_registry_has_the_spec_columns_in_order(reg: Registry) -> None:
    """Exactly the 35 SPEC C.6 names, in the specified column order."""
    assert len(EXPECTED) == 35
    assert reg.column_names == tuple(row[0] for row in EXPECTED)
    assert reg.version == 1 and reg.source == DEFAULT_SOURCE


@pytest.mark.parametrize("row", EXPECTED, ids=[row[0] for row in EXPECTED])
def test_default_feature_definition(reg: Registry, row: tuple) -> None:
    """Function, window, parameters, inputs, normalisation, cadence and sources of each column."""
    name, function, window_ns, params, inputs, z = row
    f = reg.feature(name)
    assert (f.function, f.window_ns, dict(f.params), f.inputs) == (function, window_ns, params, inputs)
    assert f.normalise == (Normalise("zscore", (("n", z),)) if z else None)
    assert f.every_ns == S
    kind = "trades" if function in TRADE_FUNCTIONS else function
    assert f.sources == SOURCES.get(kind, ("orderbook",))


def test_z_scores_are_computed_after_their_inputs(reg: Registry) -> None:
    """Computation order is the file order: every z-score already follows its input."""
    assert reg.order == tuple(range(35))


def test_packaged_and_file_copies_agree(reg: Registry) -> None:
    """The packaged resource and the file in the tree are the same registry."""
    from_file = load_registry_file(DEFAULT_YAML)
    assert from_file.content_hash == reg.content_hash and from_file.source == str(DEFAULT_YAML)
    assert len(reg.content_hash) == 64 and int(reg.content_hash, 16) >= 0


def test_default_registry_is_loaded_once() -> None:
    """The packaged registry is immutable and cached."""
    assert default_registry() is default_registry()
